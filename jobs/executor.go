package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ppool/ppool/jobs/kinds"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
	"github.com/ppool/ppool/workerproc"
)

// Executor runs the tasks a run hands out. The run keeps all the
// scheduling (file order, after:, per-job workers:, --fail-fast, the
// journal, interrupts); an executor only runs what it is given and says
// how much it can take. The default is the local pools (one per worker
// binary); Options.Executor supplies another.
//
// The run calls Prepare, Slots, Submit, Withdraw and Kill from its own
// goroutine, one at a time; done callbacks may come from any goroutine.
type Executor interface {
	// Prepare readies the executor for pj's tasks (the local one starts
	// the job's pool on first use). An error fails the task at hand; it is
	// asked again for each task, so it should remember a lasting failure.
	Prepare(ctx context.Context, pj *PlannedJob) error
	// Slots is how many tasks may be submitted and unfinished at once
	// now: the run never has more out. It may change (workers join or
	// leave); SlotsChanged says when.
	Slots() int
	// SlotsChanged is signalled when Slots may have changed, or nil if it
	// never does.
	SlotsChanged() <-chan struct{}
	// Submit runs task, of job pj: a whole task, a part or a merge
	// (task.Mode). done is called exactly once with the outcome; task's
	// output file is in place when it reports success.
	Submit(pj *PlannedJob, task *Task, done func(Completion))
	// Withdraw takes back the submitted tasks that have not started (the
	// first interrupt): each completes with ErrWithdrawn. Running ones go
	// on.
	Withdraw()
	// Kill ends the running tasks now (the second interrupt): each
	// completes with an error.
	Kill()
	// Close releases the executor once every submitted task completed.
	Close(ctx context.Context) error
}

// Completion is how one submitted task ended.
type Completion struct {
	Outcome Outcome
	Err     error
	Info    pool.TaskInfo
	// Where names the machine that ran it, when that is not this one.
	Where string
}

// ErrWithdrawn is the error of a task withdrawn before it started: the run
// counts it cancelled, not failed.
var ErrWithdrawn = errors.New("withdrawn before it started")

// localExecutor runs tasks on pools of this machine's workers: one for the
// built-in worker, one per custom worker binary, each of Workers processes.
type localExecutor struct {
	plan     *Plan
	workers  int
	self     string // Options.SelfBinary
	log      *slog.Logger
	pools    map[string]*pool.Pool // by worker spec; "" is the built-in worker
	poolErrs map[string]error      // by worker spec: pools that could not start
}

func newLocalExecutor(plan *Plan, workers int, self string, log *slog.Logger) *localExecutor {
	return &localExecutor{plan: plan, workers: workers, self: self, log: log, pools: map[string]*pool.Pool{}, poolErrs: map[string]error{}}
}

func (e *localExecutor) Slots() int                    { return e.workers }
func (e *localExecutor) SlotsChanged() <-chan struct{} { return nil }

// Withdraw does nothing: the run never submits more tasks than the pools
// have workers, so none waits in a pool's queue.
func (e *localExecutor) Withdraw() {}

func (e *localExecutor) Prepare(ctx context.Context, pj *PlannedJob) error {
	_, err := e.poolFor(ctx, pj)
	return err
}

// Kill terminates the pools: every running task completes with an error.
func (e *localExecutor) Kill() {
	for _, p := range e.pools {
		go p.Terminate()
	}
}

// Submit submits a task (or a part, or a merge) to the job's pool.
func (e *localExecutor) Submit(pj *PlannedJob, sent *Task, done func(Completion)) {
	p, err := e.poolFor(context.Background(), pj)
	if err != nil {
		done(Completion{Err: err})
		return
	}
	opts := []pool.Option{pool.Retries(pj.Retries), pool.Timeout(pj.Timeout)}
	if pj.Memory > 0 {
		opts = append(opts, pool.MemoryLimit(pj.Memory))
	}
	// The callback is handed the task's TaskInfo with its outcome: it may
	// run before ApplyAsync returns (a task that failed to submit), on
	// the pool's callback goroutine.
	if call := pj.Kind.Call; call != nil {
		// A function of the job's own worker binary.
		fn, arg := call(sent)
		opts = append(opts, pool.DoneCallback(func(_ any, err error, info pool.TaskInfo) {
			done(Completion{Outcome: Outcome{Output: sent.Output}, Err: err, Info: info})
		}))
		pool.ApplyAsync(context.Background(), p, workerproc.Remote[any, any](fn), arg, opts...)
		return
	}
	opts = append(opts, pool.DoneCallback(func(o Outcome, err error, info pool.TaskInfo) {
		done(Completion{Outcome: o, Err: err, Info: info})
	}))
	pool.ApplyAsync(context.Background(), p, kinds.TaskFunc, *sent, opts...)
}

// poolFor returns the pool that runs a job's tasks, starting it on first
// use: the built-in workers, or the job's own worker binary.
func (e *localExecutor) poolFor(ctx context.Context, pj *PlannedJob) (*pool.Pool, error) {
	key := ""
	cfg := pool.Config{Workers: e.workers, Logger: e.log, SelfBinary: e.self}
	if w := pj.Worker; w != nil {
		cmd := w.Command // a name without a slash is looked up in PATH
		if strings.Contains(cmd, "/") {
			// Absolute, so that "./x" stays a path: cleaned to "x" it
			// would become a PATH lookup.
			abs, err := filepath.Abs(resolve(e.plan.File.Dir, cmd))
			if err != nil {
				return nil, fmt.Errorf("job %q: worker command: %w", pj.Name, err)
			}
			cmd = abs
		}
		key = strings.Join(append([]string{cmd, w.SHA256}, w.Args...), "\x00")
		cfg.Command = append([]string{cmd}, w.Args...)
		for k, v := range w.Env {
			cfg.Env = append(cfg.Env, k+"="+v)
		}
		slices.Sort(cfg.Env)
		key += "\x00" + strings.Join(cfg.Env, "\x00")
		cfg.SHA256 = w.SHA256
		if w.Plugin {
			cfg.Launcher = goplugin.Launcher{}
			key += "\x00plugin"
		}
	}
	if p, ok := e.pools[key]; ok {
		return p, nil
	}
	if err, ok := e.poolErrs[key]; ok {
		return nil, err
	}
	p, err := pool.New(ctx, cfg)
	if err != nil {
		if pj.Worker != nil {
			err = fmt.Errorf("job %q: %w", pj.Name, err)
		}
		// Tried once: every task of every job on these workers fails with
		// this error rather than start them again.
		e.poolErrs[key] = err
		e.log.Error("workers could not start", "err", err)
		return nil, err
	}
	e.pools[key] = p
	return p, nil
}

// Close closes the pools; it may be called more than once.
func (e *localExecutor) Close(context.Context) error {
	var wg sync.WaitGroup
	pools := e.pools
	e.pools = map[string]*pool.Pool{}
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				e.log.Error("closing the pool", "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}
