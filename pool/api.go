package pool

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/ipc/codec"
	"github.com/ppool/ppool/workerproc"
)

// newTask encodes a call into a ready-to-write frame.
func newTask[A any](p *Pool, fn string, arg A, o *callOptions) (*task, error) {
	t := new(task)
	if err := initTask(p, t, make([]byte, 0, 48+len(fn)), fn, arg, o); err != nil {
		return nil, err
	}
	return t, nil
}

// borrowTask is newTask for a caller that waits for the answer (Apply): a
// large []byte argument is not copied into the frame but written from
// where it is, and the caller must call unborrow before it returns
// without an answer.
func borrowTask[A any](p *Pool, fn string, arg A, o *callOptions) (*task, error) {
	b, ok := any(arg).([]byte)
	if !ok || len(b) < bigFrame {
		return newTask(p, fn, arg, o)
	}
	t := &task{id: p.nextID.Add(1), fn: fn, opts: o, x: &extra{tail: b}}
	head, start := ipc.AppendTaskHead(make([]byte, 0, 64+len(fn)), t.id, fn, o.timeout, false)
	t.frame = ipc.EndFrameTail(ipc.AppendBinHeader(head, len(b)), start, len(b))
	if err := p.checkFrame(fn, len(t.frame)+len(b)); err != nil {
		return nil, err
	}
	return t, nil
}

// unborrow makes sure nothing reads t's borrowed argument any more: a
// write still queued for a worker gets a copy of its own, and writes under
// way are waited for. A task that was answered needs none of this: its
// worker has read all of it.
func (p *Pool) unborrow(t *task) {
	tail := t.tail()
	if tail == nil {
		return
	}
	p.mu.Lock()
	workers := slices.Clone(p.workers)
	p.mu.Unlock()
	for _, w := range workers {
		w.box.unshare(tail)
	}
	for _, w := range workers {
		w.wmu.Lock() // a flush in progress has taken its frames from segs
		w.wmu.Unlock()
	}
}

// initTask makes t the call fn(arg), its frame encoded into buf. On error t
// still has its id, function and options, to be failed with the error.
func initTask[A any](p *Pool, t *task, buf []byte, fn string, arg A, o *callOptions) error {
	t.id, t.fn, t.opts = p.nextID.Add(1), fn, o
	b, start := ipc.AppendTaskHead(buf, t.id, fn, o.timeout, false)
	t.argOff = int32(len(b))
	b, err := codec.AppendOfLimit(b, arg, p.frameEnd(start))
	if err != nil {
		return p.encodeError(fn, "the argument", start, err)
	}
	if err := argDepth(fn, b[t.argOff:]); err != nil {
		return err
	}
	t.frame = ipc.EndFrame(b, start)
	return p.checkFrame(fn, len(t.frame))
}

// asyncCall is everything an ApplyAsync call needs, in one allocation: a
// burst of calls is bound by the allocator and the garbage collector.
type asyncCall[R any] struct {
	r     AsyncResult[R]
	t     task
	frame [56]byte // room for the frame of a call with a short name and a small argument (a 320-byte size class in all)
}

// frameEnd is how far a buffer may grow with a frame that starts at
// start: a value that would take it further is refused as it is encoded,
// before it costs more memory than the limit.
func (p *Pool) frameEnd(start int) int { return start + 4 + p.maxFrame }

// encodeError is the error of an argument (what) that did not encode into
// the frame starting at start.
func (p *Pool) encodeError(fn, what string, start int, err error) error {
	var tl *codec.TooLargeError
	if !errors.As(err, &tl) {
		return fmt.Errorf("ppool: encoding %s of %s: %w", what, fn, err)
	}
	if tl.Size > 0 {
		return p.checkFrame(fn, tl.Size-start)
	}
	return fmt.Errorf("ppool: the arguments of %s encode to more than %d bytes, over the frame limit of %d (Config.MaxFrame)", fn, p.maxFrame, p.maxFrame)
}

// undecoded counts a call whose result did not decode into the caller's
// type as failed. A single call was counted done when its answer came; a
// Map or Imap item was not counted alone (its chunk was).
func (p *Pool) undecoded(single bool) {
	if single {
		p.stats.done.Add(^uint64(0))
	}
	p.stats.failed.Add(1)
}

// checkFrame refuses a task whose frame is over the limit before it is
// sent: a worker would refuse it and die, and with it every task it held.
func (p *Pool) checkFrame(fn string, size int) error {
	if size-4 > p.maxFrame {
		return fmt.Errorf("ppool: the arguments of %s encode to %d bytes, over the frame limit of %d (Config.MaxFrame)", fn, size-4, p.maxFrame)
	}
	return nil
}

// wait blocks until t is resolved or ctx ends. A worker's answer wakes the
// pool's reader goroutine on another thread; handing it on to a parked
// caller costs a second thread wakeup, which on small VMs is slower than
// the pipe round trip itself. So a caller first spins briefly, when there
// is another processor for the reader to run on.
func (t *task) wait(ctx context.Context, spin bool) error {
	if t.resolved.Load() {
		return nil
	}
	if spin && runtime.GOMAXPROCS(0) > 1 {
		start := time.Now()
		for i := 1; ; i++ {
			if t.resolved.Load() {
				return nil
			}
			if i%64 == 0 && time.Since(start) > spinFor {
				break
			}
		}
	}
	select {
	case <-t.doneChan():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// spinFor is how long a waiting caller spins before parking: a few pipe
// round trips.
const spinFor = 50 * time.Microsecond

// spinWorthIt reports whether a waiting caller should spin: only when the
// pool is nearly idle, where the answer is a round trip away. With many
// tasks in flight the wait is long, and a spinning caller would only take
// the processor the pool's own goroutines need to get answers in.
func (p *Pool) spinWorthIt() bool { return p.pending.Load() <= int64(p.cfg.Workers) }

// Apply runs f(arg) on a worker and returns its result. If ctx ends first,
// the task is cancelled and Apply returns a *CancelledError whose cause is
// ctx's; under a ctx that has already ended, nothing is sent.
func Apply[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], arg A, opts ...Option) (R, error) {
	r, _, err := apply(ctx, "Apply", p, f, arg, opts)
	return r, err
}

// ApplyInfo is Apply that also says how the task ran: its TaskInfo, as
// AsyncResult.Info gives it once the task completed (its ID alone if it
// was never sent or ctx ended first). For callers
// that report a task's attempts, worker or run time: ApplyAsync tells
// them too, but hands the task and its answer to the pool's goroutines,
// where Apply's caller writes the one and reads the other itself, two
// thread wakeups fewer (see docs/design.md).
func ApplyInfo[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], arg A, opts ...Option) (R, TaskInfo, error) {
	return apply(ctx, "ApplyInfo", p, f, arg, opts)
}

func apply[A, R any](ctx context.Context, call string, p *Pool, f workerproc.Func[A, R], arg A, opts []Option) (R, TaskInfo, error) {
	var zero R
	o, err := p.options(call, optsApply, opts)
	if err != nil {
		return zero, TaskInfo{}, err
	}
	t, err := borrowTask(p, f.Name(), arg, o)
	if err != nil {
		return zero, TaskInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		// Sent now, the task would run for a caller who cannot be waiting
		// for it: submit dispatches and writes at once.
		return zero, TaskInfo{ID: t.id}, &CancelledError{TaskRef: t.ref(0), Cause: context.Cause(ctx)}
	}
	w, err := p.submit(t, true)
	if err != nil {
		return zero, TaskInfo{ID: t.id}, err
	}
	if w != nil {
		w.readFor(ctx, t)
	}
	if err := t.wait(ctx, p.spinWorthIt()); err != nil {
		p.cancel(t, err, true)
		p.unborrow(t)
		return zero, TaskInfo{ID: t.id}, &CancelledError{TaskRef: t.ref(0), Cause: err}
	}
	info := t.info()
	if t.err != nil {
		p.unborrow(t)
		return zero, info, t.err
	}
	var r R
	if err := codec.Decode(t.value, &r); err != nil {
		p.undecoded(true)
		return zero, info, fmt.Errorf("task %d (%s): decoding the result: %w", t.id, t.fn, err)
	}
	return r, info, nil
}

// AsyncResult is the pending result of ApplyAsync, like
// multiprocessing.pool.AsyncResult.
type AsyncResult[R any] struct {
	p    *Pool
	t    *task
	once sync.Once
	val  R
	err  error
}

// ApplyAsync queues f(arg) and returns at once. Cancelling ctx cancels the
// task; under a ctx that has already ended, it fails with a *CancelledError
// and is never sent. Callback and ErrorCallback options run when it
// completes; a failure to queue (a closed pool, an argument that does not
// encode) is reported the same way, through the result.
//
// When tiny calls pile up in the queue, the pool sends several to a worker
// in one message (a pack; Stats.Packed counts them). Each keeps its own
// result, error, callbacks and context; a crash, memory kill or timeout of
// a pack reruns its calls one by one, so that only the guilty call fails.
func ApplyAsync[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], arg A, opts ...Option) *AsyncResult[R] {
	o, optErr := p.options("ApplyAsync", optsApplyAsync, opts)
	c := new(asyncCall[R])
	r, t := &c.r, &c.t
	r.p, r.t = p, t
	err := initTask(p, t, c.frame[:0], f.Name(), arg, o)
	if err == nil {
		err = optErr
	}
	if o.onSuccess != nil || o.onError != nil || o.onDone != nil {
		t.onDone = callbacksOf(r, f.Name(), o)
	}
	if err == nil && ctx.Err() != nil {
		// Queued, it could reach a worker before anyone cancelled it: the
		// dispatcher may take it at once, on another thread.
		err = &CancelledError{TaskRef: t.ref(0), Cause: context.Cause(ctx)}
	}
	if err != nil {
		t.resolve(nil, err)
		return r
	}
	watched := ctx.Done() != nil
	if watched {
		p.watch(ctx, t)
	}
	if _, err := p.submit(t, false); err != nil {
		if watched {
			p.unwatch(t.watch, 1)
		}
		t.resolve(nil, err)
		return r
	}
	if watched && ctx.Err() != nil {
		// It ended before the watch could see t in the queue.
		p.cancel(t, context.Cause(ctx), true)
	}
	return r
}

// callbacksOf returns the onDone of r's task, which queues the call's
// Callback, ErrorCallback and DoneCallback. A callback that does not take
// the function's result type panics here, at the call.
func callbacksOf[R any](r *AsyncResult[R], fn string, o *callOptions) func(*task) {
	onSuccess, ok := o.onSuccess.(func(R))
	if o.onSuccess != nil && !ok {
		panic(fmt.Sprintf("ppool: ApplyAsync(%s): Callback takes %T, but the function returns %T", fn, o.onSuccess, *new(R)))
	}
	onDone, ok := o.onDone.(func(R, error, TaskInfo))
	if o.onDone != nil && !ok {
		panic(fmt.Sprintf("ppool: ApplyAsync(%s): DoneCallback takes %T, but the function returns %T", fn, o.onDone, *new(R)))
	}
	onError := o.onError
	return func(*task) {
		r.p.cb.push(func() {
			v, err := r.result()
			switch {
			case err == nil && onSuccess != nil:
				onSuccess(v)
			case err != nil && onError != nil:
				onError(err)
			}
			if onDone != nil {
				onDone(v, err, r.Info())
			}
		})
	}
}

func (r *AsyncResult[R]) result() (R, error) {
	r.once.Do(func() {
		if r.err = r.t.err; r.err == nil {
			if err := codec.Decode(r.t.value, &r.val); err != nil {
				r.p.undecoded(true)
				r.err = fmt.Errorf("task %d (%s): decoding the result: %w", r.t.id, r.t.fn, err)
			}
		}
	})
	return r.val, r.err
}

// Get waits for the result. If ctx ends first, Get returns ctx's error and
// the task goes on (like get(timeout) in Python): use Cancel to stop it.
func (r *AsyncResult[R]) Get(ctx context.Context) (R, error) {
	if err := r.t.wait(ctx, r.p.spinWorthIt()); err != nil {
		var zero R
		return zero, err
	}
	return r.result()
}

// Wait waits until the result is ready or ctx ends; it returns ctx's error
// in the second case, and nil in the first, whatever the task's outcome.
func (r *AsyncResult[R]) Wait(ctx context.Context) error { return r.t.wait(ctx, r.p.spinWorthIt()) }

// Ready reports whether the task has completed.
func (r *AsyncResult[R]) Ready() bool { return r.t.resolved.Load() }

// Successful reports whether the task completed without error. It is false
// while the task is not ready.
func (r *AsyncResult[R]) Successful() bool {
	if !r.Ready() {
		return false
	}
	_, err := r.result()
	return err == nil
}

// Done is closed when the task completes.
func (r *AsyncResult[R]) Done() <-chan struct{} { return r.t.doneChan() }

// Cancel cancels the task: dropped if still queued, stopped if running
// (its worker gets a cancel, and is killed if it has not stopped within
// KillGrace). The result's error then matches context.Canceled. Cancelling
// a completed task does nothing.
func (r *AsyncResult[R]) Cancel() { r.p.cancel(r.t, context.Canceled, true) }

// Info describes how a task ran; its fields are final once Ready.
func (r *AsyncResult[R]) Info() TaskInfo {
	if !r.Ready() {
		return TaskInfo{ID: r.t.id}
	}
	return r.t.info()
}

// TaskInfo describes how a task ran.
type TaskInfo struct {
	ID       uint64
	PID      int           // the worker that ran it last
	Attempts int           // runs, counting the one that gave the result
	Queued   time.Duration // from submission until it started running
	Duration time.Duration // run time, as the worker measured it; sent in a pack, its share of the pack's
	// RetriedAfter says why each earlier attempt failed (a crash, a
	// timeout, a memory kill), oldest first: Attempts-1 of them.
	RetriedAfter []error
}

// ref names t in a failure on the worker with the given pid (0: none).
func (t *task) ref(pid int) TaskRef { return TaskRef{Task: t.id, Function: t.fn, PID: pid} }

func (t *task) info() TaskInfo {
	ti := TaskInfo{ID: t.id, PID: int(t.pid), Attempts: int(t.attempts) + 1, Duration: t.duration}
	if t.x != nil {
		ti.RetriedAfter = t.x.retriedAfter
	}
	if t.started != 0 {
		ti.Queued = t.started - t.submitted
	}
	return ti
}

// callCancelled is the error of a Map or Imap call whose ctx ended: the
// call as a whole, not one of its tasks.
func callCancelled(ctx context.Context, fn string) error {
	return &CancelledError{TaskRef: TaskRef{Function: fn}, Cause: context.Cause(ctx)}
}

// batchCall is a group of items sent in chunks: the shared machinery of
// Map, Imap and ImapUnordered.
type batchCall[A, R any] struct {
	p  *Pool
	fn string
	o  *callOptions
}

// chunk encodes items into one batch task; itemDone receives each item's
// outcome, and settled, if set, how many more items have had theirs. An
// item no frame can carry (see argDepth) fails at once and is left out of
// the batch; if every item is, chunk returns no task.
func (b *batchCall[A, R]) chunk(items []A, itemDone func(i int, raw []byte, err error), settled func(n int)) (*task, error) {
	p := b.p
	t := &task{id: p.nextID.Add(1), fn: b.fn, opts: b.o}
	// No timeout on the wire: when the worker's deadline fired inside a
	// batch, the item running and every item after it failed "cancelled".
	// The pool's own timer (timeout × items) splits the batch instead, and
	// each item runs again alone, with its own timeout.
	buf, start := ipc.AppendTaskHead(nil, t.id, b.fn, 0, true)
	argsAt := len(buf)
	buf = ipc.AppendArrayHeader(buf, len(items))
	itemsAt := len(buf)
	buf, bad, keep, err := b.encodeItems(buf, start, items)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		// The array holds fewer items than its header says.
		kept := ipc.AppendArrayHeader(slices.Clip(buf[:argsAt]), len(keep))
		buf = append(kept, buf[itemsAt:]...)
	}
	t.frame = ipc.EndFrame(buf, start)
	if err := p.checkFrame(b.fn, len(t.frame)); err != nil {
		return nil, err
	}
	for _, r := range bad {
		itemDone(r.i, nil, r.err)
	}
	if len(bad) > 0 && settled != nil {
		settled(len(bad))
	}
	if len(bad) == len(items) {
		return nil, nil
	}
	done := itemDone
	if len(bad) > 0 {
		done = func(i int, raw []byte, err error) { itemDone(keep[i], raw, err) }
	}
	t.batch = &batch{n: len(items) - len(bad), args: t.frame[argsAt:], itemDone: done, settled: settled, failed: &p.stats.failed}
	t.onDone = batchDone
	return t, nil
}

// refused is an item of a batch that no frame can carry (see argDepth).
type refused struct {
	i   int
	err error
}

// encodeItems appends items to buf, a frame that starts at start. An item
// nested too deep is left out and listed in bad; once one is, keep lists
// the item at each batch position.
func (b *batchCall[A, R]) encodeItems(buf []byte, start int, items []A) (_ []byte, bad []refused, keep []int, err error) {
	for i, it := range items {
		at := len(buf)
		if buf, err = codec.AppendOfLimit(buf, it, b.p.frameEnd(start)); err != nil {
			return nil, nil, nil, b.p.encodeError(b.fn, fmt.Sprintf("item %d", i), start, err)
		}
		if err := argDepth(b.fn, buf[at:]); err != nil {
			if keep == nil {
				keep = make([]int, i, len(items))
				for j := range keep {
					keep[j] = j
				}
			}
			bad = append(bad, refused{i, err})
			buf = buf[:at]
			continue
		}
		if keep != nil {
			keep = append(keep, i)
		}
	}
	return buf, bad, keep, nil
}

// argDepth refuses an argument that nests arrays and maps deeper than a
// task frame can carry it: alone, or in a batch or pack, whose array is a
// level more (ipc.MaxArgDepth). Sent, it would kill the worker that read
// it; split from a batch, it would not split.
func argDepth(fn string, arg []byte) error {
	if len(arg) <= ipc.MaxArgDepth {
		return nil // each level takes a byte at least
	}
	if err := ipc.CheckDepth(arg, ipc.MaxArgDepth); err != nil {
		return fmt.Errorf("%w: the argument of %s nests arrays and maps deeper than %d levels, more than a task frame carries", ErrBadArguments, fn, ipc.MaxArgDepth)
	}
	return nil
}

// Map applies f to every input and returns the results in input order, like
// multiprocessing's map. Inputs travel in chunks (ChunkSize; by default
// about four per worker), each item with its own outcome: if some items
// fail, the others' results are still returned, and the error is a
// *MapError listing the failed ones. A worker crash fails only the item it
// was running. If ctx ends, the remaining work is cancelled and Map returns
// a *CancelledError whose cause is ctx's; under a ctx that has already
// ended, nothing is sent.
func Map[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], inputs []A, opts ...Option) ([]R, error) {
	o, err := p.options("Map", optsMap, opts)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, callCancelled(ctx, f.Name())
	}
	m := &mapCall[A, R]{b: batchCall[A, R]{p: p, fn: f.Name(), o: o}, results: make([]R, len(inputs)), done: make(chan struct{})}
	if len(inputs) == 0 {
		return m.results, nil
	}
	size := o.chunkSize
	if size <= 0 {
		size = max(1, (len(inputs)+4*p.cfg.Workers-1)/(4*p.cfg.Workers))
	}
	m.left.Store(int64(len(inputs)))
	for base := 0; base < len(inputs); base += size {
		if err := m.send(inputs[base:min(base+size, len(inputs))], base); err != nil {
			for _, t := range m.tasks {
				p.cancel(t, err, true)
			}
			return nil, err
		}
	}
	finished := false
	if ctx.Err() == nil { // again: encoding many inputs takes a while
		p.pump()
		select {
		case <-m.done:
			finished = true
		case <-ctx.Done():
		}
	}
	if !finished {
		for _, t := range m.tasks {
			p.cancel(t, context.Cause(ctx), true)
		}
		return nil, callCancelled(ctx, m.b.fn)
	}
	if len(m.failed) > 0 {
		slices.SortFunc(m.failed, func(a, b *ItemError) int { return a.Index - b.Index })
		return m.results, &MapError{Total: len(inputs), Failed: m.failed}
	}
	return m.results, nil
}

// mapCall is one Map call: its results, filled by the readers, and the
// count of items still to come.
type mapCall[A, R any] struct {
	b       batchCall[A, R]
	results []R
	tasks   []*task
	mu      sync.Mutex
	failed  []*ItemError // guarded by mu
	left    atomic.Int64
	done    chan struct{} // closed once every item has its outcome
}

// send queues items, the inputs from base on, as one chunk.
func (m *mapCall[A, R]) send(items []A, base int) error {
	p := m.b.p
	t, err := m.b.chunk(items, func(i int, raw []byte, err error) {
		if err == nil {
			if derr := codec.Decode(raw, &m.results[base+i]); derr != nil {
				p.undecoded(false)
				err = fmt.Errorf("decoding the result: %w", derr)
			}
		}
		if err != nil {
			m.mu.Lock()
			m.failed = append(m.failed, &ItemError{Index: base + i, Err: err})
			m.mu.Unlock()
		}
	}, func(n int) {
		// Counted per batch, not per item: two readers hammering one
		// counter for a million items cost more than the decoding.
		if m.left.Add(-int64(n)) == 0 {
			close(m.done)
		}
	})
	if t == nil || err != nil {
		return err // nil, nil: every item refused
	}
	if _, err := p.enqueue(t, false, false); err != nil {
		return err
	}
	m.tasks = append(m.tasks, t)
	return nil
}

// Imap applies f to each input lazily, yielding results in input order as
// they become available, like multiprocessing's imap. Inputs are pulled on
// the consumer's goroutine and at most Window chunks are in flight, so
// memory stays flat however long the input. Breaking out of the loop stops
// feeding; work already sent is finished by the workers and discarded. No
// goroutine outlives the loop. If ctx ends, Imap yields a *CancelledError
// (whose cause is ctx's) once and stops; under a ctx that has already ended
// that is all it does, and nothing is sent.
func Imap[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], inputs iter.Seq[A], opts ...Option) iter.Seq2[R, error] {
	return imap[A, R](ctx, p, f, inputs, true, opts)
}

// ImapUnordered is Imap yielding results in completion order.
func ImapUnordered[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], inputs iter.Seq[A], opts ...Option) iter.Seq2[R, error] {
	return imap[A, R](ctx, p, f, inputs, false, opts)
}

type imapChunk[R any] struct {
	t       *task
	results []R
	errs    []error
	left    atomic.Int32
	done    chan struct{}
	pos     int // unordered: its index in inflight
}

func imap[A, R any](ctx context.Context, p *Pool, f workerproc.Func[A, R], inputs iter.Seq[A], ordered bool, opts []Option) iter.Seq2[R, error] {
	call := "Imap"
	if !ordered {
		call = "ImapUnordered"
	}
	return func(yield func(R, error) bool) {
		var zero R
		o, err := p.options(call, optsImap, opts)
		if err != nil {
			yield(zero, err)
			return
		}
		window := o.window
		if window <= 0 {
			window = 4 * p.cfg.Workers
		}
		next, stop := iter.Pull(inputs)
		defer stop()
		r := &imapRun[A, R]{
			b: batchCall[A, R]{p: p, fn: f.Name(), o: o}, next: next, ordered: ordered,
			size: max(1, o.chunkSize), window: window,
			finished: make(chan *imapChunk[R], window), // never blocks: at most window chunks exist
		}
		defer r.abandon()
		r.run(ctx, yield)
	}
}

// imapRun is one Imap or ImapUnordered loop, on the consumer's goroutine.
type imapRun[A, R any] struct {
	b         batchCall[A, R]
	next      func() (A, bool)
	ordered   bool
	size      int // items per chunk
	window    int // chunks in flight at most
	inflight  []*imapChunk[R]
	finished  chan *imapChunk[R] // unordered: chunks done
	exhausted bool
	items     []A
}

// abandon stops feeding: drop what is queued, let running items finish
// and discard them. Nothing waits on them afterwards.
func (r *imapRun[A, R]) abandon() {
	for _, c := range r.inflight {
		if c.t != nil {
			r.b.p.cancel(c.t, context.Canceled, false)
		}
	}
}

func (r *imapRun[A, R]) run(ctx context.Context, yield func(R, error) bool) {
	var zero R
	for {
		if ctx.Err() != nil && (!r.exhausted || len(r.inflight) > 0) {
			// Checked before every refill, so that nothing more is sent
			// (the waits below may pick a finished chunk over ctx).
			yield(zero, callCancelled(ctx, r.b.fn))
			return
		}
		if err := r.refill(); err != nil {
			yield(zero, err)
			return
		}
		if len(r.inflight) == 0 {
			return
		}
		c := r.wait(ctx)
		if c == nil {
			yield(zero, callCancelled(ctx, r.b.fn))
			return
		}
		for i := range c.results {
			if !yield(c.results[i], c.errs[i]) {
				return
			}
		}
	}
}

// refill sends chunks until the window is full or the inputs run out,
// then dispatches them at once, on this goroutine.
func (r *imapRun[A, R]) refill() error {
	refilled := false
	for !r.exhausted && len(r.inflight) < r.window {
		r.items = r.items[:0]
		for len(r.items) < r.size {
			v, ok := r.next()
			if !ok {
				r.exhausted = true
				break
			}
			r.items = append(r.items, v)
		}
		if len(r.items) == 0 {
			break
		}
		c, err := r.send(r.items)
		if err != nil {
			return err
		}
		c.pos = len(r.inflight)
		r.inflight = append(r.inflight, c)
		refilled = true
	}
	if refilled {
		r.b.p.pump()
	}
	return nil
}

// send queues items as one chunk.
func (r *imapRun[A, R]) send(items []A) (*imapChunk[R], error) {
	p := r.b.p
	c := &imapChunk[R]{results: make([]R, len(items)), errs: make([]error, len(items)), done: make(chan struct{})}
	c.left.Store(int32(len(items)))
	t, err := r.b.chunk(items, func(i int, raw []byte, err error) {
		if err == nil {
			if derr := codec.Decode(raw, &c.results[i]); derr != nil {
				p.undecoded(false)
				err = fmt.Errorf("task %d (%s): decoding the result: %w", c.t.id, c.t.fn, derr)
			}
		}
		c.errs[i] = err
	}, func(n int) {
		if c.left.Add(-int32(n)) == 0 {
			close(c.done)
			if !r.ordered {
				r.finished <- c
			}
		}
	})
	if err == nil && t != nil { // nil: every item refused
		c.t = t
		_, err = p.enqueue(t, false, false)
	}
	return c, err
}

// wait returns the next chunk to yield, taken out of inflight: the first
// sent (ordered) or the first done; nil if ctx ends first.
func (r *imapRun[A, R]) wait(ctx context.Context) *imapChunk[R] {
	if r.ordered {
		c := r.inflight[0]
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil
		}
		r.inflight[0] = nil
		r.inflight = r.inflight[1:]
		return c
	}
	var c *imapChunk[R]
	select {
	case c = <-r.finished:
	case <-ctx.Done():
		return nil
	}
	// Order does not matter: the last takes c's place.
	last := r.inflight[len(r.inflight)-1]
	r.inflight[c.pos], last.pos = last, c.pos
	r.inflight[len(r.inflight)-1] = nil
	r.inflight = r.inflight[:len(r.inflight)-1]
	return c
}
