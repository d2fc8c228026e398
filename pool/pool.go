package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	cfg       Config
	log       *slog.Logger
	command               // the worker program, resolved once
	defaults  callOptions // the options of a call that gives none
	cb        *callbacks  // runs completion callbacks, in order, on one goroutine
	lifecycle             // the pool's own goroutines, and how it ends (life.go)
	counters              // task ids and the tasks pending, each on a cache line of its own

	// mu guards what is pool-wide: state and workers, the catalog, the
	// scheduler's and the supervisor's fields. Each worker's own state is
	// under its connection's lock, taken after this one (conn.go).
	mu         sync.Mutex
	state      poolState
	workers    []*worker // live workers, in start order
	catalog              // what the workers serve
	scheduler            // the queue, windows and packs (scheduler.go)
	supervisor           // starting, replacing and breaking (supervisor.go)

	_          cacheLinePad
	ctxWatches // the contexts of ApplyAsync calls (watch.go)
	_          cacheLinePad
	stats      struct {
		done, failed, retried, restarts, packed atomic.Uint64
	}
}

// command is the worker program as every worker is started with it.
type command struct {
	path     string   // the worker binary
	args     []string // its arguments
	env      []string
	binary   *verifiedBinary // with Config.SHA256: what the workers execute
	maxFrame int
}

// lifecycle is how the pool's goroutines are owned and how it ends.
type lifecycle struct {
	wg        sync.WaitGroup // each worker's goroutines, and a retiring worker's
	bgDone    sync.WaitGroup // the dispatcher, the supervisor and the memory watchdog
	quit      chan struct{}  // stops the dispatcher, the supervisor and the memory watchdog
	started   atomic.Bool    // New has returned the pool
	drained   chan struct{}  // closed when closing and nothing is pending
	closeOnce sync.Once
	stopped   chan struct{} // closed when every process and goroutine is gone
	reaped    chan struct{} // closed when all are gone but the callbacks goroutine
}

// counters are written by every submitting goroutine and every reader, a
// million times a second in a burst: each has its own cache line, so that
// they do not slow each other down, or the fields around them, by sharing
// one.
type counters struct {
	_       cacheLinePad
	nextID  atomic.Uint64
	_       cacheLinePad
	pending atomic.Int64 // tasks submitted and not yet resolved
	_       cacheLinePad
}

// catalog is what the workers serve, as the first hello said; guarded by
// p.mu.
type catalog struct {
	functions map[string]bool
	runtime   string // what the first worker's hello said it runs on ("go1.26.1", "cpython 3.11.2")
	served    string // the function last found in functions: a burst calls one
}

// ctxWatches are the contexts the pool watches, guarded by watchMu.
type ctxWatches struct {
	watchMu   sync.Mutex
	watches   map[<-chan struct{}]*ctxWatch // by the context's Done channel
	idleWatch *ctxWatch                     // the one watch kept with no task
	lastWatch atomic.Pointer[ctxWatch]      // the watch last joined: tried first, without the lock
}

// cacheLinePad keeps the fields around it on cache lines of their own.
type cacheLinePad struct{ _ [64]byte }

// New starts a pool and waits until every worker has said hello and run the
// initializer. ctx bounds the start only; the pool lives until Close or
// Terminate. If any worker fails to start, New stops the others and returns
// a *StartError saying what happened.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, log: cfg.Logger}
	p.kick = make(chan struct{}, 1)
	p.restart = make(chan struct{}, 1)
	p.quit, p.drained = make(chan struct{}), make(chan struct{})
	p.stopped, p.reaped = make(chan struct{}), make(chan struct{})
	p.epoch = time.Now()
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
	if err := p.startAll(ctx); err != nil {
		p.Terminate()
		return nil, err
	}
	p.bgDone.Add(3)
	go p.dispatcher()
	go p.watchMemory()
	go p.supervise()
	p.started.Store(true)
	p.log.Debug("pool started", "workers", cfg.Workers, "command", p.path)
	return p, nil
}

// startAll starts Config.Workers workers and waits until each is ready,
// or one has failed, or ctx has ended.
func (p *Pool) startAll(ctx context.Context) error {
	var started []*worker
	for range p.cfg.Workers {
		w, err := p.start()
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.workers = append(p.workers, w)
		p.mu.Unlock()
		started = append(started, w)
		p.sendInit(w)
		w.run()
	}
	for _, w := range started {
		select {
		case err := <-w.ready:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("starting workers: %w", context.Cause(ctx))
		}
	}
	return nil
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
	switch {
	case len(p.cfg.Command) == 0 && p.cfg.SelfBinary != "":
		p.path = p.cfg.SelfBinary
		set(workerproc.EnvWorker + "=1")
	case len(p.cfg.Command) == 0:
		if !workerproc.MainCalled() {
			return errors.New("ppool: Config.Command is empty, so workers re-execute this program, but its main never called workerproc.Main(); call it first thing in main (and in TestMain)")
		}
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("ppool: finding this program to re-execute as a worker: %w", err)
		}
		p.path = exe
		set(workerproc.EnvWorker + "=1")
	default:
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
