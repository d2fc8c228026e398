package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDispatchSkipsEndedContext: a queued task whose context has ended is
// never sent, even before its watch's callback has cancelled it. That
// callback runs on a goroutine of its own (context.AfterFunc), so a
// context that ends just after ApplyAsync checked it leaves the task queued
// for a moment with nothing yet to stop the dispatcher but its own look.
func TestDispatchSkipsEndedContext(t *testing.T) {
	ctx, p := oneWorkerPool(t)
	ended, end := context.WithCancel(ctx)
	end()
	// The task as ApplyAsync queues it, its watch's callback not run yet.
	tk, err := newTask(p, "square", 3, &p.defaults)
	if err != nil {
		t.Fatal(err)
	}
	tk.watch = &ctxWatch{ctx: ended, done: ended.Done(), stop: func() bool { return true }}
	tk.watch.live.Store(1)
	p.mu.Lock()
	p.pending.Add(1)
	p.queue.pushBack(tk)
	p.mu.Unlock()
	p.pump()
	if err := tk.wait(ctx, false); err != nil {
		t.Fatalf("the task was never resolved: %v", err)
	}
	var ce *CancelledError
	if !errors.As(tk.err, &ce) || !errors.Is(tk.err, context.Canceled) {
		t.Errorf("task under an ended context: value %x, error %v; want a *CancelledError", tk.value, tk.err)
	}
	p.mu.Lock()
	sent := p.workers[0].sent
	p.mu.Unlock()
	if sent != 0 {
		t.Errorf("%d tasks sent to the worker, want none", sent)
	}
}

// oneWorkerPool starts a pool of one worker (this test binary) for an
// internal test, closed when the test ends, with a context of 30 s.
func oneWorkerPool(t *testing.T) (context.Context, *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	p, err := New(ctx, Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ctx, p
}
