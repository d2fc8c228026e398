package dist_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/workerproc"
)

// test.shout is a function of the test binary as a custom worker, for
// "call" jobs: it upper-cases its input, and names nothing of the machine
// that ran it, so that outputs compare byte for byte.
var _ = workerproc.Register("test.shout", func(ctx context.Context, a jobs.CallArgs) (int, error) {
	text, err := os.ReadFile(a.Input)
	if err != nil {
		return 0, err
	}
	out := append([]byte(a.Arg+":"), bytes.ToUpper(text)...)
	return len(out), os.WriteFile(a.Output, out, 0o644)
})

// testBinary copies the test binary into dir under name and returns the
// copy's SHA-256.
func testBinary(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shoutJobs is a jobs file of two call jobs on the test binary: one names
// it by its path (the agents have it), the other names shipped with its
// sha256: on agents, a name looked up in PATH that only the run's PATH
// has, so that the binary is shipped. (The local pool does not look a
// sealed binary up in PATH: the local run names it by its path.)
func shoutJobs(t *testing.T, texts int, shipped, sum string) (*jobs.Plan, string) {
	t.Helper()
	inputs := t.TempDir()
	for i := range texts {
		// Big enough to travel as a blob, not inline.
		text := strings.Repeat(fmt.Sprintf("text %d, line of words\n", i), 4000)
		if err := os.WriteFile(filepath.Join(inputs, fmt.Sprintf("t%02d.txt", i)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return planOf(t, fmt.Sprintf(`jobs:
  - name: local
    kind: call
    inputs: %[1]s/*.txt
    output: out/local-{stem}.txt
    params: {function: test.shout, arg: here}
    worker: {command: %[2]s, sha256: %[3]s, env: {PPOOL_WORKER: "1"}}
  - name: shipped
    kind: call
    inputs: %[1]s/*.txt
    output: out/shipped-{stem}.txt
    params: {function: test.shout, arg: shipped}
    worker: {command: %[4]s, sha256: %[3]s, env: {PPOOL_WORKER: "1"}}
`, inputs, os.Args[0], sum, shipped))
}

// callOutputs reads a run's outputs, by file name.
func callOutputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, "out", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

// Call jobs with a custom worker run on two agents as locally: one whose
// binary the agents have at the same path, one whose binary only the run
// has, shipped through the bucket pinned by the job's sha256.
func TestCustomWorkerOnAgents(t *testing.T) {
	binDir := t.TempDir()
	sum := testBinary(t, binDir, "ppool-test-worker")
	agentPath := os.Getenv("PATH") // without binDir: the agents lack the shipped worker
	s := startServer(t, dist.ServerConfig{})
	a1 := startAgent(t, s.URL(), "a1", 2, "PATH="+agentPath)
	a2 := startAgent(t, s.URL(), "a2", 2, "PATH="+agentPath)
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+agentPath)

	plan, localDir := shoutJobs(t, 6, filepath.Join(binDir, "ppool-test-worker"), sum)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	sum1, err := jobs.Run(ctx, plan, jobs.Options{Workers: 2, Journal: filepath.Join(localDir, "journal.jsonl")})
	if err != nil || sum1.OK != 12 {
		t.Fatalf("local run: %+v, %v", sum1, err)
	}
	want := callOutputs(t, localDir)

	plan, dir := shoutJobs(t, 6, "ppool-test-worker", sum)
	sum2, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
	if sum2.OK != 12 {
		t.Fatalf("run on agents: %+v; results %+v", sum2, res)
	}
	got := callOutputs(t, dir)
	if len(got) != len(want) {
		t.Fatalf("outputs %d, want %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("output %s differs from the local run's", name)
		}
	}
	agents := map[string]bool{}
	for _, r := range res {
		agents[r.Agent] = true
	}
	if !agents["a1"] || !agents["a2"] {
		t.Errorf("tasks ran on %v, want both agents", agents)
	}
	// Each agent that ran a shipped task fetched the binary once.
	for _, a := range []*agentProc{a1, a2} {
		if n := strings.Count(a.stderr.String(), "worker binary fetched"); n > 1 {
			t.Errorf("agent %s fetched the worker %d times", a.name, n)
		}
	}
	if !stderrHas(a1, "worker binary fetched") && !stderrHas(a2, "worker binary fetched") {
		t.Error("no agent fetched the shipped worker")
	}
}

// An agent started with NoFetchWorkers refuses a shipped worker binary,
// saying so with its name; one it has at the same path still runs.
func TestShippedWorkerRefused(t *testing.T) {
	binDir := t.TempDir()
	sum := testBinary(t, binDir, "ppool-test-worker")
	agentPath := os.Getenv("PATH")
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "strict", 1, "PATH="+agentPath, "PPOOL_TEST_NOFETCH=1")
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+agentPath)

	plan, dir := shoutJobs(t, 2, "ppool-test-worker", sum)
	sum2, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
	if sum2.OK != 2 || sum2.Failed != 2 {
		t.Fatalf("summary %+v, want 2 ok (local) and 2 failed (shipped)", sum2)
	}
	for _, r := range res {
		if r.Job != "shipped" {
			continue
		}
		if r.Status != jobs.StatusFailed || !strings.Contains(r.Error, "--no-fetch-workers") || !strings.Contains(r.Error, "strict") {
			t.Errorf("shipped task: %+v, want refused by --no-fetch-workers on agent strict", r)
		}
	}
}

// A worker whose sha256 the binary does not hash to is refused: by the
// run, which has the binary; by an agent, which has it and was sent none.
func TestWorkerHashMismatch(t *testing.T) {
	binDir := t.TempDir()
	testBinary(t, binDir, "w")
	wrong := strings.Repeat("ab", 32)
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "a1", 1)

	plan, dir := planOf(t, fmt.Sprintf(`jobs:
  - name: wrong
    kind: call
    inputs: jobs.yaml
    output: out.txt
    params: {function: test.shout}
    worker: {command: %s, sha256: %s, env: {PPOOL_WORKER: "1"}}
`, filepath.Join(binDir, "w"), wrong))
	sum, res := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
	if sum.Failed != 1 || len(res) != 1 || !strings.Contains(res[0].Error, "hash mismatch") {
		t.Fatalf("run: %+v, results %+v; want refused for a hash mismatch", sum, res)
	}

	// Sent by hand, as from a run that has no such binary.
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	m := &dist.TaskMessage{ID: "mismatch", Task: jobs.Task{
		Job: "wrong", Kind: "call", Name: "x", Mode: "run", Output: "/x/out.txt",
		Params: map[string]any{"function": "test.shout", "arg": ""},
		Inputs: map[string]jobs.Input{"input": {Path: "/x/in.txt"}},
	}, Files: map[string]*dist.FileRef{"/x/in.txt": {SHA256: hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("hi")); return s[:] }()), Size: 2, Data: []byte("hi")}},
		Worker: &dist.WorkerRef{Command: filepath.Join(binDir, "w"), SHA256: wrong, Env: []string{"PPOOL_WORKER=1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dist.PublishTask(ctx, js, m, ""); err != nil {
		t.Fatal(err)
	}
	r := results(t, js, 1, waitTimeout)[0]
	if r.Agent != "a1" || !strings.Contains(r.Error, "hash mismatch") {
		t.Fatalf("result %+v, want a hash mismatch on a1", r)
	}
}

// An agent runs no binary whose hash the job does not name, and takes no
// dynamic loader variables from a message: both refused, with the reason.
func TestUnpinnedWorkerRefused(t *testing.T) {
	binDir := t.TempDir()
	sum := testBinary(t, binDir, "w")
	s := startServer(t, dist.ServerConfig{})
	startAgent(t, s.URL(), "a1", 1)
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	in := map[string]*dist.FileRef{"/x/in.txt": {SHA256: hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("hi")); return s[:] }()), Size: 2, Data: []byte("hi")}}
	want := map[string]string{}
	for _, c := range []struct {
		id   string
		ref  *dist.WorkerRef
		want string
	}{
		{"unpinned", &dist.WorkerRef{Command: filepath.Join(binDir, "w"), Env: []string{"PPOOL_WORKER=1"}}, "names no sha256"},
		{"preload", &dist.WorkerRef{Command: filepath.Join(binDir, "w"), SHA256: sum, Env: []string{"LD_PRELOAD=/tmp/x.so", "PPOOL_WORKER=1"}}, "LD_PRELOAD"},
	} {
		m := &dist.TaskMessage{ID: c.id, Task: jobs.Task{
			Job: "j", Kind: "call", Name: c.id, Mode: "run", Output: "/x/out.txt",
			Params: map[string]any{"function": "test.shout", "arg": ""},
			Inputs: map[string]jobs.Input{"input": {Path: "/x/in.txt"}},
		}, Files: in, Worker: c.ref}
		if err := dist.PublishTask(ctx, js, m, ""); err != nil {
			t.Fatal(err)
		}
		want[c.id] = c.want
	}
	for _, r := range results(t, js, len(want), waitTimeout) {
		if r.Error == "" || !strings.Contains(r.Error, want[r.ID]) {
			t.Errorf("%s: result %+v, want refused naming %q", r.ID, r, want[r.ID])
		}
	}
}
