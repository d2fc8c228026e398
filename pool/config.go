package pool

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/ppool/ppool/workerproc"
)

// Config says how to run a pool. The zero Config is a good pool: one worker
// per usable CPU core, running this same binary, no timeouts, no retries.
type Config struct {
	// Workers is the number of worker processes; 0 means one per usable
	// core (CPU affinity and cgroup quota respected, as GOMAXPROCS is).
	Workers int
	// Command is a worker binary and its arguments, for workers other than
	// this program itself. Empty means re-executing this binary, whose main
	// must call workerproc.Main first.
	Command []string
	// SelfBinary, when Command is empty, is a binary to run in place of
	// re-executing this one: built from the same code, serving the same
	// functions, its main calling workerproc.Main, but linking less (ppool
	// runs its slim ppool-worker so). It starts as this program would,
	// with PPOOL_WORKER set. Empty means this program's own binary; with
	// Command set it is not used (it stands in for this program only).
	SelfBinary string
	// Launcher, if set, starts each worker process in place of the
	// pool's own exec. goplugin.Launcher (package pool/goplugin) launches
	// Command through hashicorp/go-plugin: a Go worker built with
	// workerproc/plugin.Main. go-plugin checks the handshake cookie and
	// protocol version and forwards the worker's output to Logger; tasks
	// flow over the pipes as for any worker.
	Launcher Launcher
	// SHA256, if set, is the hex SHA-256 of the worker binary (Command[0]).
	// The binary is read and hashed once, into a sealed in-memory copy
	// that every worker, the first and every replacement, executes: a
	// binary swapped or written in place after the check never runs.
	// (Where the kernel allows no such copy, the file is hashed again
	// before every start, and a changed one is refused.) A script works
	// too: its interpreter reads it from the worker's fd 5.
	SHA256 string
	// Env is added to the workers' environment.
	Env []string
	// Threads is each worker's thread budget: GOMAXPROCS and the
	// OMP/OPENBLAS/MKL thread variables are set to it. Default 1, so that
	// Workers workers use Workers cores.
	Threads int
	// Initializer runs once in each worker before its first task, like
	// multiprocessing.Pool's initializer and initargs. A worker whose
	// initializer fails is not used.
	Initializer *workerproc.Call
	// TaskTimeout bounds each task's run time, counted from when it reaches
	// the head of its worker's queue; 0 means no limit. Per call: Timeout.
	TaskTimeout time.Duration
	// Retries is how many more times a task is run after its worker crashed,
	// hung past the timeout or went over the memory limit. Errors the
	// function returns are not retried unless the call says RetryErrors.
	Retries int
	// MaxTasksPerWorker retires a worker after this many tasks and starts a
	// fresh one (multiprocessing's maxtasksperchild); 0 means never.
	MaxTasksPerWorker int
	// MaxWorkerMemory kills a worker whose anonymous memory (RSS less shared
	// pages) goes over this many bytes; its task fails with
	// *MemoryLimitError. 0 means no limit.
	MaxWorkerMemory uint64
	// MemoryCheckInterval is how often worker memory is sampled while a
	// task with a memory limit runs. Default 100 ms.
	MemoryCheckInterval time.Duration
	// KillGrace is how long a worker has to stop a cancelled or timed-out
	// task, or to exit after shutdown, before it is killed. Default 500 ms.
	KillGrace time.Duration
	// StartTimeout bounds how long a new worker may take to say hello and run
	// its initializer. Default 30 s: generous, as a loaded machine can take
	// seconds to start a process.
	StartTimeout time.Duration
	// Prefetch caps how many tasks are sent to one worker ahead of its
	// results. The pool sends fewer when tasks are slow (so one worker does
	// not hoard work others could do) and up to Prefetch when they are tiny
	// (so the pipes stay busy); from an average of 2 ms a worker gets one
	// task at a time. Default 256; 1 means one task at a time always.
	Prefetch int
	// MaxFrame is the largest message, in bytes, either side may send.
	// Default 256 MiB.
	MaxFrame int
	// CrashLoopLimit is how many workers in a row may fail to start (not
	// executable, or gone before their hello or during the initializer)
	// before the pool fails its calls with ErrCrashLoop. A worker that dies
	// running a task never counts: that is the task's fault, charged to its
	// retries. Default 5.
	CrashLoopLimit int
	// Logger receives worker output and supervision events. Default: none.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 500 * time.Millisecond
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 256
	}
	if c.MemoryCheckInterval <= 0 {
		c.MemoryCheckInterval = 100 * time.Millisecond
	}
	if c.CrashLoopLimit <= 0 {
		c.CrashLoopLimit = 5
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Option adjusts one call: Timeout, Retries, MemoryLimit, RetryErrors,
// Callback, ErrorCallback, DoneCallback, ChunkSize, Window. An option
// given to a call it does not apply to makes the call fail with
// ErrOptionNotApplicable:
//
//	                          Apply  ApplyAsync  Map  Imap, ImapUnordered
//	Timeout, Retries,
//	MemoryLimit                 ✓        ✓        ✓        ✓
//	RetryErrors                 ✓        ✓
//	Callback, ErrorCallback,
//	DoneCallback                         ✓
//	ChunkSize                                     ✓        ✓
//	Window                                                 ✓
type Option func(*callOptions)

// optionKind is one of the Options, a bit in callOptions.given.
type optionKind uint16

const (
	optTimeout optionKind = 1 << iota
	optRetries
	optMemoryLimit
	optRetryErrors
	optCallback
	optErrorCallback
	optDoneCallback
	optChunkSize
	optWindow
)

// optionNames are the Options' names, in the order of their bits.
var optionNames = [...]string{"Timeout", "Retries", "MemoryLimit", "RetryErrors", "Callback", "ErrorCallback", "DoneCallback", "ChunkSize", "Window"}

// The options each entry point takes.
const (
	optsEvery      = optTimeout | optRetries | optMemoryLimit
	optsApply      = optsEvery | optRetryErrors
	optsApplyAsync = optsApply | optCallback | optErrorCallback | optDoneCallback
	optsMap        = optsEvery | optChunkSize
	optsImap       = optsMap | optWindow
)

// why says why an option does not apply to the calls that refuse it.
func (k optionKind) why() string {
	switch k {
	case optRetryErrors:
		return "a chunk's items answer with their own errors, which are not retried"
	case optCallback, optErrorCallback, optDoneCallback:
		return "only ApplyAsync runs callbacks"
	case optChunkSize:
		return "only Map, Imap and ImapUnordered send chunks"
	case optWindow:
		return "only Imap and ImapUnordered keep a window of chunks in flight"
	}
	return ""
}

// check returns an error wrapping ErrOptionNotApplicable if o holds an
// option that call, which takes those in allowed, does not apply.
func (o *callOptions) check(call string, allowed optionKind) error {
	extra := o.given &^ allowed
	if extra == 0 {
		return nil
	}
	var names []string
	var why string
	for i, name := range optionNames {
		if k := optionKind(1) << i; extra&k != 0 {
			names = append(names, name)
			if why == "" {
				why = k.why()
			}
		}
	}
	return fmt.Errorf("%w: %s given to %s (%s)", ErrOptionNotApplicable, strings.Join(names, ", "), call, why)
}

type callOptions struct {
	given       optionKind // the options the call gave
	timeout     time.Duration
	timeoutSet  bool
	retries     int
	retriesSet  bool
	retryErrors bool
	chunkSize   int
	window      int
	memory      uint64
	onSuccess   any // func(R), checked against R by the typed call
	onError     func(error)
	onDone      any // func(R, error, TaskInfo), checked against R by the typed call
}

// Timeout overrides Config.TaskTimeout for this call (0: no limit).
func Timeout(d time.Duration) Option {
	return func(o *callOptions) { o.timeout, o.timeoutSet, o.given = d, true, o.given|optTimeout }
}

// Retries overrides Config.Retries for this call.
func Retries(n int) Option {
	return func(o *callOptions) { o.retries, o.retriesSet, o.given = n, true, o.given|optRetries }
}

// MemoryLimit overrides Config.MaxWorkerMemory while this call runs: its
// worker is killed, and the call fails with *MemoryLimitError, if its
// anonymous memory passes limit bytes.
func MemoryLimit(limit uint64) Option {
	return func(o *callOptions) { o.memory, o.given = limit, o.given|optMemoryLimit }
}

// RetryErrors makes errors returned by the function count for retries too,
// not only crashes, timeouts and memory kills. Apply and ApplyAsync only.
func RetryErrors() Option {
	return func(o *callOptions) { o.retryErrors, o.given = true, o.given|optRetryErrors }
}

// Callback runs fn with the result of a successful ApplyAsync, on the pool's
// callback goroutine, like apply_async's callback. R must be the function's
// result type; a mismatch panics at the call.
func Callback[R any](fn func(R)) Option {
	return func(o *callOptions) { o.onSuccess, o.given = fn, o.given|optCallback }
}

// ErrorCallback runs fn with the error of a failed ApplyAsync, on the pool's
// callback goroutine, like apply_async's error_callback.
func ErrorCallback(fn func(error)) Option {
	return func(o *callOptions) { o.onError, o.given = fn, o.given|optErrorCallback }
}

// DoneCallback runs fn once an ApplyAsync completes, whether it succeeded
// or failed, on the pool's callback goroutine (after Callback or
// ErrorCallback, if those are given too): with the result (the zero value
// on failure), the error, and the task's TaskInfo, final by then. R must
// be the function's result type; a mismatch panics at the call.
func DoneCallback[R any](fn func(result R, err error, info TaskInfo)) Option {
	return func(o *callOptions) { o.onDone, o.given = fn, o.given|optDoneCallback }
}

// ChunkSize sets how many items Map, Imap and ImapUnordered send to a worker
// in one message. Map's default splits the input into about four chunks per
// worker, as multiprocessing does; Imap's default is 1.
func ChunkSize(n int) Option {
	return func(o *callOptions) { o.chunkSize, o.given = n, o.given|optChunkSize }
}

// Window bounds how many chunks Imap and ImapUnordered keep in flight;
// default 4 per worker.
func Window(n int) Option {
	return func(o *callOptions) { o.window, o.given = n, o.given|optWindow }
}

// options returns the options of call, which takes those in allowed: the
// pool's defaults, shared by every call that gives none (tasks keep a
// pointer, and a million of them should not carry a million copies), or a
// fresh set. An option the call does not take is an error wrapping
// ErrOptionNotApplicable; the options are returned all the same.
func (p *Pool) options(call string, allowed optionKind, opts []Option) (*callOptions, error) {
	if len(opts) == 0 {
		return &p.defaults, nil
	}
	o := p.defaults
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return &o, o.check(call, allowed)
}

// A Launcher starts worker processes in a way of its own: package
// pool/goplugin has one, for hashicorp/go-plugin. It is a hook of its own
// so that a program that embeds a pool does not link go-plugin unless it
// asks for it.
type Launcher interface {
	// Start calls cmd.Start, once, and returns when the worker may be
	// given tasks. The pool has set cmd's program, arguments,
	// environment, descriptors (fds 3 and 4), process attributes (process
	// group, parent-death signal, cgroup), Cancel and WaitDelay: Start may
	// add to cmd.Env, and sets cmd.Stdout and cmd.Stderr, copying what
	// arrives there to output (logged, and kept for crash reports).
	// timeout is StartTimeout. exited is closed once the pool has waited
	// for the process: Start never waits for it itself. release, if not
	// nil, is called once the process is gone, or at once if Start fails.
	Start(cmd *exec.Cmd, output io.Writer, exited <-chan struct{}, timeout time.Duration) (release func(), err error)
}
