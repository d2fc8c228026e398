package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ppool/ppool/internal/contain"
	"github.com/ppool/ppool/internal/launch"
	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/workerproc"
)

// poolState is where a pool is in its life.
type poolState int

const (
	poolRunning poolState = iota
	poolClosing           // Close called: no new tasks; finishing the queued ones
	poolStopped           // workers told to stop or killed
	poolBroken            // crash loop: no workers, every task fails; now and then a probe worker is started
)

func (s poolState) String() string {
	return [...]string{"running", "closing", "stopped", "broken"}[s]
}

// Pool is a set of worker processes that run tasks. Make one with New, give
// it work with Apply, ApplyAsync, Map, Imap or ImapUnordered, and end it with
// Close or Terminate. Its methods are safe for concurrent use.
type Pool struct {
	cfg      Config
	log      *slog.Logger
	path     string   // the worker binary
	args     []string // its arguments
	env      []string
	binary   *verifiedBinary // with Config.SHA256: what the workers execute
	maxFrame int
	defaults callOptions // the options of a call that gives none

	spawner *launch.Spawner
	reaper  *launch.Reaper // nil if it could not start
	cgroups *contain.Root  // where each worker gets a cgroup; nil if the machine offers none
	cb      *callbacks
	wg      sync.WaitGroup // worker goroutines
	kick    chan struct{}  // wakes the dispatcher; size 1 so kicks coalesce
	restart chan struct{}  // wakes the supervisor; size 1 so kicks coalesce
	quit    chan struct{}  // stops the dispatcher and the memory watchdog
	bgDone  sync.WaitGroup
	started atomic.Bool // New has returned the pool

	// The submitting goroutines, the dispatcher and the readers each
	// write some of what follows, a million times a second in a burst:
	// each group has its own cache line, so that they do not slow each
	// other down by sharing one.
	_       cacheLinePad
	nextID  atomic.Uint64
	_       cacheLinePad
	pending atomic.Int64 // tasks submitted and not yet resolved
	_       cacheLinePad

	mu          sync.Mutex
	state       poolState
	queue       queue
	workers     []*worker // live workers, in start order
	functions   map[string]bool
	runtime     string    // what the first worker's hello said it runs on ("go1.26.1", "cpython 3.11.2")
	served      string    // the function last found in functions: a burst calls one
	avgTask     float64   // moving average of a task frame's run time (a batch counts whole), ns
	avgItem     float64   // moving average of one call's run time (a batch's share), ns
	packBuf     []byte    // builds pack frames
	crashStreak int       // workers in a row that failed to start: not executable, or gone before they were ready
	restartAt   time.Time // no worker is started before this: the backoff after failed starts
	epoch       time.Time // tasks' times count from here
	clock       time.Time // the last clock reading of a submission, shared by a burst
	clockUses   int
	claimant    *task   // during submit: the Apply task whose caller will read its answer
	claimed     *worker // set by dispatchLocked when it gave claimant's worker to the caller
	brokenErr   error
	brokeFrom   poolState     // running or closing: where a crash loop found the pool, and where it goes back once a worker starts
	drained     chan struct{} // closed when closing and nothing is pending
	closeOnce   sync.Once
	closeErr    error
	stopped     chan struct{} // closed when every process and goroutine is gone
	reaped      chan struct{} // closed when all are gone but the callbacks goroutine

	_         cacheLinePad
	watchMu   sync.Mutex
	watches   map[<-chan struct{}]*ctxWatch // by the context's Done channel
	idleWatch *ctxWatch                     // the one watch kept with no task
	lastWatch atomic.Pointer[ctxWatch]      // the watch last joined: tried first, without the lock

	_     cacheLinePad
	stats struct {
		done, failed, retried, restarts, packed atomic.Uint64
	}
}

// servesLocked reports whether the workers serve fn, as far as the pool
// knows (before the first hello it does not, and lets the call through).
func (p *Pool) servesLocked(fn string) bool {
	if p.functions == nil || fn != "" && fn == p.served {
		return true
	}
	if !p.functions[fn] {
		return false
	}
	p.served = fn
	return true
}

// cacheLinePad keeps the fields around it on cache lines of their own.
type cacheLinePad struct{ _ [64]byte }

// New starts a pool and waits until every worker has said hello and run the
// initializer. ctx bounds the start only; the pool lives until Close or
// Terminate. If any worker fails to start, New stops the others and returns
// a *StartError saying what happened.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		kick:    make(chan struct{}, 1),
		restart: make(chan struct{}, 1),
		quit:    make(chan struct{}),
		drained: make(chan struct{}),
		stopped: make(chan struct{}),
		reaped:  make(chan struct{}),
		epoch:   time.Now(),
	}
	p.defaults = callOptions{timeout: cfg.TaskTimeout, retries: cfg.Retries, memory: cfg.MaxWorkerMemory}
	p.maxFrame = cfg.MaxFrame
	if p.maxFrame <= 0 || p.maxFrame > ipc.DefaultMaxFrame*15 {
		p.maxFrame = ipc.DefaultMaxFrame
	}
	if init := cfg.Initializer; init != nil {
		// Its argument is the caller's own bytes: a frame carrying bad ones
		// would kill every worker at start.
		if err := ipc.CheckDepth(init.Args, ipc.MaxDepth); err != nil {
			return nil, fmt.Errorf("ppool: Config.Initializer: %w: the argument of %s: %v", ErrBadArguments, init.Function, err)
		}
	}
	if err := p.resolveCommand(); err != nil {
		return nil, err
	}
	p.spawner = launch.NewSpawner()
	r, err := launch.NewReaper()
	if err != nil {
		p.log.Warn("no reaper: programs started by workers may outlive a killed master", "err", err)
	}
	p.reaper = r
	if p.cgroups, err = contain.NewRoot(); err != nil {
		p.log.Debug("no cgroup for the workers: programs they start that leave their process group will not be killed", "err", err)
	}
	p.cb = newCallbacks(p.log)

	var started []*worker
	var startErr error
	for range cfg.Workers {
		var w *worker
		if w, startErr = p.start(); startErr != nil {
			break
		}
		p.mu.Lock()
		p.workers = append(p.workers, w)
		p.mu.Unlock()
		started = append(started, w)
		p.sendInit(w)
		w.run()
	}
	if startErr == nil {
	wait:
		for _, w := range started {
			select {
			case err := <-w.ready:
				if err != nil {
					startErr = err
					break wait
				}
			case <-ctx.Done():
				startErr = fmt.Errorf("starting workers: %w", context.Cause(ctx))
				break wait
			}
		}
	}
	if startErr != nil {
		p.Terminate()
		return nil, startErr
	}
	p.bgDone.Add(1)
	go p.dispatcher()
	p.bgDone.Add(1)
	go p.watchMemory()
	p.bgDone.Add(1)
	go p.supervise()
	p.started.Store(true)
	p.log.Debug("pool started", "workers", cfg.Workers, "command", p.path)
	return p, nil
}

func (p *Pool) resolveCommand() error {
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range os.Environ() {
		set(kv)
	}
	if len(p.cfg.Command) == 0 {
		if !workerproc.MainCalled() {
			return errors.New("ppool: Config.Command is empty, so workers re-execute this program, but its main never called workerproc.Main(); call it first thing in main (and in TestMain)")
		}
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("ppool: finding this program to re-execute as a worker: %w", err)
		}
		p.path = exe
		set(workerproc.EnvWorker + "=1")
	} else {
		p.path, p.args = p.cfg.Command[0], p.cfg.Command[1:]
		if p.cfg.SHA256 != "" {
			b, err := openVerified(p.path, p.cfg.SHA256)
			if err != nil {
				return err
			}
			p.binary = b
		}
	}
	for _, kv := range launch.ThreadEnv(p.cfg.Threads) {
		set(kv)
	}
	if p.cfg.MaxWorkerMemory > 0 {
		// Let a Go worker's GC work hard before the pool has to kill it.
		set("GOMEMLIMIT=" + strconv.FormatUint(p.cfg.MaxWorkerMemory/10*9, 10))
	}
	for _, kv := range p.cfg.Env {
		set(kv)
	}
	// The protocol's own variables come last: Config.Env must not make the
	// workers speak something the master does not.
	set(ipc.EnvProtocol + "=" + ipc.FormatVersions(ipc.Versions))
	set(ipc.EnvThreads + "=" + strconv.Itoa(p.cfg.Threads))
	set(ipc.EnvMaxFrame + "=" + strconv.Itoa(p.maxFrame))
	for _, k := range order {
		p.env = append(p.env, k+"="+env[k])
	}
	return nil
}

// sendInit queues the initializer as the worker's first task.
func (p *Pool) sendInit(w *worker) {
	init := p.cfg.Initializer
	if init == nil {
		return
	}
	t := &task{id: p.nextID.Add(1), fn: init.Function, opts: &callOptions{}}
	t.frame = ipc.AppendTask(nil, t.id, init.Function, init.Args, 0, false)
	p.mu.Lock()
	w.inflight = append(w.inflight, &slot{t: t, init: true})
	w.enqueueLocked(t.frame, nil)
	p.mu.Unlock()
	w.flush()
}

// hello handles a worker's first frame. A non-empty return is why the
// worker must go.
func (p *Pool) hello(w *worker, m ipc.Msg) string {
	if _, err := ipc.Negotiate(ipc.Versions, m.Versions); err != nil {
		p.mu.Lock()
		w.killCause = &StartError{Command: p.path, PID: w.pid, Reason: "refused", Err: err}
		p.mu.Unlock()
		return err.Error()
	}
	fns := make(map[string]bool, len(m.Functions))
	for _, f := range m.Functions {
		fns[f] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w.helloed = true
	if init := p.cfg.Initializer; init != nil && !fns[init.Function] {
		w.killCause = &StartError{Command: p.path, PID: w.pid, Reason: fmt.Sprintf("the initializer %q is not among the functions it serves", init.Function)}
		return "unknown initializer"
	}
	if p.functions == nil {
		p.functions, p.runtime = fns, m.Runtime
	}
	if p.cfg.Initializer == nil {
		p.readyLocked(w)
	}
	return ""
}

func (p *Pool) readyLocked(w *worker) {
	if w.state != workerStarting {
		return
	}
	w.state = workerReady
	if p.crashStreak > 0 || p.state == poolBroken {
		// A worker started: whatever kept workers from starting is over.
		p.crashStreak = 0
		p.restartAt = time.Time{}
		if p.state == poolBroken {
			p.state = p.brokeFrom
			p.brokenErr = nil
			p.log.Info("pool running again: a worker started after the crash loop", "worker", w.pid)
		}
		p.kickSupervisor()
	}
	select {
	case w.ready <- nil:
	default:
	}
	p.kickDispatcher()
}

func (p *Pool) kickDispatcher() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// dispatcher hands queued tasks to workers whenever something was queued
// without being dispatched on the spot (ApplyAsync, a worker becoming ready).
// Running it on its own goroutine is what lets a burst of ApplyAsync calls
// reach the workers in a few large writes.
func (p *Pool) dispatcher() {
	defer p.bgDone.Done()
	for {
		select {
		case <-p.kick:
			p.pump()
		case <-p.quit:
			return
		}
	}
}

// pump sends queued tasks to workers with room, then writes them out.
func (p *Pool) pump() {
	p.mu.Lock()
	touched, ended := p.dispatchLocked()
	p.mu.Unlock()
	for _, w := range touched {
		w.flush()
	}
	p.cancelEnded(ended)
}

// windowLocked is how many tasks a worker may have in flight: enough queued
// behind the running one to cover about a millisecond of work, so tiny tasks
// stream while slow tasks are not hoarded by one worker.
func (p *Pool) windowLocked() int {
	if p.cfg.Prefetch == 1 || p.avgTask >= float64(soloAbove) {
		return 1
	}
	n := 2
	if p.avgTask > 0 {
		n = int(float64(time.Millisecond)/p.avgTask) + 2
	}
	return min(max(n, 2), p.cfg.Prefetch)
}

// soloAbove is the average task run time from which a worker gets its next
// task only once it has answered the last: a task queued behind a slow one
// could have run on a worker that falls idle meanwhile, and at the end of a
// job that idles a worker for a whole task. Waiting for the answer costs a
// pipe round trip, tens of µs, under 2% of such a task.
const soloAbove = 2 * time.Millisecond

// dispatchLocked hands queued tasks to workers with room. It returns the
// workers to flush, and the tasks it took from the queue because their
// context had ended, for the caller to cancel once the lock is released.
func (p *Pool) dispatchLocked() (touched []*worker, ended []*task) {
	if p.queue.len() == 0 || (p.state != poolRunning && p.state != poolClosing) {
		return nil, nil
	}
	window := p.windowLocked()
	now := time.Now()
	for p.queue.len() > 0 {
		var best *worker
		for _, w := range p.workers {
			if w.state == workerReady && len(w.inflight) < window && (best == nil || len(w.inflight) < len(best.inflight)) {
				best = w
			}
		}
		if best == nil {
			break
		}
		t := p.queue.popFront()
		if t.claimed.Load() {
			continue // cancelled while queued
		}
		if t.contextEnded() {
			ended = append(ended, t)
			continue
		}
		if p.packableLocked(t) {
			t = p.packLocked(t)
		}
		t.w = best
		if len(best.inflight) == 0 {
			if t == p.claimant && best.helloed && !best.claimed && best.readFail == "" {
				// The caller will read this answer itself (worker.readFor).
				best.claimed = true
				p.claimed = best
			} else {
				best.signal() // answers are due: its reader must read them
			}
		}
		best.inflight = append(best.inflight, &slot{t: t})
		best.enqueueLocked(t.frame, t.tail())
		if t.pack() != nil {
			p.sentLocked(t, best)
		}
		best.sent++
		if len(best.inflight) == 1 {
			p.startHeadLocked(best, now)
		}
		if p.cfg.MaxTasksPerWorker > 0 && best.sent >= p.cfg.MaxTasksPerWorker {
			best.state = workerRetiring
		}
		if !slices.Contains(touched, best) {
			touched = append(touched, best)
		}
	}
	return touched, ended
}

// startHeadLocked starts the clock of the task now at the head of w's queue:
// a task's timeout counts from when it starts running, not from when it was
// sent behind others.
func (p *Pool) startHeadLocked(w *worker, now time.Time) {
	if w.headTimer != nil {
		w.headTimer.Stop()
		w.headTimer = nil
	}
	if len(w.inflight) == 0 {
		return
	}
	s := w.inflight[0]
	if s.abandoned || s.init {
		return
	}
	t := s.t
	t.started = now.Sub(p.epoch)
	if d := t.timeout(); d > 0 {
		w.headTimer = time.AfterFunc(d, func() { p.timedOut(w, s) })
	}
}

func (t *task) timeout() time.Duration {
	if t.batch != nil {
		return t.opts.timeout * time.Duration(t.batch.n)
	}
	return t.opts.timeout
}

// answer is a task's outcome, recorded under the lock and handed to the
// task once it is released.
type answer struct {
	t     *task
	value []byte
	err   error
}

// answers handles a run of frames a worker's reader read in one go:
// results and progress reports. The run takes the pool's lock once, not
// once per frame; the tasks are resolved after it is released, and if
// answers made room while tasks wait, the dispatcher is woken to send
// them: a reader never writes. now is when the run was read. A non-empty
// return is why the worker must go.
func (p *Pool) answers(w *worker, msgs []ipc.Msg, now time.Time) string {
	done := make([]answer, 0, len(msgs))
	reason := ""
	p.mu.Lock()
	for _, m := range msgs {
		switch m.Kind {
		case ipc.KindResult:
			reason = p.resultLocked(w, m, now, &done)
		case ipc.KindProgress:
			p.log.Debug("progress", "worker", w.pid, "task", m.ID, "done", m.Done, "total", m.Total)
		default:
			reason = fmt.Sprintf("protocol error: unexpected %s frame", m.Kind)
		}
		if reason != "" {
			break
		}
	}
	waiting := p.queue.len() > 0
	p.mu.Unlock()
	for _, a := range done {
		p.finish(a.t, a.value, a.err)
	}
	if waiting {
		p.kickDispatcher()
	}
	return reason
}

// resultLocked records a worker's answer to a task, and appends the task
// to done if it is resolved now (not abandoned, not to be retried).
func (p *Pool) resultLocked(w *worker, m ipc.Msg, now time.Time, done *[]answer) string {
	s, head := w.answeredLocked(m.ID)
	if s == nil {
		return fmt.Sprintf("protocol error: result for task %d, which it was not running", m.ID)
	}
	if head {
		p.startHeadLocked(w, now)
	}
	if w.state == workerStalled && (len(w.inflight) == 0 || !w.inflight[0].abandoned) {
		w.state = workerReady // it answered the cancel in time
	}
	t := s.t
	var err error
	if m.Err != nil {
		err = remoteError(t, w.pid, m.Err)
	}
	if s.init {
		if err != nil {
			w.killCause = &StartError{Command: p.path, PID: w.pid, Reason: "its initializer failed", Err: err}
			return "initializer failed"
		}
		p.readyLocked(w)
		return ""
	}
	if m.Err == nil {
		p.timedLocked(t, m.Duration)
	}
	var requeued bool
	if !s.abandoned {
		t.w = nil
		t.pid, t.duration = int32(w.pid), m.Duration
		if m.Err != nil && m.Err.Type == ipc.ErrTypeCancelled && t.opts.timeout > 0 {
			// The worker's own deadline fired first: the same as ours.
			err = &TimeoutError{TaskRef: t.ref(w.pid), Timeout: t.timeout()}
			requeued = p.retryLocked(t, err)
		} else if m.Err != nil && t.opts.retryErrors {
			requeued = p.retryLocked(t, err)
		}
	}
	p.retireLocked(w)
	if !s.abandoned && !requeued {
		t.frame = nil // answered for good: no retry needs it
		*done = append(*done, answer{t, m.Value, err})
	}
	return ""
}

// timedLocked adds a task's run time, d, to the moving averages the
// windows and packs are sized by. The window is in frames, so a batch
// counts whole: a chunk of many items is slow and rightly keeps the window
// small; the average per call divides it among the calls.
func (p *Pool) timedLocked(t *task, d time.Duration) {
	const alpha = 0.2
	x := float64(d)
	if p.avgTask == 0 {
		p.avgTask = x
	}
	p.avgTask = (1-alpha)*p.avgTask + alpha*x
	if n := t.calls(); n > 1 {
		x /= float64(n)
	}
	if p.avgItem == 0 {
		p.avgItem = x
	}
	p.avgItem = (1-alpha)*p.avgItem + alpha*x
}

// remoteError is the error a worker with the given pid answered for t.
func remoteError(t *task, pid int, e *ipc.Error) error {
	return &RemoteError{TaskRef: t.ref(pid), Type: e.Type, Message: e.Message, Traceback: e.Traceback}
}

// retryLocked re-queues t if it has attempts left, at the front of the
// queue: it has waited longest. cause is why the attempt failed; the task's
// TaskInfo keeps it.
func (p *Pool) retryLocked(t *task, cause error) bool {
	if p.state == poolStopped || p.state == poolBroken {
		return false
	}
	if t.pack() != nil {
		// Not a retry of anyone yet: the tasks run again alone, and only
		// the one at fault is charged when it fails again.
		p.unpackLocked(t, true)
		return true
	}
	if int(t.attempts) >= t.opts.retries {
		return false
	}
	t.attempts++
	t.extra().retriedAfter = append(t.extra().retriedAfter, cause)
	p.stats.retried.Add(1)
	t.w = nil
	p.queue.pushFront(t)
	p.kickDispatcher()
	return true
}

// retireLocked shuts down a worker that has done its share once it is idle.
func (p *Pool) retireLocked(w *worker) {
	if w.state == workerRetiring && len(w.inflight) == 0 {
		w.state = workerStopping
		w.out = ipc.AppendShutdown(w.out)
		// Not on the reader's goroutine, which only reads; counted in
		// p.wg like the worker's own goroutines, so stop waits for it.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w.flush()
			escalate([]*worker{w}, p.cfg.KillGrace) // one that ignores shutdown is stopped all the same
		}()
	}
}

// finish resolves t, or for a batch hands each item its outcome.
func (p *Pool) finish(t *task, value []byte, err error) {
	if t.pack() != nil {
		p.finishPack(t, value, err)
		return
	}
	if t.claimed.CompareAndSwap(false, true) {
		p.settle(t, value, err)
	}
}

// settle records the outcome of t, which the caller has claimed.
func (p *Pool) settle(t *task, value []byte, err error) {
	if err != nil {
		p.stats.failed.Add(uint64(t.calls())) // a batch fails each of its items
	} else {
		p.stats.done.Add(1)
	}
	t.complete(value, err)
	p.release(t.watch, 1)
}

// release accounts for n finished tasks of watch w (nil: unwatched).
func (p *Pool) release(w *ctxWatch, n int) {
	if w != nil {
		p.unwatch(w, n)
	}
	if p.pending.Add(-int64(n)) == 0 {
		p.checkDrained()
	}
}

func (p *Pool) checkDrained() {
	p.mu.Lock()
	if p.state != poolRunning && p.pending.Load() == 0 {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
	p.mu.Unlock()
}

// timedOut fires when the task at the head of w's queue has run past its
// timeout: the task fails (or is retried elsewhere) now, the worker is asked
// to cancel it and is killed if it has not answered within KillGrace.
func (p *Pool) timedOut(w *worker, s *slot) {
	p.mu.Lock()
	if len(w.inflight) == 0 || w.inflight[0] != s || s.abandoned || w.state == workerDead {
		p.mu.Unlock()
		return
	}
	t := s.t
	cause := &TimeoutError{TaskRef: t.ref(w.pid), Timeout: t.timeout()}
	t.pid, t.duration = int32(w.pid), time.Since(p.epoch)-t.started
	p.abandonLocked(w, s)
	fail, items := p.failOrRetryLocked(t, cause)
	p.mu.Unlock()
	p.log.Warn("task timed out", "task", t.id, "function", t.fn, "worker", w.pid, "timeout", cause.Timeout)
	w.flush()
	p.afterFailOrRetry(t, fail, items, cause)
}

// abandonLocked stops waiting for s: the worker gets a cancel, and if s is
// running, KillGrace to answer before it is killed.
func (p *Pool) abandonLocked(w *worker, s *slot) {
	s.abandoned = true
	s.t.w = nil
	w.out = ipc.AppendCancel(w.out, s.t.id)
	if w.inflight[0] != s {
		return
	}
	if w.state == workerReady {
		w.state = workerStalled
	}
	time.AfterFunc(p.cfg.KillGrace, func() {
		p.mu.Lock()
		stuck := len(w.inflight) > 0 && w.inflight[0] == s && w.state != workerDead
		if stuck {
			w.killedByPool = true
		}
		p.mu.Unlock()
		if stuck {
			p.log.Warn("killing worker that did not stop a cancelled task", "worker", w.pid, "task", s.t.id, "grace", p.cfg.KillGrace)
			w.kill()
		}
	})
}

// failOrRetryLocked decides the fate of a task whose run ended in a crash,
// timeout or memory kill: a batch of several items is split so that only
// the item at fault can fail; a single task is retried if it has attempts
// left. It returns fail=true if t must be finished with the cause, and the
// split items to queue, if any.
func (p *Pool) failOrRetryLocked(t *task, cause error) (fail bool, split []*task) {
	if t.batch != nil && t.batch.n > 1 {
		if split = p.splitLocked(t); split != nil {
			return false, split
		}
		return true, nil // it cannot be split: it fails whole
	}
	return !p.retryLocked(t, cause), nil
}

func (p *Pool) afterFailOrRetry(t *task, fail bool, split []*task, cause error) {
	if fail {
		p.finish(t, nil, cause)
	}
	if split != nil {
		p.pump()
	}
}

// splitLocked replaces a batch by one task per item, at the front of the
// queue in item order. The batch itself is never resolved; its items are.
// It returns nil if the batch's arguments do not split, which the checks
// in chunk rule out.
func (p *Pool) splitLocked(b *task) []*task {
	all, err := ipc.SplitArray(b.batch.args)
	if err == nil && len(all) != b.batch.n {
		err = fmt.Errorf("%d items for a batch of %d", len(all), b.batch.n)
	}
	if err != nil {
		p.log.Error("a batch's own arguments do not split", "task", b.id, "function", b.fn, "err", err)
		return nil
	}
	// From here the items answer for the batch, which nothing may resolve
	// any more (its cancel cancels them instead): resolved too, it would
	// report every item a second time.
	if !b.claimed.CompareAndSwap(false, true) {
		return nil // resolved meanwhile (cancelled): its items must not run
	}
	if b.watch != nil {
		// The items are watched as the batch was: one watch entry each.
		b.watch.live.Add(int64(len(all) - 1))
	}
	items := make([]*task, len(all))
	b.extra().split = items
	for i, args := range all {
		t := &task{
			id: p.nextID.Add(1), fn: b.fn, opts: b.opts, watch: b.watch,
			x: &extra{parent: b, index: i}, submitted: b.submitted,
		}
		t.frame = ipc.AppendTask(nil, t.id, b.fn, args, t.opts.timeout, false)
		t.onDone = splitDone
		items[i] = t
	}
	for i := len(items) - 1; i >= 0; i-- {
		p.queue.pushFront(items[i])
	}
	p.pending.Add(int64(len(items) - 1))
	p.kickDispatcher()
	return items
}

func splitDone(t *task) {
	t.x.parent.batch.itemDone(t.x.index, t.value, t.err)
	t.x.parent.batch.settle(1)
}

// workerExited handles the death of a worker, expected or not: its running
// task fails or is retried, its queued tasks go back to the pool's queue,
// and the supervisor starts a replacement unless the pool is stopping. A
// worker that never became ready failed to start, which counts toward the
// crash loop; one that died after its hello and initializer died of the
// task it was running, whose retries pay for it.
func (p *Pool) workerExited(w *worker, reason string) {
	exitErr := w.exitError(reason)
	p.mu.Lock()
	wasState := w.state
	w.state = workerDead
	if w.headTimer != nil {
		w.headTimer.Stop()
	}
	p.workers = slices.DeleteFunc(p.workers, func(x *worker) bool { return x == w })
	// Deaths the pool caused (shutdown, Close, Terminate, a cancelled task
	// past its grace, the end of a crash loop) are nobody's fault.
	byPool := w.killedByPool || wasState == workerStopping
	if wasState != workerStarting && !byPool && w.killCause == nil {
		p.log.Warn("worker died", "worker", w.pid, "reason", reason, "exit", exitErr.Error())
	}

	type outcome struct {
		t     *task
		cause error
	}
	var failed []outcome
	for i := len(w.inflight) - 1; i >= 0; i-- {
		s := w.inflight[i]
		if s.abandoned || s.init {
			continue
		}
		t := s.t
		t.w = nil
		if i > 0 { // only queued there: not its fault
			if p.state == poolStopped || p.state == poolBroken {
				// Nothing will run it now.
				cause := p.brokenErr
				if cause == nil {
					cause = fmt.Errorf("%w: task %d (%s) was waiting on worker %d", ErrPoolClosed, t.id, t.fn, w.pid)
				}
				failed = append(failed, outcome{t, cause})
				continue
			}
			if t.pack() != nil {
				p.unpackLocked(t, false)
			} else {
				p.queue.pushFront(t)
			}
			continue
		}
		var cause error = attach(exitErr, t.ref(w.pid))
		switch {
		case w.killCause != nil:
			cause = w.killCause
		case w.killedByPool && p.brokenErr != nil:
			cause = fmt.Errorf("%w; task %d (%s) was running on worker %d", p.brokenErr, t.id, t.fn, w.pid)
		case p.state == poolStopped && w.killedByPool:
			cause = fmt.Errorf("%w: task %d (%s) was running on worker %d", ErrPoolClosed, t.id, t.fn, w.pid)
		}
		t.pid = int32(w.pid)
		if t.started != 0 {
			t.duration = time.Since(p.epoch) - t.started
		}
		if fail, _ := p.failOrRetryLocked(t, cause); fail {
			failed = append(failed, outcome{t, cause})
		}
	}
	w.inflight = nil

	var startErr *StartError
	if wasState == workerStarting {
		startErr = p.startErrorLocked(w, reason, exitErr)
		select {
		case w.ready <- startErr:
		default:
		}
	}
	replaced := false
	switch {
	case p.state == poolStopped:
	case wasState == workerStarting && !p.isStarted():
		// New reports it.
	case wasState == workerStarting && !byPool:
		for _, t := range p.startFailedLocked(startErr) {
			failed = append(failed, outcome{t, p.brokenErr})
		}
		replaced = p.state != poolBroken
	case p.state != poolBroken:
		replaced = true
	}
	if p.state == poolBroken {
		// What went back to the queue (a split batch) has no worker to
		// run it: it fails now, like everything queued when the pool broke.
		for _, t := range p.queue.drain() {
			failed = append(failed, outcome{t, p.brokenErr})
		}
	}
	p.mu.Unlock()

	for _, o := range failed {
		p.finish(o.t, nil, o.cause)
	}
	if replaced {
		p.stats.restarts.Add(1)
	}
	p.kickSupervisor()
	p.pump()
}

// startErrorLocked says why w, which never became ready, is gone.
func (p *Pool) startErrorLocked(w *worker, reason string, exitErr *WorkerExitError) *StartError {
	if se, ok := w.killCause.(*StartError); ok {
		return se
	}
	e := &StartError{Command: p.path, PID: w.pid, Err: exitErr}
	switch {
	case w.killCause != nil:
		e.Reason, e.Err = "killed before it was ready", w.killCause
	case !strings.HasPrefix(reason, "its pipe closed"):
		// The master killed it for what it sent: that is the reason, and
		// the exit it caused only the consequence.
		e.Reason = reason
		bare := *exitErr
		bare.Reason = ""
		e.Err = &bare
	case w.helloed:
		e.Reason = "it exited before its initializer finished"
	default:
		e.Reason = "it exited before saying hello"
	}
	return e
}

// isStarted reports whether New has finished: during New a failed start
// fails New instead of being replaced.
func (p *Pool) isStarted() bool {
	return p.started.Load()
}

// Backoffs between worker starts. After a failed start the next one waits
// restartBackoff, doubled for each further failure in a row, up to
// restartBackoffMax: a binary being replaced gets a moment, a broken one is
// not started in a tight loop. A pool broken by a crash loop tries one
// worker after probeBackoff, doubled after each failed try up to
// probeBackoffMax, and runs again as soon as one starts.
const (
	restartBackoff    = 10 * time.Millisecond
	restartBackoffMax = time.Second
	probeBackoff      = time.Second
	probeBackoffMax   = 30 * time.Second
)

// backoff is base doubled n times, at most most.
func backoff(base, most time.Duration, n int) time.Duration {
	d := base
	for ; n > 0 && d < most; n-- {
		d *= 2
	}
	return min(d, most)
}

func (p *Pool) kickSupervisor() {
	select {
	case p.restart <- struct{}{}:
	default:
	}
}

// supervise keeps the pool at Config.Workers workers: it starts a
// replacement for each worker gone, waiting out the backoff after failed
// starts, and while the pool is broken, starts one probe worker now and then.
func (p *Pool) supervise() {
	defer p.bgDone.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.mu.Lock()
		wait, start := p.nextStartLocked(time.Now())
		p.mu.Unlock()
		if start {
			p.startReplacement()
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-p.restart:
		case <-timer.C:
		case <-p.quit:
			return
		}
		timer.Stop()
	}
}

// nextStartLocked says whether a worker should be started now, or else how
// long until one may be (0: not until something changes).
func (p *Pool) nextStartLocked(now time.Time) (wait time.Duration, start bool) {
	switch p.state {
	case poolRunning, poolClosing:
		if len(p.workers) >= p.cfg.Workers {
			return 0, false
		}
	case poolBroken:
		if len(p.workers) > 0 { // the killed ones still exiting, or the probe
			return 0, false
		}
	default:
		return 0, false
	}
	if d := p.restartAt.Sub(now); d > 0 {
		return d, false
	}
	return 0, true
}

// startReplacement starts one worker for the supervisor. A worker that
// cannot even be executed counts toward the crash loop like one that died
// at once.
func (p *Pool) startReplacement() {
	w, err := p.start()
	if errors.Is(err, launch.ErrStopped) {
		return
	}
	p.mu.Lock()
	if err != nil {
		var failed []*task
		if p.state != poolStopped {
			se, ok := err.(*StartError)
			if !ok {
				se = &StartError{Command: p.path, Reason: "cannot start it", Err: err}
			}
			failed = p.startFailedLocked(se)
		}
		cause := p.brokenErr
		p.mu.Unlock()
		for _, t := range failed {
			p.finish(t, nil, cause)
		}
		return
	}
	if p.state == poolStopped {
		// Close or Terminate came first: this worker is theirs to end,
		// not one that failed to start.
		w.state = workerStopping
		w.killedByPool = true
		p.mu.Unlock()
		w.kill()
		w.run()
		return
	}
	p.workers = append(p.workers, w)
	p.mu.Unlock()
	p.sendInit(w)
	w.run()
}

// startFailedLocked counts a worker that failed to start toward the crash
// loop and sets when the next may start. If this breaks the pool it
// returns the queued tasks, to be failed with p.brokenErr outside the lock.
func (p *Pool) startFailedLocked(cause *StartError) []*task {
	p.crashStreak++
	now := time.Now()
	limit := p.cfg.CrashLoopLimit
	if p.state == poolBroken {
		delay := backoff(probeBackoff, probeBackoffMax, p.crashStreak-limit)
		p.restartAt = now.Add(delay)
		p.brokenErr = crashLoopError(p.crashStreak, cause)
		p.log.Warn("probe worker failed to start; the pool stays broken", "failures", p.crashStreak, "next_try_in", delay, "err", cause)
		return nil
	}
	if p.crashStreak < limit {
		delay := backoff(restartBackoff, restartBackoffMax, p.crashStreak-1)
		p.restartAt = now.Add(delay)
		p.log.Warn("worker failed to start", "streak", p.crashStreak, "limit", limit, "next_try_in", delay, "err", cause)
		return nil
	}
	p.restartAt = now.Add(probeBackoff)
	return p.breakLocked(crashLoopError(p.crashStreak, cause))
}

func crashLoopError(streak int, last *StartError) error {
	return fmt.Errorf("%w: %d workers in a row failed to start; the last: %v", ErrCrashLoop, streak, last)
}

// breakLocked gives up on the pool after a crash loop: every queued task
// fails with err (returned for the caller to finish outside the lock), the
// remaining workers are killed, and later calls fail at once until a probe
// worker starts.
func (p *Pool) breakLocked(err error) []*task {
	p.brokenErr = err
	p.brokeFrom = p.state
	p.state = poolBroken
	p.log.Error("pool broken", "err", err, "next_try_in", probeBackoff)
	for _, o := range p.workers {
		o.killedByPool = true
		o.state = workerStopping
		o.kill() // a signal: nothing to wait for
	}
	return p.queue.drain()
}
