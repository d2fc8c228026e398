package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ppool/ppool/internal/contain"
	"github.com/ppool/ppool/internal/launch"
	"github.com/ppool/ppool/ipc"
	"github.com/shirou/gopsutil/v3/process"
)

// The supervisor: worker processes' lives. It starts workers (through
// internal/launch), handles their exits (a task that was running fails or
// is retried, the others go back to the scheduler's queue), starts
// replacements after a backoff, breaks the pool after a crash loop and
// probes it back, kills workers over their memory limit, and times out or
// abandons the task a worker is running. Its state is guarded by p.mu; a
// worker's is its connection's (conn.go), reached through its methods.

// supervisor is the supervisor's state, guarded by p.mu but for what
// New sets once.
type supervisor struct {
	spawner     *launch.Spawner
	reaper      *launch.Reaper // nil if it could not start
	cgroups     *contain.Root  // where each worker gets a cgroup; nil if the machine offers none
	restart     chan struct{}  // wakes the supervisor; size 1 so kicks coalesce
	crashStreak int            // workers in a row that failed to start: not executable, or gone before they were ready
	restartAt   time.Time      // no worker is started before this: the backoff after failed starts
	brokenErr   error
	brokeFrom   poolState // running or closing: where a crash loop found the pool, and where it goes back once a worker starts
}

// start launches one worker process; the exec itself runs on the spawner's
// thread.
func (p *Pool) start() (*worker, error) {
	// Execute what was hashed, not whatever is at the path now.
	var binary *os.File
	if p.binary != nil {
		if err := p.binary.check(); err != nil {
			return nil, err
		}
		binary = p.binary.f
	}
	var logPID atomic.Int64
	proc, err := p.spawner.Start(&launch.Cmd{
		Path: p.path, Args: p.args, Env: p.env, Binary: binary,
		Cgroups: p.cgroups, Reaper: p.reaper,
		PipeSize: launch.PipeSize, OOMScoreAdj: launch.OOMScoreAdj,
		Output:    launch.Lines(func(line string) { p.log.Info(line, "worker", logPID.Load()) }),
		KillGrace: p.cfg.KillGrace,
		Starter:   p.cfg.Launcher, StartTimeout: p.cfg.StartTimeout,
		Log: p.log,
	})
	if err != nil {
		if errors.Is(err, launch.ErrStopped) {
			return nil, err
		}
		return nil, &StartError{Command: p.path, Reason: "cannot start it", Err: err}
	}
	logPID.Store(int64(proc.PID))
	return &worker{
		p: p,
		workerProcess: workerProcess{
			pid: proc.PID, proc: proc, toW: proc.Tasks, frR: proc.Results, exited: proc.Exited(),
			ready: make(chan error, 1),
		},
		wake: make(chan struct{}, 1),
		in:   reading{rd: ipc.NewReader(proc.Results, 256<<10, p.maxFrame)},
	}, nil
}

// escalate waits, at most grace, for workers to exit, then terminates
// those that have not: SIGTERM, and SIGKILL after another grace
// (launch.Process.Terminate, through exec.Cmd's Cancel and WaitDelay).
func escalate(workers []*worker, grace time.Duration) {
	deadline, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, w := range workers {
		select {
		case <-w.exited:
		case <-deadline.Done():
		}
	}
	for _, w := range workers {
		w.proc.Terminate()
	}
}

// memoryOf reads a process's resident and anonymous memory.
func memoryOf(pid int) (rss, anon uint64, err error) {
	proc, err := process.NewProcess(int32(pid))
	if err != nil {
		return 0, 0, err
	}
	m, err := proc.MemoryInfoEx()
	if err != nil {
		return 0, 0, err
	}
	anon = m.RSS
	if m.Shared < anon {
		anon -= m.Shared
	}
	return m.RSS, anon, nil
}

// watchMemory kills workers whose anonymous memory passes MaxWorkerMemory.
func (p *Pool) watchMemory() {
	defer p.bgDone.Done()
	tick := time.NewTicker(p.cfg.MemoryCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		workers := slices.Clone(p.workers)
		p.mu.Unlock()
		for _, w := range workers {
			limit := w.memoryLimit(p.cfg.MaxWorkerMemory)
			if limit == 0 {
				continue
			}
			_, anon, err := memoryOf(w.pid)
			if err != nil || anon <= limit {
				continue
			}
			if e := w.overMemory(limit, anon); e != nil {
				p.log.Warn("killing worker over its memory limit", "worker", w.pid, "task", e.Task, "anon_bytes", anon, "limit_bytes", limit)
				w.kill()
			}
		}
	}
}

// sendInit queues the initializer as the worker's first task.
func (p *Pool) sendInit(w *worker) {
	init := p.cfg.Initializer
	if init == nil {
		return
	}
	t := &task{id: p.nextID.Add(1), fn: init.Function, opts: &callOptions{}}
	t.frame = ipc.AppendTask(nil, t.id, init.Function, init.Args, 0, false)
	w.sendFirst(t)
	w.flush()
}

// readyLocked handles a worker that is ready: its hello was read, and
// its initializer answered if there is one. The caller holds p.mu and
// w.mu.
func (p *Pool) readyLocked(w *worker) {
	if !w.readyLocked() {
		return
	}
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

// retireLocked shuts down a worker that has done its share once it is
// idle. The caller holds p.mu and w.mu.
func (p *Pool) retireLocked(w *worker) {
	if w.retireLocked() {
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

// timedOut fires when the task at the head of w's queue has run past its
// timeout: the task fails (or is retried elsewhere) now, the worker is asked
// to cancel it and is killed if it has not answered within KillGrace.
func (p *Pool) timedOut(w *worker, s *slot) {
	p.mu.Lock()
	if !w.abandonRunning(s) {
		p.mu.Unlock()
		return
	}
	t := s.t
	t.w = nil
	cause := &TimeoutError{TaskRef: t.ref(w.pid), Timeout: t.timeout()}
	t.pid, t.duration = int32(w.pid), time.Since(p.epoch)-t.started
	fail, items := p.failOrRetryLocked(t, cause)
	p.mu.Unlock()
	p.log.Warn("task timed out", "task", t.id, "function", t.fn, "worker", w.pid, "timeout", cause.Timeout)
	w.flush()
	if timedOutHook != nil {
		timedOutHook(w, t)
	}
	p.afterFailOrRetry(t, fail, items, cause)
}

// timedOutHook, set by a test, runs between a timeout's cancel and the
// task's failure.
var timedOutHook func(w *worker, t *task)

// workerExited handles the death of a worker, expected or not: its running
// task fails or is retried, its queued tasks go back to the pool's queue,
// and the supervisor starts a replacement unless the pool is stopping. A
// worker that never became ready failed to start, which counts toward the
// crash loop; one that died after its hello and initializer died of the
// task it was running, whose retries pay for it.
func (p *Pool) workerExited(w *worker, reason string) {
	exitErr := w.exitError(reason)
	p.mu.Lock()
	r := w.gone()
	p.workers = slices.DeleteFunc(p.workers, func(x *worker) bool { return x == w })
	// Deaths the pool caused (shutdown, Close, Terminate, a cancelled task
	// past its grace, the end of a crash loop) are nobody's fault.
	byPool := r.killedByPool || r.was == workerStopping
	if r.was != workerStarting && !byPool && r.killCause == nil {
		p.log.Warn("worker died", "worker", w.pid, "reason", reason, "exit", exitErr.Error())
	}
	failed := p.reclaimLocked(w, &r, exitErr)
	replaced := false
	if r.was == workerStarting {
		var more []answer
		replaced, more = p.startFailedAtExitLocked(w, &r, byPool, reason, exitErr)
		failed = append(failed, more...)
	} else {
		replaced = p.state != poolStopped && p.state != poolBroken
	}
	if p.state == poolBroken {
		// What went back to the queue (a split batch) has no worker to
		// run it: it fails now, like everything queued when the pool broke.
		for _, t := range p.queue.drain() {
			failed = append(failed, answer{t: t, err: p.brokenErr})
		}
	}
	p.mu.Unlock()

	for _, a := range failed {
		p.finish(a.t, nil, a.err)
	}
	if replaced {
		p.stats.restarts.Add(1)
	}
	p.kickSupervisor()
	p.kickDispatcher() // what went back to the queue goes to other workers
}

// reclaimLocked takes back the tasks a dead worker held: the one it was
// running fails with the cause of its death or is retried; the ones only
// queued there go back to the front of the queue, unless nothing will run
// them now. It returns the tasks to fail.
func (p *Pool) reclaimLocked(w *worker, r *remains, exitErr *WorkerExitError) []answer {
	var failed []answer
	for i := len(r.slots) - 1; i >= 0; i-- {
		s := r.slots[i]
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
				failed = append(failed, answer{t: t, err: cause})
			} else if t.pack() != nil {
				p.unpackLocked(t, false)
			} else {
				p.queue.pushFront(t)
			}
			continue
		}
		cause := p.deathCauseLocked(w, r, t, exitErr)
		t.pid = int32(w.pid)
		if t.started != 0 {
			t.duration = time.Since(p.epoch) - t.started
		}
		if fail, _ := p.failOrRetryLocked(t, cause); fail {
			failed = append(failed, answer{t: t, err: cause})
		}
	}
	return failed
}

// deathCauseLocked is the error of t, which w was running when it died.
func (p *Pool) deathCauseLocked(w *worker, r *remains, t *task, exitErr *WorkerExitError) error {
	switch {
	case r.killCause != nil:
		return r.killCause
	case r.killedByPool && p.brokenErr != nil:
		return fmt.Errorf("%w; task %d (%s) was running on worker %d", p.brokenErr, t.id, t.fn, w.pid)
	case p.state == poolStopped && r.killedByPool:
		return fmt.Errorf("%w: task %d (%s) was running on worker %d", ErrPoolClosed, t.id, t.fn, w.pid)
	}
	return attach(exitErr, t.ref(w.pid))
}

// startFailedAtExitLocked handles the exit of w, which never became
// ready: New hears of it, or it counts toward the crash loop. It returns
// whether a replacement is due, and the tasks to fail if the pool broke.
func (p *Pool) startFailedAtExitLocked(w *worker, r *remains, byPool bool, reason string, exitErr *WorkerExitError) (replaced bool, failed []answer) {
	startErr := p.startErrorLocked(w, r, reason, exitErr)
	select {
	case w.ready <- startErr:
	default:
	}
	switch {
	case p.state == poolStopped:
	case !p.isStarted():
		// New reports it.
	case !byPool:
		for _, t := range p.startFailedLocked(startErr) {
			failed = append(failed, answer{t: t, err: p.brokenErr})
		}
		replaced = p.state != poolBroken
	case p.state != poolBroken:
		replaced = true
	}
	return replaced, failed
}

// startErrorLocked says why w, which never became ready, is gone.
func (p *Pool) startErrorLocked(w *worker, r *remains, reason string, exitErr *WorkerExitError) *StartError {
	if se, ok := r.killCause.(*StartError); ok {
		return se
	}
	e := &StartError{Command: p.path, PID: w.pid, Err: exitErr}
	switch {
	case r.killCause != nil:
		e.Reason, e.Err = "killed before it was ready", r.killCause
	case !strings.HasPrefix(reason, "its pipe closed"):
		// The master killed it for what it sent: that is the reason, and
		// the exit it caused only the consequence.
		e.Reason = reason
		bare := *exitErr
		bare.Reason = ""
		e.Err = &bare
	case r.helloed:
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
		w.stopByPool()
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
		o.stopByPool()
		o.kill() // a signal: nothing to wait for
	}
	return p.queue.drain()
}
