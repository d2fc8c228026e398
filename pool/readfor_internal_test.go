package pool

import (
	"errors"
	"testing"
	"time"
)

// TestReadForStopsAfterItsAnswer: a timeout that fires as the worker
// answers resolves the task only after the answer is read. The Apply
// caller reading its own answer must then stop reading, not wait for a
// frame the worker will never send. The hook holds the timeout's
// resolution until the caller has read the worker's answer to the cancel,
// the order in which examples/pyworker's TestCancel hung now and then.
func TestReadForStopsAfterItsAnswer(t *testing.T) {
	ctx, p := oneWorkerPool(t)
	timedOutHook = func(w *worker, tk *task) {
		deadline := time.Now().Add(5 * time.Second)
		for w.holds(tk) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling the slot: no event to wait on
		}
	}
	defer func() { timedOutHook = nil }()

	o := p.defaults
	o.timeout = 50 * time.Millisecond
	tk, err := newTask(p, "sleep", 10*time.Second, &o)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.submit(tk, true)
	if err != nil {
		t.Fatal(err)
	}
	if w == nil {
		t.Fatal("the idle worker was not claimed by the caller")
	}
	done := make(chan error, 1)
	go func() {
		w.readFor(ctx, tk)
		done <- tk.wait(ctx, false)
	}()
	select {
	case err := <-done:
		var te *TimeoutError
		if err != nil || !errors.As(tk.err, &te) {
			t.Errorf("wait: %v, task error %v, want a *TimeoutError", err, tk.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller still reads 5 s after its task timed out and its worker answered")
	}
}
