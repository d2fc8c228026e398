package launch

import (
	"runtime"
	"sync"
)

// Spawner starts processes on one OS thread, locked for its whole life.
// Linux delivers a child's parent-death signal when the thread that forked
// it exits, and Go retires the thread of a locked goroutine that returns:
// starting from arbitrary goroutines would let a worker be killed at
// random when some thread went away. Its owner calls Stop once every
// process it started is gone.
type Spawner struct {
	mu     sync.Mutex
	closed bool
	req    chan func()
	done   chan struct{}
}

// NewSpawner starts the spawner's goroutine and locks it to its thread.
func NewSpawner() *Spawner {
	s := &Spawner{req: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the spawner
		defer close(s.done)
		for f := range s.req {
			f()
		}
	}()
	return s
}

// Start runs c.Start on the spawner's thread and waits for it. It returns
// ErrStopped if the spawner is stopped.
func (s *Spawner) Start(c *Cmd) (*Process, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrStopped
	}
	var p *Process
	var err error
	finished := make(chan struct{})
	s.req <- func() { p, err = c.Start(); close(finished) }
	s.mu.Unlock()
	<-finished
	return p, err
}

// Stop ends the spawner's goroutine, and with it its thread: the
// parent-death signal of every process it started fires. Only the first
// call does anything.
func (s *Spawner) Stop() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.req)
	}
	s.mu.Unlock()
	<-s.done
}
