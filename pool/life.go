package pool

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Close stops the pool the way multiprocessing's close and join do: no new
// tasks are accepted, the queued and running ones finish, then each worker
// is sent shutdown, and any that has not exited within KillGrace gets
// SIGTERM, then SIGKILL. Close returns once every worker process and pool
// goroutine is gone. If ctx ends first, the pool is terminated and Close
// returns ctx's error once the workers and pool goroutines are gone, but
// for the callbacks goroutine, which is not waited for: it runs the
// callbacks still queued, then ends (a callback that never returns would
// otherwise hold Close past its deadline). Close is idempotent; after
// Terminate it just waits.
//
// Called from a completion callback, Close returns once everything but
// the callback's own goroutine is done: the callbacks still queued run
// after the callback returns (finding the pool closed), and then that
// goroutine ends.
func (p *Pool) Close(ctx context.Context) error {
	p.cb.enterClose()
	p.mu.Lock()
	switch p.state {
	case poolRunning:
		p.state = poolClosing
	case poolBroken:
		// Nothing is queued, and no probe worker may bring it back now.
		p.state = poolStopped
	}
	p.mu.Unlock()
	p.checkDrained()
	select {
	case <-p.drained:
	case <-ctx.Done():
		return p.abandon(ctx)
	}
	go p.stop(false)
	select {
	case <-p.stopped:
		return nil
	case <-ctx.Done():
		return p.abandon(ctx)
	}
}

// abandon is Close when ctx has ended: it terminates the pool and waits
// for all but the callbacks goroutine.
func (p *Pool) abandon(ctx context.Context) error {
	p.killAll()
	go p.stop(true) // if a Close already runs stop, this one just waits for it
	<-p.reaped
	return context.Cause(ctx)
}

// Terminate stops the pool now, like multiprocessing's terminate: queued
// and running tasks fail with ErrPoolClosed and workers are killed. It
// returns once every worker process and pool goroutine is gone; called
// from a completion callback, as Close does.
func (p *Pool) Terminate() {
	p.cb.enterClose()
	p.killAll()
	p.stop(true)
}

// killAll fails the queued tasks and kills the workers.
func (p *Pool) killAll() {
	p.mu.Lock()
	queued := p.queue.drain()
	p.state = poolStopped
	for _, w := range p.workers {
		w.stopByPool()
		w.kill()
	}
	p.mu.Unlock()
	for _, t := range queued {
		p.finish(t, nil, ErrPoolClosed)
	}
}

// stop ends the workers, then the pool's goroutines, spawner and reaper.
// Only the first call does the work; every call waits for it to finish.
func (p *Pool) stop(kill bool) {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.state = poolStopped
		workers := slices.Clone(p.workers)
		if !kill {
			for _, w := range workers {
				w.shutdown()
			}
		}
		p.mu.Unlock()
		if !kill {
			for _, w := range workers {
				w.flush()
			}
			escalate(workers, p.cfg.KillGrace)
		}
		close(p.quit)
		p.bgDone.Wait()
		p.wg.Wait() // every worker exited and was handled
		// Tasks a dying worker still held went back to the queue, where
		// no worker will take them now: they fail like the rest.
		p.mu.Lock()
		left := p.queue.drain()
		p.mu.Unlock()
		for _, t := range left {
			p.finish(t, nil, ErrPoolClosed)
		}
		p.stopWatches()
		p.spawner.Stop()
		p.reaper.Stop()
		if p.binary != nil {
			p.binary.Close()
		}
		close(p.reaped)
		p.cb.close()
		close(p.stopped)
	})
	<-p.stopped
}

// Stats is a snapshot of a pool.
type Stats struct {
	Workers   int    // worker processes alive
	Busy      int    // of those, running a task
	Queued    int    // tasks waiting for a worker
	Done      uint64 // tasks (or Map chunks) that succeeded
	Failed    uint64 // calls that failed, each Map or Imap item counted alone; a result that did not decode into the caller's type counts too
	Retried   uint64 // runs started again after a crash, timeout or memory kill
	Restarts  uint64 // workers started to replace others
	Packed    uint64 // tasks sent in a pack with others: one frame for several tiny tasks
	PerWorker []WorkerStats
}

// WorkerStats describes one worker process.
type WorkerStats struct {
	PID      int
	State    string
	InFlight int    // tasks sent and not yet answered
	Finished int    // tasks it has answered
	RSS      uint64 // resident memory, bytes
	Anon     uint64 // resident memory less shared pages, bytes: what MaxWorkerMemory limits
}

// Stats returns a snapshot of the pool, including each worker's memory.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := Stats{
		Queued:   p.queue.len(),
		Done:     p.stats.done.Load(),
		Failed:   p.stats.failed.Load(),
		Retried:  p.stats.retried.Load(),
		Restarts: p.stats.restarts.Load(),
		Packed:   p.stats.packed.Load(),
	}
	for _, w := range p.workers {
		ws, ok := w.stats()
		if !ok {
			continue
		}
		s.Workers++
		if ws.InFlight > 0 {
			s.Busy++
		}
		s.PerWorker = append(s.PerWorker, ws)
	}
	p.mu.Unlock()
	for i := range s.PerWorker {
		ws := &s.PerWorker[i]
		ws.RSS, ws.Anon, _ = memoryOf(ws.PID)
	}
	return s
}

// callbacks runs completion callbacks one at a time, in completion order,
// on one goroutine: like the result handler thread of multiprocessing.Pool.
// The queue is an unbounded list so a slow callback delays other callbacks,
// never the workers.
type callbacks struct {
	mu     sync.Mutex
	q      []func()
	wake   chan struct{} // size 1: pushes coalesce
	closed bool
	done   chan struct{}
	log    interface{ Error(string, ...any) }

	// A callback that closes the pool must not wait for its own goroutine
	// to end: goroutine is that goroutine's id, and inClose is closed once
	// a callback has called Close or Terminate. It then runs nothing more
	// until that call returns, so no one need wait for it.
	goroutine   atomic.Uint64
	inClose     chan struct{}
	inCloseOnce sync.Once
}

func newCallbacks(log interface{ Error(string, ...any) }) *callbacks {
	c := &callbacks{wake: make(chan struct{}, 1), done: make(chan struct{}), inClose: make(chan struct{}), log: log}
	started := make(chan struct{})
	go func() {
		c.goroutine.Store(goroutineID())
		close(started)
		c.run()
	}()
	<-started
	return c
}

// enterClose is called by Close and Terminate: if it is a callback
// calling, close stops waiting for the callback goroutine.
func (c *callbacks) enterClose() {
	if id := goroutineID(); id != 0 && id == c.goroutine.Load() {
		c.inCloseOnce.Do(func() { close(c.inClose) })
	}
}

// goroutineID returns the calling goroutine's id, from the first line of
// its stack ("goroutine 123 [running]:"). Go offers no other way to ask
// "am I the callback goroutine?", and only Close and Terminate ask.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		if id, err := strconv.ParseUint(string(b[:i]), 10, 64); err == nil {
			return id
		}
	}
	return 0
}

func (c *callbacks) push(f func()) {
	c.mu.Lock()
	c.q = append(c.q, f)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *callbacks) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		q, closed := c.q, c.closed
		c.q = nil
		c.mu.Unlock()
		for _, f := range q {
			c.call(f)
		}
		if len(q) == 0 {
			if closed {
				return
			}
			<-c.wake
		}
	}
}

func (c *callbacks) call(f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("callback panicked", "panic", fmt.Sprint(v))
		}
	}()
	f()
}

// close waits for queued callbacks to run, then ends the goroutine; if a
// callback is closing the pool, the goroutine ends after it returns.
func (c *callbacks) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.done:
	case <-c.inClose:
	}
}
