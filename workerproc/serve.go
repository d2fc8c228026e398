package workerproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ppool/ppool/ipc"
)

// EnvWorker marks a process started by ppool as one of its workers. Main
// serves when it is set, and clears it so that programs the worker starts
// are not mistaken for workers.
const EnvWorker = "PPOOL_WORKER"

// EnvCPUProfile, set in a worker's environment (pool.Config.Env), makes each
// Go worker write a CPU profile to the path it names, suffixed with the
// worker's pid, when it exits cleanly: for finding where workers spend
// their time.
const EnvCPUProfile = "PPOOL_WORKER_CPUPROFILE"

// Main turns this process into a worker if ppool started it as one, and
// returns at once otherwise. Call it first thing in main, and in TestMain of
// tests that start pools of the test binary:
//
//	func main() {
//		workerproc.Main()
//		...
//	}
//
// In a worker it serves the functions in Default and exits, never returning.
func Main() {
	mainCalled = true
	if os.Getenv(EnvWorker) == "" {
		return
	}
	os.Unsetenv(EnvWorker)
	err := Serve(context.Background(), Default)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ppool worker %d: %v\n", os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

var mainCalled bool

// MainCalled reports whether Main has run in this process: the pool checks
// it before re-executing its own binary as a worker, since a binary whose
// main does not call Main would run its whole program instead.
func MainCalled() bool { return mainCalled }

// Serve runs the worker side of the protocol on fds 3 and 4 until the master
// sends shutdown or closes its end, then returns nil. It sends hello, then
// runs tasks one at a time, in the order they arrive.
//
// A custom worker binary calls it from main with its own registry, or with
// Default. ctx ending makes Serve return after the running task.
func Serve(ctx context.Context, reg *Registry) error {
	if reg == nil {
		reg = Default
	}
	threads := 1
	if s := os.Getenv(ipc.EnvThreads); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			threads = n
		}
	}
	runtime.GOMAXPROCS(threads)
	if path := os.Getenv(EnvCPUProfile); path != "" {
		// Profiling a worker: one file per process, written at exit.
		if f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}

	// The pipes are not closed on return: the process is about to exit,
	// and closing fd 4 first would make the master see a closed pipe
	// before the exit status and last message that explain it.
	in, out, err := openPipes()
	if err != nil {
		return err
	}

	maxFrame := ipc.DefaultMaxFrame
	if s := os.Getenv(ipc.EnvMaxFrame); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			maxFrame = n
		}
	}
	s := &server{reg: reg, out: out, maxFrame: maxFrame}
	s.cond = sync.NewCond(&s.mu)

	hello := ipc.AppendHello(nil, ipc.Versions, os.Getpid(), reg.Names(), runtime.Version())
	if _, err := out.Write(hello); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	if s := os.Getenv(ipc.EnvProtocol); s != "" {
		master, err := ipc.ParseVersions(s)
		if err != nil {
			return err
		}
		// The master refuses a hello it cannot speak to, and says why; the
		// worker only needs to stop.
		if _, err := ipc.Negotiate(master, ipc.Versions); err != nil {
			return err
		}
	}

	stop := context.AfterFunc(ctx, func() { s.closeQueue(nil) })
	defer stop()
	go s.read(ipc.NewReader(in, 64<<10, maxFrame))
	return s.run(ctx)
}

// openPipes wraps fds 3 and 4 as pollable files, close-on-exec so that any
// program the worker starts does not hold the master's pipes open.
func openPipes() (in, out *os.File, err error) {
	for _, fd := range []int{ipc.FromMasterFD, ipc.ToMasterFD} {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, nil, fmt.Errorf("fd %d is not open (was this process started by ppool?): %w", fd, err)
		}
		syscall.CloseOnExec(fd)
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, nil, fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return os.NewFile(ipc.FromMasterFD, "ppool-in"), os.NewFile(ipc.ToMasterFD, "ppool-out"), nil
}

type server struct {
	reg      *Registry
	out      *os.File
	maxFrame int

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []ipc.Msg
	closed   bool  // no more tasks will arrive
	shutdown bool  // closed by a shutdown frame: queued tasks are answered
	readErr  error // why reading stopped, nil for shutdown or EOF
	running  uint64
	cancel   *taskCtx        // the running task's context
	canceled map[uint64]bool // queued tasks cancelled before they ran

	// wbuf collects finished frames. It is written before the next task
	// starts, so that a crash is only ever blamed on the task running,
	// and when the queue runs dry. (Tiny tasks still cost little: the
	// master sends them in batch frames when they pile up.)
	wmu          sync.Mutex
	wbuf         []byte
	werr         error
	scratch      []byte // the running task's encoded value
	lastProgress time.Time
}

// bigResult is the size above which a result is written from its own buffer
// instead of being copied into wbuf.
const bigResult = 64 << 10

// read owns fd 3. Tasks go into the queue; cancels act at once, so that a
// running task can be stopped.
func (s *server) read(r *ipc.Reader) {
	for {
		m, err := r.ReadMsg()
		if err != nil {
			if err == io.EOF {
				err = nil // the master is gone or done: stop quietly
			}
			s.closeQueue(err)
			return
		}
		s.mu.Lock()
		switch m.Kind {
		case ipc.KindTask:
			s.queue = append(s.queue, m)
			s.cond.Signal()
		case ipc.KindCancel:
			switch {
			case m.ID == s.running && s.cancel != nil:
				s.cancel.cancel(context.Canceled)
			case slices.ContainsFunc(s.queue, func(q ipc.Msg) bool { return q.ID == m.ID }):
				if s.canceled == nil {
					s.canceled = map[uint64]bool{}
				}
				s.canceled[m.ID] = true
			}
			// A cancel for a task already answered needs nothing.
		case ipc.KindShutdown:
			s.shutdown = true
			s.mu.Unlock()
			s.closeQueue(nil)
			return
		}
		s.mu.Unlock()
	}
}

func (s *server) closeQueue(err error) {
	s.mu.Lock()
	if !s.closed {
		s.closed, s.readErr = true, err
	}
	if !s.shutdown && s.cancel != nil {
		s.cancel.cancel(context.Canceled) // the master is gone or broken: stop working for it
	}
	s.cond.Signal()
	s.mu.Unlock()
}

func (s *server) run(ctx context.Context) error {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.mu.Unlock()
			if err := s.flush(); err != nil {
				return err
			}
			s.mu.Lock()
			if len(s.queue) == 0 && !s.closed {
				s.cond.Wait()
			}
		}
		if s.closed {
			// Tasks still queued at shutdown are answered, so the master
			// never waits on them. After EOF nobody is listening, and after
			// a protocol error the master requeues them when we exit.
			queued := s.queue
			err, answer := s.readErr, s.shutdown
			s.mu.Unlock()
			if answer {
				for _, m := range queued {
					s.reply(ipc.AppendResult(nil, m.ID, nil, &ipc.Error{Type: ipc.ErrTypeCancelled, Message: "worker shutting down"}, 0, m.Batch))
				}
			}
			s.flush() // a master that already closed its end is not an error
			return err
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		if s.canceled[m.ID] {
			delete(s.canceled, m.ID)
			s.mu.Unlock()
			s.reply(ipc.AppendResult(nil, m.ID, nil, &ipc.Error{Type: ipc.ErrTypeCancelled, Message: "cancelled before it started"}, 0, m.Batch))
			continue
		}
		// Results of earlier tasks wait in wbuf while this one runs; make
		// sure they go out soon even if it runs long.
		// The results of earlier tasks go out before this one starts: if
		// it crashes the worker, the master must know they were done, and
		// blame only this one.
		if err := s.flush(); err != nil {
			return err
		}
		tctx := newTaskCtx(ctx, s, m.ID, m.Timeout)
		s.running, s.cancel = m.ID, tctx
		s.mu.Unlock()

		s.exec(tctx, m)

		s.mu.Lock()
		s.running, s.cancel = 0, nil
		s.mu.Unlock()
		tctx.finish()
		s.wmu.Lock()
		err := s.werr
		s.wmu.Unlock()
		if err != nil {
			return err
		}
	}
}

// reply queues one finished frame for writing. It goes out before the next
// task starts, or when the queue runs dry.
func (s *server) reply(frame []byte) {
	s.wmu.Lock()
	s.wbuf = append(s.wbuf, frame...)
	s.wmu.Unlock()
}

// replyValue queues a result frame whose value is in s.scratch, followed
// by tail, if any.
func (s *server) replyValue(id uint64, d time.Duration, batch bool, tail []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if n := len(s.scratch) + len(tail); n+64 > s.maxFrame {
		// The master would refuse the frame and kill us: say so instead.
		s.wbuf = ipc.AppendResult(s.wbuf, id, nil, &ipc.Error{Type: ipc.ErrTypeError,
			Message: fmt.Sprintf("the result encodes to %d bytes, over the frame limit of %d", n, s.maxFrame)}, d, batch)
		return
	}
	b, start := ipc.AppendResultHead(s.wbuf, id, d, batch)
	if tail == nil && len(s.scratch) < bigResult {
		s.wbuf = ipc.EndFrame(append(b, s.scratch...), start)
		return
	}
	// A large value is written from its own buffer: the frame's length is
	// set as if it were appended, then head and value go out in turn.
	big := s.scratch
	if tail != nil {
		b = append(b, s.scratch...) // the value up to tail: its bin header
		big = tail
	}
	s.wbuf = ipc.EndFrameTail(b, start, len(big))
	s.flushLocked()
	if s.werr == nil {
		if _, err := s.out.Write(big); err != nil {
			s.werr = fmt.Errorf("writing results: %w", err)
		}
	}
	if cap(s.scratch) > 4<<20 {
		s.scratch = nil // do not keep one large result's buffer
	}
}

func (s *server) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.flushLocked()
	return s.werr
}

func (s *server) flushLocked() {
	if len(s.wbuf) == 0 || s.werr != nil {
		return
	}
	if _, err := s.out.Write(s.wbuf); err != nil {
		s.werr = fmt.Errorf("writing results: %w", err)
	}
	if cap(s.wbuf) > 4<<20 {
		s.wbuf = nil
	} else {
		s.wbuf = s.wbuf[:0]
	}
}

func (s *server) exec(ctx context.Context, m ipc.Msg) {
	start := time.Now()
	h, ok := s.reg.Lookup(m.Function)
	if !ok {
		s.reply(ipc.AppendResult(nil, m.ID, nil, &ipc.Error{
			Type:    ipc.ErrTypeUnknownFunction,
			Message: fmt.Sprintf("worker %d serves no function %q", os.Getpid(), m.Function),
		}, 0, m.Batch))
		return
	}
	if !m.Batch {
		tc, _ := ctx.(*taskCtx)
		if tc != nil {
			tc.tailOK = true
		}
		b, err := call(ctx, h, m.Args, s.scratch[:0])
		s.scratch = b
		var tail []byte
		if tc != nil {
			tail, tc.tail, tc.tailOK = tc.tail, nil, false
		}
		if err == nil && tail == nil {
			err = tooDeep(b, ipc.MaxDepth)
		}
		if err != nil {
			s.reply(ipc.AppendResult(nil, m.ID, nil, remoteError(ctx, err), time.Since(start), false))
			return
		}
		s.replyValue(m.ID, time.Since(start), false, tail)
		return
	}
	items, err := ipc.NewArrayReader(m.Args)
	if err != nil {
		s.reply(ipc.AppendResult(nil, m.ID, nil, &ipc.Error{Type: ipc.ErrTypeBadArguments, Message: "batch arguments are not an array: " + err.Error()}, 0, true))
		return
	}
	b := ipc.AppendArrayHeader(s.scratch[:0], items.Len())
	for range items.Len() {
		args, err := items.Next()
		if err != nil {
			// The arguments were checked whole when the frame was read,
			// so this does not happen; if it does, the item gets an error
			// of its own.
			b = ipc.AppendItem(b, nil, &ipc.Error{Type: ipc.ErrTypeBadArguments, Message: "batch item: " + err.Error()})
			continue
		}
		if ctx.Err() != nil {
			b = ipc.AppendItem(b, nil, remoteError(ctx, ctx.Err()))
			continue
		}
		itemStart := len(b)
		b = append(b, 0x81, 0xa1, 'v') // {"v": value}
		b2, err := call(ctx, h, args, b)
		if err == nil {
			// The batch's array and the item's map take two levels.
			err = tooDeep(b2[itemStart+3:], ipc.MaxDepth-2)
		}
		if err != nil {
			b = ipc.AppendItem(b2[:itemStart], nil, remoteError(ctx, err))
			continue
		}
		b = b2
	}
	s.scratch = b
	s.replyValue(m.ID, time.Since(start), true, nil)
}

// tooDeep refuses a result that nests deeper than the protocol allows: sent,
// it would make the master kill this worker for a protocol error, and the
// task would be blamed for a crash. Fewer bytes than levels cannot nest
// that deep, so the common small result is not walked.
func tooDeep(value []byte, limit int) error {
	if len(value) <= limit {
		return nil
	}
	if err := ipc.CheckDepth(value, limit); err != nil {
		return fmt.Errorf("the result cannot be sent: %w (the protocol allows %d levels here)", err, limit)
	}
	return nil
}

// call runs h, turning a panic into an error that carries the stack.
func call(ctx context.Context, h Handler, args, out []byte) (res []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = out, &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, args, out)
}

type panicError struct {
	value any
	stack string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func remoteError(ctx context.Context, err error) *ipc.Error {
	var p *panicError
	var bad *BadArgumentsError
	switch {
	case errors.As(err, &p):
		return &ipc.Error{Type: ipc.ErrTypePanic, Message: p.Error(), Traceback: p.stack}
	case errors.As(err, &bad):
		return &ipc.Error{Type: ipc.ErrTypeBadArguments, Message: bad.Error()}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &ipc.Error{Type: ipc.ErrTypeCancelled, Message: err.Error()}
	}
	return &ipc.Error{Type: ipc.ErrTypeError, Message: err.Error()}
}

type taskKey struct{}

// taskCtx is a running task's context, cancelled by the master's cancel
// frame, by the task's timeout, or when Serve's own context ends. It is one
// allocation per task, where context.WithCancel, WithTimeout and WithValue
// together are several: tiny tasks are common, and this is their hot path.
// Its Done channel is made only if the task asks for it.
type taskCtx struct {
	parent   context.Context
	s        *server
	id       uint64
	deadline time.Time // zero: none of its own
	timer    *time.Timer
	stop     func() bool // stops watching the parent

	// A large []byte result of a single task is written from the slice the
	// function returned, after the encoded result (which then ends with
	// its bin header), instead of being copied into it.
	tailOK bool
	tail   []byte

	mu   sync.Mutex
	done chan struct{}
	// err is read without the lock: a batch checks it before each item.
	err atomic.Pointer[error]
}

func newTaskCtx(parent context.Context, s *server, id uint64, timeout time.Duration) *taskCtx {
	c := &taskCtx{parent: parent, s: s, id: id}
	if timeout > 0 {
		c.deadline = time.Now().Add(timeout)
		c.timer = time.AfterFunc(timeout, func() { c.cancel(context.DeadlineExceeded) })
	}
	if parent.Done() != nil {
		c.stop = context.AfterFunc(parent, func() { c.cancel(context.Cause(parent)) })
	}
	return c
}

// finish releases the timer and the parent's watch once the task is done.
func (c *taskCtx) finish() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
	}
	c.cancel(context.Canceled)
}

func (c *taskCtx) cancel(err error) {
	c.mu.Lock()
	if c.err.Load() == nil {
		c.err.Store(&err)
		if c.done != nil {
			close(c.done)
		}
	}
	c.mu.Unlock()
}

func (c *taskCtx) Deadline() (time.Time, bool) {
	if !c.deadline.IsZero() {
		return c.deadline, true
	}
	return c.parent.Deadline()
}

func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err.Load() != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *taskCtx) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *taskCtx) Value(key any) any {
	if key == (taskKey{}) {
		return c
	}
	return c.parent.Value(key)
}

// Progress reports how far the running task has come, for progress bars in
// the master. It is cheap to call often: reports are sent at most every
// 50 ms, except the final one (done == total). Outside a worker task it does
// nothing.
func Progress(ctx context.Context, done, total uint64) {
	t, ok := ctx.Value(taskKey{}).(*taskCtx)
	if !ok {
		return
	}
	s := t.s
	now := time.Now()
	if done < total && now.Sub(s.lastProgress) < 50*time.Millisecond {
		return
	}
	s.lastProgress = now
	s.reply(ipc.AppendProgress(nil, t.id, done, total))
	s.flush()
}
