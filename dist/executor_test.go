package dist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// planOf expands a jobs file written in a folder of the test's.
func planOf(t *testing.T, yaml string) (*jobs.Plan, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "jobs.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := jobs.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return plan, dir
}

// lockedBuffer is a results file written by a run while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) results(t *testing.T) []jobs.Result {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []jobs.Result
	for _, line := range strings.Split(strings.TrimSpace(b.sb.String()), "\n") {
		if line == "" {
			continue
		}
		var r jobs.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("results line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// runOn runs plan on the agents of the server at url, as `ppool run
// --nats` does, and returns its summary and results.
func runOn(t *testing.T, url string, plan *jobs.Plan, dir string, rc dist.RunConfig, resume bool) (*jobs.Summary, []jobs.Result) {
	t.Helper()
	nc, _ := connect(t, dist.ConnOptions{URL: url, Reconnect: true})
	journal := filepath.Join(dir, "journal.jsonl")
	rc.RunID = dist.RunID(journal)
	rc.Resume = resume
	ex, err := dist.NewExecutor(context.Background(), nc, rc)
	if err != nil {
		t.Fatal(err)
	}
	var res lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	sum, err := jobs.Run(ctx, plan, jobs.Options{Executor: ex, Journal: journal, Resume: resume, Results: &res})
	if err != nil {
		t.Fatal(err)
	}
	return sum, res.results(t)
}

// A run on two agents: every task's output is where the task asked, from
// one agent or the other; a typed failure reaches the results file with
// the agent's name.
func TestRunOnAgents(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "a1", 2)
	startAgent(t, s.URL(), "a2", 2)
	plan, dir := planOf(t, `jobs:
  - name: sleepers
    kind: test.sleep
    count: 30
    params: {ms: 2}
  - name: failing
    kind: test.sleep
    count: 1
    params: {fail: true}
`)
	sum, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
	if sum.OK != 30 || sum.Failed != 1 {
		t.Fatalf("summary %+v, want 30 ok and 1 failed", sum)
	}
	agents := map[string]int{}
	for _, r := range res {
		agents[r.Agent]++
		switch r.Job {
		case "sleepers":
			data, err := os.ReadFile(r.Output)
			if err != nil || string(data) != "done "+r.Task+"\n" {
				t.Errorf("task %s: output %q, %v", r.Task, data, err)
			}
		case "failing":
			if r.Status != jobs.StatusFailed || !strings.Contains(r.Error, "failing as asked") ||
				!strings.Contains(r.Error, "RemoteError on agent a") || (r.Agent != "a1" && r.Agent != "a2") {
				t.Errorf("failed task: %+v, want a RemoteError with its agent", r)
			}
		}
	}
	if len(agents) != 2 || agents[""] > 0 {
		t.Errorf("tasks by agent: %v, want both agents and no unnamed one", agents)
	}
}

// Two runs share a server and its agents at once without crossing: each
// gets exactly its own tasks' results.
func TestRunsShareAgents(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "a1", 2)
	startAgent(t, s.URL(), "a2", 2)
	var wg sync.WaitGroup
	for _, name := range []string{"first", "second"} {
		plan, dir := planOf(t, fmt.Sprintf("jobs:\n  - name: %s\n    kind: test.sleep\n    count: 40\n    params: {ms: 3}\n", name))
		wg.Go(func() {
			sum, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
			if sum.OK != 40 || len(res) != 40 {
				t.Errorf("run %s: summary %+v, %d results", name, sum, len(res))
			}
			for _, r := range res {
				data, err := os.ReadFile(r.Output)
				if r.Job != name || err != nil || string(data) != "done "+r.Task+"\n" {
					t.Errorf("run %s: result %+v, output %q, %v", name, r, data, err)
				}
			}
		})
	}
	wg.Wait()
}

// Tasks that agents finished while no `ppool run` was there (it was
// killed) are collected by --resume, not run again.
func TestResumeCollectsFinished(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	plan, dir := planOf(t, "jobs:\n  - name: s\n    kind: test.sleep\n    count: 12\n    params: {ms: 1}\n")
	rc := dist.RunConfig{RunID: dist.RunID(filepath.Join(dir, "journal.jsonl"))}

	// The killed run: it published every task, then its connection went,
	// with nothing collected.
	nc, err := dist.Connect(dist.ConnOptions{URL: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := dist.NewExecutor(context.Background(), nc, rc)
	if err != nil {
		t.Fatal(err)
	}
	pj := plan.Jobs[0]
	for _, task := range pj.Tasks {
		ex.Submit(pj, task, func(jobs.Completion) {})
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	stream, err := js.Stream(context.Background(), dist.TaskStream)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "12 tasks queued", func() (bool, string) {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.Msgs == 12, fmt.Sprint(info, err)
	})
	nc.Close()
	ex.Close(context.Background())

	// Agents finish them meanwhile.
	startAgent(t, s.URL(), "a1", 2)
	results(t, js, 12, waitTimeout)

	sum, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, true)
	if sum.OK != 12 || len(res) != 12 {
		t.Fatalf("resumed run: %+v, %d results", sum, len(res))
	}
	for _, r := range res {
		if data, err := os.ReadFile(r.Output); err != nil || string(data) != "done "+r.Task+"\n" {
			t.Errorf("task %s: output %q, %v", r.Task, data, err)
		}
	}
	cons, err := js.Consumer(context.Background(), dist.TaskStream, dist.TaskConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 12 {
		t.Errorf("%d deliveries, want 12: the resumed run ran finished tasks again", info.Delivered.Consumer)
	}
}
