package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
)

// fakeExecutor runs tasks in goroutines of the test: each writes its
// output and completes once the test releases it (or at once if auto). It
// checks that the run never has more tasks out than Slots said, nor more
// of a job than its workers.
type fakeExecutor struct {
	t    *testing.T
	plan *Plan
	auto bool

	mu        sync.Mutex
	slots     int
	out       int
	perJob    map[string]int
	held      []heldTask // submitted, not yet released
	submitted []string   // task names, in order
	withdrawn int
	changed   chan struct{}
	asked     chan struct{} // closed by the first call of Slots
	askOnce   sync.Once
	closed    bool
}

type heldTask struct {
	task *Task
	done func(Completion)
}

func newFake(t *testing.T, plan *Plan, slots int, auto bool) *fakeExecutor {
	return &fakeExecutor{t: t, plan: plan, slots: slots, auto: auto, perJob: map[string]int{}, changed: make(chan struct{}, 1), asked: make(chan struct{})}
}

func (f *fakeExecutor) Prepare(context.Context, *PlannedJob) error { return nil }

func (f *fakeExecutor) Slots() int {
	f.askOnce.Do(func() { close(f.asked) })
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slots
}

func (f *fakeExecutor) SlotsChanged() <-chan struct{} { return f.changed }

func (f *fakeExecutor) setSlots(n int) {
	f.mu.Lock()
	f.slots = n
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeExecutor) Submit(pj *PlannedJob, task *Task, done func(Completion)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out++
	f.perJob[pj.Name]++
	f.submitted = append(f.submitted, task.Job+"/"+task.Name)
	if f.out > f.slots {
		f.t.Errorf("%d tasks out with %d slots", f.out, f.slots)
	}
	if pj.Workers > 0 && f.perJob[pj.Name] > pj.Workers {
		f.t.Errorf("job %s: %d tasks out, workers: %d", pj.Name, f.perJob[pj.Name], pj.Workers)
	}
	h := heldTask{task: task, done: done}
	if f.auto {
		go f.complete(h, nil)
		return
	}
	f.held = append(f.held, h)
}

// complete writes the task's output (unless err) and reports it.
func (f *fakeExecutor) complete(h heldTask, err error) {
	if err == nil {
		err = os.WriteFile(h.task.Output, []byte("done "+h.task.Name), 0o644)
	}
	f.mu.Lock()
	f.out--
	f.perJob[h.task.Job]--
	f.mu.Unlock()
	h.done(Completion{Err: err, Info: pool.TaskInfo{Attempts: 1, PID: 42}, Where: "fake-1"})
}

// release completes the first n held tasks.
func (f *fakeExecutor) release(n int) {
	f.mu.Lock()
	hs := f.held[:n]
	f.held = f.held[n:]
	f.mu.Unlock()
	for _, h := range hs {
		f.complete(h, nil)
	}
}

func (f *fakeExecutor) withdrawnCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.withdrawn
}

func (f *fakeExecutor) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

// Withdraw withdraws every held task but the first.
func (f *fakeExecutor) Withdraw() {
	f.mu.Lock()
	var hs []heldTask
	if len(f.held) > 1 {
		hs, f.held = f.held[1:], f.held[:1]
	}
	f.withdrawn += len(hs)
	f.mu.Unlock()
	for _, h := range hs {
		go f.complete(h, ErrWithdrawn)
	}
}

func (f *fakeExecutor) Kill() {}

func (f *fakeExecutor) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.t.Error("executor closed twice")
	}
	f.closed = true
	if f.out != 0 {
		f.t.Errorf("executor closed with %d tasks out", f.out)
	}
	return nil
}

func fakePlan(t *testing.T, yaml string) (*Plan, string) {
	t.Helper()
	dir := t.TempDir()
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return plan, dir
}

// An executor supplied from outside runs every task, in file order and
// after: order, never with more out than its slots (none at first: the run
// waits for them) or than a job's workers; the results name where each
// ran.
func TestExecutorSlots(t *testing.T) {
	plan, dir := fakePlan(t, `jobs:
  - name: a
    kind: test.make
    count: 12
  - name: b
    kind: test.make
    after: [a]
    workers: 1
    count: 4
`)
	fake := newFake(t, plan, 0, true)
	go func() {
		// The run must wait for slots rather than spin or give up.
		<-fake.asked
		fake.setSlots(3)
	}()
	var res strings.Builder
	sum, err := Run(context.Background(), plan, Options{Executor: fake, Results: &res, Journal: filepath.Join(dir, "j.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if sum.OK != 16 || sum.Failed+sum.Cancelled != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Workers != 3 {
		t.Errorf("summary workers %d, want the executor's 3 slots", sum.Workers)
	}
	for i, name := range fake.submitted {
		if strings.HasPrefix(name, "b/") != (i >= 12) {
			t.Fatalf("submitted in the order %v: b's tasks must follow all of a's", fake.submitted)
		}
	}
	for _, r := range readResultLines(t, res.String()) {
		if r.Agent != "fake-1" || r.WorkerPID != 42 || r.Status != StatusOK {
			t.Errorf("result %+v, want ok from fake-1, pid 42", r)
		}
	}
	if !fake.closed {
		t.Error("the run did not close its executor")
	}
}

// A first interrupt withdraws the tasks the executor holds unstarted: they
// are cancelled, not failed; the one running finishes.
func TestExecutorWithdrawOnDrain(t *testing.T) {
	plan, dir := fakePlan(t, `jobs:
  - name: a
    kind: test.make
    count: 10
`)
	fake := newFake(t, plan, 4, false)
	drain := make(chan struct{})
	type ran struct {
		sum *Summary
		err error
	}
	done := make(chan ran, 1)
	var res strings.Builder
	go func() {
		sum, err := Run(context.Background(), plan, Options{Executor: fake, Drain: drain, Results: &res, Journal: filepath.Join(dir, "j.jsonl")})
		done <- ran{sum, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fake.heldCount() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks submitted, want 4", fake.heldCount())
		}
		time.Sleep(time.Millisecond)
	}
	close(drain)
	for fake.heldCount() > 1 || fake.withdrawnCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not withdraw the unstarted tasks: %d held", fake.heldCount())
		}
		time.Sleep(time.Millisecond)
	}
	fake.release(1)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum.OK != 1 || r.sum.Cancelled != 9 || r.sum.Failed != 0 || !r.sum.Interrupted {
		t.Fatalf("summary %+v, want 1 ok and 9 cancelled", r.sum)
	}
	if len(fake.submitted) != 4 {
		t.Errorf("%d tasks submitted, want 4", len(fake.submitted))
	}
	for _, l := range readResultLines(t, res.String()) {
		if l.Status == StatusCancelled && !strings.Contains(l.Error, "interrupted") {
			t.Errorf("cancelled with %q", l.Error)
		}
	}
}
