package pool

import "context"

// A ctxWatch cancels the unfinished tasks of one context when it ends.
// ApplyAsync registers one context.AfterFunc per context that has
// unfinished tasks, not one per task: a loop that submits 100,000 tasks
// under one context pays for a counter, not for 100,000 entries added to
// and removed from the context's tree (which cost as much as the rest of
// the submission together).
//
// Watches are keyed by the context's Done channel: contexts that share it
// (a context.WithValue child, say) end together.
type ctxWatch struct {
	ctx   context.Context
	done  <-chan struct{}
	live  int  // tasks registered and not yet finished; guarded by Pool.watchMu
	fired bool // the context has ended: new tasks need a new watch
	stop  func() bool
}

// watch registers t under ctx, which must have a Done channel. It is called
// before t is submitted, so that a watch that fires finds t in the queue or
// on a worker; the caller checks ctx.Err() after submitting to cover a
// context that ended in between.
func (p *Pool) watch(ctx context.Context, t *task) {
	done := ctx.Done()
	p.watchMu.Lock()
	w := p.watches[done]
	if w == nil || w.fired {
		w = &ctxWatch{ctx: ctx, done: done}
		w.stop = context.AfterFunc(ctx, func() { p.watchFired(w) })
		if p.watches == nil {
			p.watches = make(map[<-chan struct{}]*ctxWatch)
		}
		p.watches[done] = w
	}
	w.live++
	if p.idleWatch == w {
		p.idleWatch = nil
	}
	p.watchMu.Unlock()
	t.watch = w
}

// unwatch drops a finished task from its watch. The last watch to go idle
// stays registered, so that a caller who submits and waits for one task at
// a time does not register and remove a watch for each; an older idle one
// is stopped.
func (p *Pool) unwatch(w *ctxWatch, n int) {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	w.live -= n
	if w.live > 0 {
		return
	}
	if old := p.idleWatch; old != nil {
		p.dropWatchLocked(old)
	}
	p.idleWatch = w
}

func (p *Pool) dropWatchLocked(w *ctxWatch) {
	w.stop()
	if p.watches[w.done] == w {
		delete(p.watches, w.done)
	}
	if p.idleWatch == w {
		p.idleWatch = nil
	}
}

// watchFired cancels every unfinished task of w's context: those in the
// pool's queue and those sent to a worker.
func (p *Pool) watchFired(w *ctxWatch) {
	p.watchMu.Lock()
	w.fired = true
	if p.watches[w.done] == w {
		delete(p.watches, w.done)
	}
	if p.idleWatch == w {
		p.idleWatch = nil
	}
	p.watchMu.Unlock()

	var doomed []*task
	p.mu.Lock()
	for i := range p.queue.len() {
		if t := p.queue.at(i); t.watch == w && !t.claimed.Load() {
			doomed = append(doomed, t)
		}
	}
	for _, wk := range p.workers {
		for _, s := range wk.inflight {
			if s.abandoned {
				continue
			}
			if t := s.t; t.watch == w && !t.claimed.Load() {
				doomed = append(doomed, t)
			}
			for _, t := range s.t.pack {
				if t.watch == w && t.packedIn == s.t && !t.claimed.Load() {
					doomed = append(doomed, t)
				}
			}
		}
	}
	p.mu.Unlock()
	cause := context.Cause(w.ctx)
	for _, t := range doomed {
		p.cancel(t, cause, true)
	}
}

// stopWatches removes every watch from its context: the pool is stopped.
func (p *Pool) stopWatches() {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	for _, w := range p.watches {
		p.dropWatchLocked(w)
	}
	if w := p.idleWatch; w != nil {
		p.dropWatchLocked(w)
	}
}
