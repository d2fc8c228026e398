package dist_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
	_ "github.com/ppool/ppool/jobs/image"
)

// planOf expands a jobs file written in a folder of the test's.
func planOf(t testing.TB, yaml string) (*jobs.Plan, string) {
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
		n, err := queuedTasks(context.Background(), stream)
		return err == nil && n == 12, fmt.Sprint(n, " queued, ", err)
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
	info := taskConsumerInfo(t, js)
	if info.Delivered.Consumer != 12 {
		t.Errorf("%d deliveries, want 12: the resumed run ran finished tasks again", info.Delivered.Consumer)
	}
}

// copyTree copies the files of src (one level) into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// outputsOf reads every file under dir/out, by path relative to dir.
func outputsOf(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(dir, "out"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		data, err := os.ReadFile(path)
		out[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// filesJobs is examples/jobs.yaml made small enough for the race
// detector: image files in, a split render (strips are parts), jobs
// reading what earlier ones wrote.
const filesJobs = `jobs:
  - name: mandelbrot
    kind: image.mandelbrot
    params: {width: 2900, height: 2900, max_iter: 4}
    output: out/mandelbrot.png
  - name: thumbnails
    kind: image.thumbnail
    inputs: images/*
    params: {max_width: 64, max_height: 64}
    output: out/thumbnails/{stem}.png
  - name: blur
    kind: image.blur
    after: [thumbnails]
    inputs: out/thumbnails/photo.png
    params: {sigma: 1}
    output: out/blur.jpg
  - name: products
    kind: matrix.multiply
    count: 3
    inputs:
      a: {random: [200, 200], seed: 1}
      b: {random: [200, 200], seed: 101}
  - name: product-stats
    kind: matrix.stats
    after: [products]
    inputs: out/products/*.npy
`

// Files travel: the same jobs through a server and two agents write
// byte-identical outputs to a local run's, split tasks included.
func TestFilesThroughAgents(t *testing.T) {
	root := t.TempDir()
	var plans [2]*jobs.Plan
	for i, sub := range []string{"local", "dist"} {
		dir := filepath.Join(root, sub)
		copyTree(t, "../examples/images", filepath.Join(dir, "images"))
		if err := os.WriteFile(filepath.Join(dir, "jobs.yaml"), []byte(filesJobs), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := jobs.ReadFile(filepath.Join(dir, "jobs.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if plans[i], err = f.Expand(); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := jobs.Run(context.Background(), plans[0], jobs.Options{Workers: 2, NoJournal: true})
	if err != nil || sum.OK != sum.Failed+sum.OK || sum.OK == 0 {
		t.Fatalf("local run: %+v, %v", sum, err)
	}
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "a1", 2)
	startAgent(t, s.URL(), "a2", 2)
	dsum, res := runOn(t, s.URL(), plans[1], filepath.Join(root, "dist"), dist.RunConfig{}, false)
	if dsum.OK != sum.OK || dsum.Failed != 0 {
		for _, r := range res {
			if r.Status != jobs.StatusOK {
				t.Logf("%s/%s: %s", r.Job, r.Task, r.Error)
			}
		}
		t.Fatalf("through agents: %d ok, %d failed; locally %d ok", dsum.OK, dsum.Failed, sum.OK)
	}
	local, remote := outputsOf(t, filepath.Join(root, "local")), outputsOf(t, filepath.Join(root, "dist"))
	if len(local) != len(remote) || len(local) < 9 {
		t.Errorf("%d outputs through agents, %d locally", len(remote), len(local))
	}
	for name, data := range local {
		if !bytes.Equal(data, remote[name]) {
			t.Errorf("%s: %d bytes through agents, %d locally, not the same", name, len(remote[name]), len(data))
		}
	}
}

// A run started before any agent waits for one, and an agent that joins
// late gets work.
func TestRunWaitsForAgents(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	// 40 tasks of 100 ms: 4 s for one agent, time enough for a second.
	plan, dir := planOf(t, "jobs:\n  - name: s\n    kind: test.sleep\n    count: 40\n    params: {ms: 100}\n")
	res, wait := runAsync(t, s.URL(), plan, dir, dist.RunConfig{SlotPoll: 50 * time.Millisecond})
	startAgent(t, s.URL(), "early", 1)
	waitFor(t, waitTimeout, "a first task done", func() (bool, string) {
		n := len(res.results(t))
		return n > 0, fmt.Sprint(n)
	})
	startAgent(t, s.URL(), "late", 1)
	sum := wait()
	if sum.OK != 40 {
		t.Fatalf("summary %+v", sum)
	}
	byAgent := map[string]int{}
	for _, r := range res.results(t) {
		byAgent[r.Agent]++
	}
	if byAgent["early"] == 0 || byAgent["late"] == 0 {
		t.Errorf("tasks by agent: %v, want work for both", byAgent)
	}
}
