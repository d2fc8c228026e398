package pool

import (
	"fmt"
	"time"

	"github.com/ppool/ppool/ipc"
)

// Results: what a connection's reader read becomes tasks' outcomes. The
// reader hands a run of frames to answers, which records them under p.mu
// and the connection's mu, taken once for the run; tasks are resolved
// (finish, settle, release) after the locks are released, on the
// reader's goroutine, which writes nothing.

// hello handles a worker's first frame. A non-empty return is why the
// worker must go.
func (p *Pool) hello(w *worker, m ipc.Msg) string {
	if _, err := ipc.Negotiate(ipc.Versions, m.Versions); err != nil {
		w.setKillCause(&StartError{Command: p.path, PID: w.pid, Reason: "refused", Err: err})
		return err.Error()
	}
	fns := make(map[string]bool, len(m.Functions))
	for _, f := range m.Functions {
		fns[f] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.greetedLocked()
	if init := p.cfg.Initializer; init != nil && !fns[init.Function] {
		w.setKillCauseLocked(&StartError{Command: p.path, PID: w.pid, Reason: fmt.Sprintf("the initializer %q is not among the functions it serves", init.Function)})
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

// answer is a task's outcome, recorded under the lock and handed to the
// task once it is released.
type answer struct {
	t     *task
	value []byte
	err   error
}

// answers handles a run of frames a worker's reader read in one go:
// results and progress reports. The run takes the pool's lock, then the
// connection's, once, not once per frame; the tasks are resolved after
// they are released, and if answers made room while tasks wait, the
// dispatcher is woken to send them: a reader never writes. now is when the run was read. A non-empty
// return is why the worker must go.
func (p *Pool) answers(w *worker, msgs []ipc.Msg, now time.Time) string {
	done := w.in.done[:0] // the reader's own: answers runs on the holder of w.rmu
	reason := ""
	p.mu.Lock()
	w.mu.Lock()
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
	w.mu.Unlock()
	p.mu.Unlock()
	for _, a := range done {
		p.finish(a.t, a.value, a.err)
	}
	clear(done)
	w.in.done = done[:0]
	if waiting {
		p.kickDispatcher()
	}
	return reason
}

// resultLocked records a worker's answer to a task, and appends the task
// to done if it is resolved now (not abandoned, not to be retried). The
// caller holds p.mu and w.mu.
func (p *Pool) resultLocked(w *worker, m ipc.Msg, now time.Time, done *[]answer) string {
	s := w.answeredLocked(m.ID, now)
	if s == nil {
		return fmt.Sprintf("protocol error: result for task %d, which it was not running", m.ID)
	}
	t := s.t
	var err error
	if m.Err != nil {
		err = remoteError(t, w.pid, m.Err)
	}
	if s.init {
		if err != nil {
			w.setKillCauseLocked(&StartError{Command: p.path, PID: w.pid, Reason: "its initializer failed", Err: err})
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
