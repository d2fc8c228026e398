package pool

import (
	"context"
	"math"
	"sync/atomic"
)

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
	ctx  context.Context
	done <-chan struct{}
	stop func() bool
	// live counts the tasks registered and not yet finished. A watch
	// that has been dropped (removed from its context) holds dropped, so
	// that no task can join it any more.
	live  atomic.Int64
	fired atomic.Bool // the context has ended: new tasks need a new watch
}

const dropped = math.MinInt64 / 2

// watch registers t under ctx, which must have a Done channel. It is called
// before t is submitted, so that a watch that fires finds t in the queue or
// on a worker; the caller checks ctx.Err() after submitting to cover a
// context that ended in between. A run of calls under one context takes
// no lock here: the last watch used is tried first.
func (p *Pool) watch(ctx context.Context, t *task) {
	done := ctx.Done()
	if w := p.lastWatch.Load(); w != nil && w.done == done && !w.fired.Load() && join(w) {
		t.watch = w
		return
	}
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	w := p.watches[done]
	if w == nil || w.fired.Load() || !join(w) {
		w = &ctxWatch{ctx: ctx, done: done}
		w.live.Store(1)
		w.stop = context.AfterFunc(ctx, func() { p.watchFired(w) })
		if p.watches == nil {
			p.watches = make(map[<-chan struct{}]*ctxWatch)
		}
		p.watches[done] = w
	}
	p.lastWatch.Store(w)
	t.watch = w
}

// join adds a task to w unless w has been dropped.
func join(w *ctxWatch) bool {
	for {
		n := w.live.Load()
		if n < 0 {
			return false
		}
		if w.live.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unwatch drops n finished tasks from their watch. The last watch to go
// idle stays registered, so that a caller who submits and waits for one
// task at a time does not register and remove a watch for each; an older
// idle one is dropped.
func (p *Pool) unwatch(w *ctxWatch, n int) {
	if w.live.Add(-int64(n)) > 0 {
		return
	}
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	if w.live.Load() != 0 || p.idleWatch == w {
		return // busy again, or already the idle one
	}
	if old := p.idleWatch; old != nil {
		p.dropLocked(old, false)
	}
	p.idleWatch = w
}

// dropLocked removes w from its context, if it is idle or force is set.
func (p *Pool) dropLocked(w *ctxWatch, force bool) {
	if force {
		w.live.Store(dropped)
	} else if !w.live.CompareAndSwap(0, dropped) {
		return // busy again: it will go idle again later
	}
	w.stop()
	if p.watches[w.done] == w {
		delete(p.watches, w.done)
	}
	if p.idleWatch == w {
		p.idleWatch = nil
	}
	p.lastWatch.CompareAndSwap(w, nil)
}

// watchFired cancels every unfinished task of w's context: those in the
// pool's queue and those sent to a worker.
func (p *Pool) watchFired(w *ctxWatch) {
	w.fired.Store(true)
	p.watchMu.Lock()
	if p.watches[w.done] == w {
		delete(p.watches, w.done)
	}
	if p.idleWatch == w {
		p.idleWatch = nil
	}
	p.lastWatch.CompareAndSwap(w, nil)
	p.watchMu.Unlock()

	var doomed []*task
	p.mu.Lock()
	for i := range p.queue.len() {
		if t := p.queue.at(i); t.watch == w && !t.claimed.Load() {
			doomed = append(doomed, t)
		}
	}
	for _, wk := range p.workers {
		wk.held(func(held *task) {
			if held.watch == w && !held.claimed.Load() {
				doomed = append(doomed, held)
			}
			for _, t := range held.pack() {
				if t.watch == w && t.packedIn == held && !t.claimed.Load() {
					doomed = append(doomed, t)
				}
			}
		})
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
		p.dropLocked(w, true)
	}
	if w := p.idleWatch; w != nil {
		p.dropLocked(w, true)
	}
}

// contextEnded reports whether t's context has ended. Its watch's callback
// cancels t, but on a goroutine of its own (context.AfterFunc), and until
// it has, t is still queued: the dispatcher asks, so that a task whose
// context has ended is never sent.
func (t *task) contextEnded() bool { return t.watch != nil && t.watch.ctx.Err() != nil }

// cancelEnded cancels tasks that the dispatcher took from the queue
// because their context had ended.
func (p *Pool) cancelEnded(ended []*task) {
	for _, t := range ended {
		p.cancel(t, context.Cause(t.watch.ctx), true)
	}
}
