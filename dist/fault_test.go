package dist_test

import (
	"context"
	"errors"
	"fmt"
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
	victim := startAgent(t, s.URL(), "victim", 2)
	startAgent(t, s.URL(), "a2", 2)
	startAgent(t, s.URL(), "a3", 2)
	plan, dir := planOf(t, fmt.Sprintf("jobs:\n  - name: s\n    kind: test.sleep\n    count: 300\n    params: {ms: 30, marks: %q}\n", marks))
	res, wait := runAsync(t, s.URL(), plan, dir, dist.RunConfig{Queue: dist.QueueConfig{AckWait: 2 * time.Second}})

	killedTask := markedBy(t, marks, victim.cmd.Process.Pid)
	victim.stop(t, syscall.SIGKILL)
	sum := wait()
	if sum.OK != 300 {
		t.Fatalf("summary %+v, want 300 ok", sum)
	}
	seen := map[string]int{}
	var victimPIDs []int
	redelivered := 0
	for _, r := range res.results(t) {
		seen[r.Task]++
		if data, err := os.ReadFile(r.Output); err != nil || string(data) != "done "+r.Task+"\n" {
			t.Errorf("task %s: output %q, %v", r.Task, data, err)
		}
		if r.Agent == "victim" {
			victimPIDs = append(victimPIDs, r.WorkerPID)
		}
		if r.Attempts == 2 {
			redelivered++
		}
		switch {
		case r.Task == killedTask && (r.Attempts != 2 || r.Agent == "victim" || len(r.Retried) != 1):
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
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d messages left in the work queue", info.State.Msgs)
	}
}
