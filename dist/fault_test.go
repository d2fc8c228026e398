package dist_test

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// runAsync starts plan on the agents of url; the returned function waits
// for the run's end.
func runAsync(t *testing.T, url string, plan *jobs.Plan, dir string, rc dist.RunConfig) (*lockedBuffer, func() *jobs.Summary) {
	t.Helper()
	nc, _ := connect(t, dist.ConnOptions{URL: url, Reconnect: true})
	journal := filepath.Join(dir, "journal.jsonl")
	rc.RunID = dist.RunID(journal)
	ex, err := dist.NewExecutor(context.Background(), nc, rc)
	if err != nil {
		t.Fatal(err)
	}
	res := new(lockedBuffer)
	type ran struct {
		sum *jobs.Summary
		err error
	}
	done := make(chan ran, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	go func() {
		sum, err := jobs.Run(ctx, plan, jobs.Options{Executor: ex, Journal: journal, Results: res})
		done <- ran{sum, err}
	}()
	return res, func() *jobs.Summary {
		t.Helper()
		defer cancel()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.sum
	}
}

// markedBy waits for a task marked as started by the agent process pid,
// and returns its name.
func markedBy(t *testing.T, marks string, pid int) string {
	t.Helper()
	var name string
	waitFor(t, waitTimeout, fmt.Sprintf("a task started by agent pid %d", pid), func() (bool, string) {
		entries, _ := os.ReadDir(marks)
		for _, e := range entries {
			if p, task, ok := strings.Cut(e.Name(), "-"); ok && p == strconv.Itoa(pid) {
				name = task
				return true, ""
			}
		}
		return false, fmt.Sprint(len(entries), " marks")
	})
	return name
}

// 3 agents, 300 tasks, one agent killed with SIGKILL while it runs a
// task: every task is done exactly once in the results, the task it was
// running was delivered again and shows 2 attempts, and the killed agent's
// workers do not outlive it.
func TestAgentKilledMidTask(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	marks := t.TempDir()
	agents := []*agentProc{startAgent(t, s.URL(), "a1", 2), startAgent(t, s.URL(), "a2", 2), startAgent(t, s.URL(), "a3", 2)}
	// 299 short tasks, and one of 3 s: whichever agent starts it is
	// killed while it runs.
	plan, dir := planOf(t, fmt.Sprintf(`jobs:
  - name: s
    kind: test.sleep
    count: 299
    params: {ms: 20}
  - name: long
    kind: test.sleep
    params: {ms: 3000, marks: %q}
`, marks))
	res, wait := runAsync(t, s.URL(), plan, dir, dist.RunConfig{Queue: dist.QueueConfig{AckWait: 2 * time.Second}})

	var victim *agentProc
	waitFor(t, waitTimeout, "the long task started", func() (bool, string) {
		for _, a := range agents {
			if _, err := os.Stat(filepath.Join(marks, fmt.Sprintf("%d-0", a.cmd.Process.Pid))); err == nil {
				victim = a
				return true, ""
			}
		}
		return false, "no mark"
	})
	victim.stop(t, syscall.SIGKILL)
	sum := wait()
	if sum.OK != 300 {
		t.Fatalf("summary %+v, want 300 ok", sum)
	}
	seen := map[string]int{} // by job/task
	var victimPIDs []int
	redelivered := 0
	for _, r := range res.results(t) {
		seen[r.Job+"/"+r.Task]++
		if data, err := os.ReadFile(r.Output); err != nil || string(data) != "done "+r.Task+"\n" {
			t.Errorf("task %s: output %q, %v", r.Task, data, err)
		}
		if r.Agent == victim.name {
			victimPIDs = append(victimPIDs, r.WorkerPID)
		}
		if r.Attempts == 2 {
			redelivered++
		}
		switch {
		case r.Job == "long" && (r.Attempts != 2 || r.Agent == victim.name || len(r.Retried) != 1):
			t.Errorf("the task running on the killed agent: %+v, want 2 attempts, the last elsewhere", r)
		case r.Attempts != 1 && r.Attempts != 2:
			t.Errorf("task %s: %d attempts", r.Task, r.Attempts)
		}
	}
	if redelivered > 2 {
		// Only what the killed agent held comes back: one per worker.
		t.Errorf("%d tasks delivered twice, more than the killed agent's 2 workers", redelivered)
	}
	if len(seen) != 300 {
		t.Errorf("%d tasks in the results, want 300", len(seen))
	}
	for task, n := range seen {
		if n != 1 {
			t.Errorf("task %s: %d results", task, n)
		}
	}
	// The killed agent's workers go with it.
	for _, pid := range victimPIDs {
		waitFor(t, 10*time.Second, fmt.Sprintf("the killed agent's worker %d gone", pid), func() (bool, string) {
			err := syscall.Kill(pid, 0)
			return errors.Is(err, syscall.ESRCH), fmt.Sprint(err)
		})
	}
}

// A task whose agents are lost MaxDeliver times fails saying so, apart
// from the job's own retries, and leaves the work queue.
func TestDeliveriesExhausted(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	marks := t.TempDir()
	victim := startAgent(t, s.URL(), "victim", 1)
	plan, dir := planOf(t, fmt.Sprintf("jobs:\n  - name: s\n    kind: test.sleep\n    retries: 3\n    params: {ms: 60000, marks: %q}\n", marks))
	res, wait := runAsync(t, s.URL(), plan, dir, dist.RunConfig{Queue: dist.QueueConfig{AckWait: time.Second, MaxDeliver: 1}})
	markedBy(t, marks, victim.cmd.Process.Pid)
	victim.stop(t, syscall.SIGKILL)
	sum := wait()
	if sum.Failed != 1 {
		t.Fatalf("summary %+v, want 1 failed", sum)
	}
	r := res.results(t)[0]
	if !strings.Contains(r.Error, "the work queue gave up on it: delivered 1 times (the queue's MaxDeliver)") {
		t.Errorf("error %q", r.Error)
	}
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	stream, err := js.Stream(context.Background(), dist.TaskStream)
	if err != nil {
		t.Fatal(err)
	}
	left, err := queuedTasks(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d tasks left in the work queue", left)
	}
}

// Two-stage interrupt through the queue. Run A's long task holds the only
// agent's only worker, so run B's task waits in the queue undelivered: a
// first interrupt of B withdraws it (cancelled, gone from the queue, B
// ends at once); cancelling A's run gives up on its running task, which
// the agent cancels and drops from the queue.
func TestInterruptWithdrawsQueued(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	marks := t.TempDir()
	agent := startAgent(t, s.URL(), "solo", 1)
	planA, dirA := planOf(t, fmt.Sprintf("jobs:\n  - name: a\n    kind: test.sleep\n    params: {ms: 60000, marks: %q}\n", marks))
	planB, dirB := planOf(t, "jobs:\n  - name: b\n    kind: test.sleep\n    count: 1\n")

	nc, js := connect(t, dist.ConnOptions{URL: s.URL()})
	newEx := func(dir string) *dist.Executor {
		ex, err := dist.NewExecutor(context.Background(), nc, dist.RunConfig{RunID: dist.RunID(filepath.Join(dir, "journal.jsonl"))})
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	type ran struct {
		sum *jobs.Summary
		err error
	}
	resA, resB := new(lockedBuffer), new(lockedBuffer)
	ctxA, killA := context.WithCancel(context.Background())
	defer killA()
	doneA, doneB := make(chan ran, 1), make(chan ran, 1)
	exA := newEx(dirA)
	go func() {
		sum, err := jobs.Run(ctxA, planA, jobs.Options{Executor: exA, Journal: filepath.Join(dirA, "j.jsonl"), Results: resA})
		doneA <- ran{sum, err}
	}()
	markedBy(t, marks, agent.cmd.Process.Pid)

	drainB := make(chan struct{})
	exB := newEx(dirB)
	go func() {
		sum, err := jobs.Run(context.Background(), planB, jobs.Options{Executor: exB, Journal: filepath.Join(dirB, "j.jsonl"), Results: resB, Drain: drainB})
		doneB <- ran{sum, err}
	}()
	stream, err := js.Stream(context.Background(), dist.TaskStream)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "run B's task queued", func() (bool, string) {
		n, err := queuedTasks(context.Background(), stream)
		return err == nil && n == 2, fmt.Sprint(n, " queued, ", err)
	})
	close(drainB)
	var b ran
	select {
	case b = <-doneB:
	case <-time.After(waitTimeout):
		t.Fatal("run B did not end after its interrupt, its only task queued")
	}
	if b.err != nil || b.sum.Cancelled != 1 || !b.sum.Interrupted {
		t.Fatalf("run B: %+v, %v; want its task cancelled", b.sum, b.err)
	}
	if r := resB.results(t); len(r) != 1 || !strings.Contains(r[0].Error, "interrupted") {
		t.Errorf("run B's results: %+v", r)
	}
	if n, err := queuedTasks(context.Background(), stream); err != nil || n != 1 {
		t.Errorf("after B's withdrawal the queue holds %v (%v), want A's task only", n, err)
	}

	killA()
	var a ran
	select {
	case a = <-doneA:
	case <-time.After(waitTimeout):
		t.Fatal("run A did not end once killed")
	}
	if a.err != nil || a.sum.Cancelled != 1 {
		t.Fatalf("run A: %+v, %v; want its task given up", a.sum, a.err)
	}
	// The agent's only worker is free again at once, not in a minute.
	planC, dirC := planOf(t, "jobs:\n  - name: c\n    kind: test.sleep\n")
	exC := newEx(dirC)
	ctxC, cancelC := context.WithTimeout(context.Background(), waitTimeout)
	defer cancelC()
	sumC, err := jobs.Run(ctxC, planC, jobs.Options{Executor: exC, Journal: filepath.Join(dirC, "j.jsonl")})
	if err != nil || sumC.OK != 1 {
		t.Fatalf("a run after A was killed: %+v, %v; the agent still runs A's task", sumC, err)
	}
	if _, err := os.Stat(planA.Jobs[0].Tasks[0].Output); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("A's cancelled task wrote its output: %v", err)
	}
}

// The server stopped mid-run and started again on the same store: no
// task lost, none with two results, and the run finishes.
func TestServerRestartMidRun(t *testing.T) {
	for _, down := range []time.Duration{500 * time.Millisecond, 5 * time.Second} {
		t.Run(down.String(), func(t *testing.T) {
			store := t.TempDir()
			s, err := dist.StartServer(dist.ServerConfig{Listen: "127.0.0.1:0", StoreDir: store})
			if err != nil {
				t.Fatal(err)
			}
			url := s.URL()
			u, _ := neturl.Parse(url)
			startAgent(t, url, "a1", 2)
			startAgent(t, url, "a2", 2)
			plan, dir := planOf(t, "jobs:\n  - name: s\n    kind: test.sleep\n    count: 200\n    params: {ms: 20}\n")
			res, wait := runAsync(t, url, plan, dir, dist.RunConfig{Queue: dist.QueueConfig{AckWait: 3 * time.Second}})
			waitFor(t, waitTimeout, "50 tasks done", func() (bool, string) {
				n := len(res.results(t))
				return n >= 50, fmt.Sprint(n)
			})
			s.Shutdown()
			time.Sleep(down) // the outage itself, not a synchronisation
			s2, err := dist.StartServer(dist.ServerConfig{Listen: u.Host, StoreDir: store})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Shutdown()
			back, before := time.Now(), len(res.results(t))
			waitFor(t, waitTimeout, "progress after the restart", func() (bool, string) {
				n := len(res.results(t))
				return n > before, fmt.Sprint(n)
			})
			// The target is 1.5 s; the bound here is generous, as
			// the suite runs beside other work.
			if resumed := time.Since(back); resumed > 10*time.Second {
				t.Errorf("progress resumed %v after the server was back", resumed)
			} else {
				t.Logf("progress resumed %v after the server was back", resumed)
			}
			sum := wait()
			seen := map[string]int{}
			for _, r := range res.results(t) {
				seen[r.Task]++
				if r.Status != jobs.StatusOK {
					t.Errorf("task %s: %s", r.Task, r.Error)
				}
			}
			if sum.OK != 200 || len(seen) != 200 {
				t.Errorf("after the restart: %+v, %d tasks in the results", sum, len(seen))
			}
			for task, n := range seen {
				if n != 1 {
					t.Errorf("task %s: %d results", task, n)
				}
			}
		})
	}
}
