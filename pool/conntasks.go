package pool

import (
	"slices"
	"time"

	"github.com/ppool/ppool/ipc"
)

// What a connection knows of the tasks it holds, under its own lock (the
// worker's mu; conn.go has the lock order). The scheduler, the supervisor,
// the results handler and Stats reach it only through the methods here:
// each takes mu, or, ending in Locked, is called with it held.

// connState is what a connection knows of its worker and of the tasks it
// holds, guarded by the connection's mu. Methods of worker whose names end
// in Locked are called with mu held.
type connState struct {
	state      workerState
	inflight   []*slot
	sent       int         // tasks sent, for MaxTasksPerWorker
	finished   int         // tasks answered
	killCause  error       // why the pool killed it, blamed on its running task
	headTimer  *time.Timer // the running task's timeout
	graceTimer *time.Timer // KillGrace for an abandoned running task to stop
	flags                  // killedByPool, helloed, claimed, readFail
}

// answeredLocked takes the slot of task id out of w's tasks in flight and
// returns it; nil if w was not running id. If it was the head, the task
// running, the next one's clock starts at now; a stalled worker that
// answered its cancelled task in time takes tasks again. The caller also
// holds p.mu (see startHeadLocked).
func (w *worker) answeredLocked(id uint64, now time.Time) *slot {
	i := slices.IndexFunc(w.inflight, func(s *slot) bool { return s.t.id == id })
	if i < 0 {
		return nil
	}
	s := w.inflight[i]
	if i == 0 {
		// Answers come in order: dropping the head must not shift a long
		// window of tasks behind it.
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
		w.startHeadLocked(now)
	} else {
		w.inflight = slices.Delete(w.inflight, i, i+1)
	}
	w.finished++
	if w.state == workerStalled && (len(w.inflight) == 0 || !w.inflight[0].abandoned) {
		w.state = workerReady // it answered the cancel in time
	}
	return s
}

// loadLocked returns how many tasks w holds, and whether it may take one
// more within window.
func (w *worker) loadLocked(window int) (n int, room bool) {
	n = len(w.inflight)
	return n, w.state == workerReady && n < window
}

// sendLocked puts t in w's tasks in flight and its frame in the outbox,
// for the caller to flush. If t is the only task and claim is set, the
// caller (Apply) may read t's answer itself: sendLocked reports whether it
// has claimed the reading side for it; otherwise the reader is woken. The
// caller also holds p.mu (see startHeadLocked).
func (w *worker) sendLocked(t *task, claim bool, now time.Time) (claimed bool) {
	if len(w.inflight) == 0 {
		if claim && w.helloed && !w.claimed && w.readFail == "" {
			w.claimed, claimed = true, true // worker.readFor
		} else {
			w.signal() // answers are due: its reader must read them
		}
	}
	w.inflight = append(w.inflight, &slot{t: t})
	w.box.put(t.frame, t.tail())
	w.sent++
	if len(w.inflight) == 1 {
		w.startHeadLocked(now)
	}
	if most := w.p.cfg.MaxTasksPerWorker; most > 0 && w.sent >= most {
		w.state = workerRetiring
	}
	return claimed
}

// sendFirst queues t, the initializer, as the worker's first task.
func (w *worker) sendFirst(t *task) {
	w.mu.Lock()
	w.inflight = append(w.inflight, &slot{t: t, init: true})
	w.box.put(t.frame, nil)
	w.mu.Unlock()
}

// startHeadLocked starts the clock of the task now at the head of w's queue:
// a task's timeout counts from when it starts running, not from when it was
// sent behind others. The task's start time is the scheduler's, guarded by
// p.mu, which every caller holds too.
func (w *worker) startHeadLocked(now time.Time) {
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
	t.started = now.Sub(w.p.epoch)
	if d := t.timeout(); d > 0 {
		w.headTimer = time.AfterFunc(d, func() { w.p.timedOut(w, s) })
	}
}

// abandonLocked stops waiting for s: the worker gets a cancel, and if s is
// running, KillGrace to answer before it is killed. The caller flushes.
func (w *worker) abandonLocked(s *slot) {
	s.abandoned = true
	w.box.control(func(b []byte) []byte { return ipc.AppendCancel(b, s.t.id) })
	if w.inflight[0] != s {
		return
	}
	if w.state == workerReady {
		w.state = workerStalled
	}
	// One timer per worker: a head abandoned before had answered, or it
	// would still be the head. gone stops it, so nothing of a dead
	// worker's runs later.
	if w.graceTimer != nil {
		w.graceTimer.Stop()
	}
	w.graceTimer = time.AfterFunc(w.p.cfg.KillGrace, func() { w.graceOver(s) })
}

// graceOver kills w if s, abandoned, is still running after KillGrace.
func (w *worker) graceOver(s *slot) {
	w.mu.Lock()
	stuck := len(w.inflight) > 0 && w.inflight[0] == s && w.state != workerDead
	if stuck {
		w.killedByPool = true
	}
	w.mu.Unlock()
	if stuck {
		w.p.log.Warn("killing worker that did not stop a cancelled task", "worker", w.pid, "task", s.t.id, "grace", w.p.cfg.KillGrace)
		w.kill()
	}
}

// abandonRunning abandons s if it is still the task w is running, not
// abandoned yet, and reports whether it did: s's timeout fired.
func (w *worker) abandonRunning(s *slot) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inflight) == 0 || w.inflight[0] != s || s.abandoned || w.state == workerDead {
		return false
	}
	w.abandonLocked(s)
	return true
}

// abandonHead abandons the task w is running if it is t, and reports
// whether it was: a pack one of whose tasks is cancelled.
func (w *worker) abandonHead(t *task) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inflight) == 0 || w.inflight[0].t != t {
		return false
	}
	w.abandonLocked(w.inflight[0])
	return true
}

// abandonTask stops waiting for t, which the caller is cancelling. With
// kill unset, t, if running, is left to finish and its answer dropped;
// otherwise it is abandoned. It reports whether a cancel was queued, for
// the caller to flush.
func (w *worker) abandonTask(t *task, kill bool) (queued bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.inflight, func(s *slot) bool { return s.t == t })
	if i < 0 {
		return false
	}
	s := w.inflight[i]
	if i == 0 && !kill {
		s.abandoned = true // let it run; drop the answer
		return false
	}
	w.abandonLocked(s)
	return true
}

// holds reports whether t still has a slot on w: its answer is still to be
// read.
func (w *worker) holds(t *task) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.inflight, func(s *slot) bool { return s.t == t })
}

// held calls f for each task w holds and has not abandoned, with mu held.
func (w *worker) held(f func(t *task)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.inflight {
		if !s.abandoned {
			f(s.t)
		}
	}
}

// memoryLimit is the limit w's memory is held to: its running task's, or
// def; 0 if none, or w is dead.
func (w *worker) memoryLimit(def uint64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == workerDead {
		return 0
	}
	if len(w.inflight) > 0 && !w.inflight[0].abandoned && !w.inflight[0].init {
		return w.inflight[0].t.opts.memory
	}
	return def
}

// overMemory records that w is to be killed for using anon bytes, over
// limit, blaming the task running now, and returns the cause; nil if w is
// dead or being killed already.
func (w *worker) overMemory(limit, anon uint64) *MemoryLimitError {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == workerDead || w.killedByPool || w.killCause != nil {
		return nil
	}
	// Blame the task running now, checked just before the kill, not the
	// one running when memory was read.
	ref := TaskRef{PID: w.pid}
	if len(w.inflight) > 0 && !w.inflight[0].abandoned {
		ref.Task, ref.Function = w.inflight[0].t.id, w.inflight[0].t.fn
	}
	e := &MemoryLimitError{TaskRef: ref, Limit: limit, Seen: anon}
	w.killCause = e
	return e
}

// setKillCause records why the pool is about to kill w.
func (w *worker) setKillCause(err error) {
	w.mu.Lock()
	w.setKillCauseLocked(err)
	w.mu.Unlock()
}

func (w *worker) setKillCauseLocked(err error) { w.killCause = err }

// greetedLocked records that w's hello has been read.
func (w *worker) greetedLocked() { w.helloed = true }

// readyLocked marks a starting worker ready, and reports whether it was
// starting.
func (w *worker) readyLocked() bool {
	if w.state != workerStarting {
		return false
	}
	w.state = workerReady
	return true
}

// retireLocked queues shutdown for a worker that has done its share and
// is idle, and reports whether it did, for the caller to flush.
func (w *worker) retireLocked() bool {
	if w.state != workerRetiring || len(w.inflight) > 0 {
		return false
	}
	w.state = workerStopping
	w.box.control(ipc.AppendShutdown)
	return true
}

// shutdown queues shutdown for w unless it is dead, for the caller to
// flush: the pool is closing.
func (w *worker) shutdown() {
	w.mu.Lock()
	if w.state != workerDead {
		w.state = workerStopping
		w.box.control(ipc.AppendShutdown)
	}
	w.mu.Unlock()
}

// stopByPool marks w as stopped by the pool, for the caller to kill: its
// death is nobody's fault.
func (w *worker) stopByPool() {
	w.mu.Lock()
	w.killedByPool = true
	w.state = workerStopping
	w.mu.Unlock()
}

// stats describes w for Stats; ok is false for a worker not yet ready or
// dead.
func (w *worker) stats() (s WorkerStats, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == workerDead || w.state == workerStarting {
		return s, false
	}
	return WorkerStats{PID: w.pid, State: w.state.String(), InFlight: len(w.inflight), Finished: w.finished}, true
}

// remains is what a dead worker leaves to the supervisor: the state it
// was in, how it was ended, and the tasks it held.
type remains struct {
	was          workerState
	killedByPool bool
	helloed      bool
	killCause    error
	slots        []*slot
}

// gone marks w dead, stops its timers, and hands over the tasks it held.
func (w *worker) gone() remains {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := remains{was: w.state, killedByPool: w.killedByPool, helloed: w.helloed, killCause: w.killCause, slots: w.inflight}
	w.state = workerDead
	w.inflight = nil
	for _, t := range []*time.Timer{w.headTimer, w.graceTimer} {
		if t != nil {
			t.Stop()
		}
	}
	return r
}
