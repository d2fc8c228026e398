package dist_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// sharedJobs is a call job on the test binary over texts in root/in, each
// big enough to travel as a blob; outputs small enough to come back inline.
func sharedJobs(t *testing.T, root string) (*jobs.Plan, string) {
	t.Helper()
	in := filepath.Join(root, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		text := strings.Repeat(fmt.Sprintf("text %d, line of words\n", i), 4000)
		if err := os.WriteFile(filepath.Join(in, fmt.Sprintf("t%02d.txt", i)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An agent runs only a worker the job pins by its hash.
	sum := testBinary(t, t.TempDir(), "w")
	return planOf(t, fmt.Sprintf(`jobs:
  - name: shout
    kind: call
    inputs: %s/*.txt
    output: out/{stem}.txt
    params: {function: test.shout, arg: shared}
    worker: {command: %s, sha256: %s, env: {PPOOL_WORKER: "1"}}
`, in, os.Args[0], sum))
}

// blobs counts the objects of the files' bucket, but for the worker
// binary's (the test binary, which a job that pins its hash ships).
func blobs(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, dist.FileBucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	self := testBinary(t, t.TempDir(), "self")
	n := 0
	for _, o := range list {
		if o.Name != self {
			n++
		}
	}
	return n
}

// sharedRun runs sharedJobs locally, then with SharedRoot on the agents
// of url, and checks that the outputs are the same; it returns the
// number of blobs the run moved.
func sharedRun(t *testing.T, url, root string) int {
	t.Helper()
	plan, localDir := sharedJobs(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	sum, err := jobs.Run(ctx, plan, jobs.Options{Workers: 2, Journal: filepath.Join(localDir, "journal.jsonl")})
	if err != nil || sum.OK != 6 {
		t.Fatalf("local run: %+v, %v", sum, err)
	}
	want := callOutputs(t, localDir)

	plan, dir := sharedJobs(t, root)
	sum, res := runOn(t, url, plan, dir, dist.RunConfig{SharedRoot: root}, false)
	if sum.OK != 6 {
		t.Fatalf("run on agents: %+v; results %+v", sum, res)
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
	if _, err := os.Stat(filepath.Join(root, ".ppool-token-"+dist.RunID(filepath.Join(dir, "journal.jsonl")))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run's token is left in the shared root: %v", err)
	}
	_, js := connect(t, dist.ConnOptions{URL: url})
	return blobs(t, js)
}

// With a shared root that the agents mount at the same place, inputs are
// read in place: no blob moves, and the outputs are the local run's.
func TestSharedRoot(t *testing.T) {
	root := t.TempDir()
	s := startServer(t, dist.ServerConfig{})
	a1 := startAgent(t, s.URL(), "a1", 2, "PPOOL_TEST_SHARED="+root)
	a2 := startAgent(t, s.URL(), "a2", 2, "PPOOL_TEST_SHARED="+root)
	if n := sharedRun(t, s.URL(), root); n != 0 {
		t.Errorf("%d blobs in the bucket, want none", n)
	}
	if !stderrHas(a1, "shared root checked") && !stderrHas(a2, "shared root checked") {
		t.Error("no agent says it checked the shared root")
	}
}

// An agent whose shared root is another folder does not find the run's
// token there: it says so and gets the files as blobs.
func TestSharedRootElsewhere(t *testing.T) {
	root := t.TempDir()
	s := startServer(t, dist.ServerConfig{})
	a1 := startAgent(t, s.URL(), "a1", 2, "PPOOL_TEST_SHARED="+t.TempDir())
	if n := sharedRun(t, s.URL(), root); n != 6 {
		t.Errorf("%d blobs in the bucket, want the 6 inputs", n)
	}
	if !stderrHas(a1, "its token is not readable here") {
		t.Errorf("the agent does not say why it fell back:\n%s", a1.stderr.String())
	}
}

// A task message cannot name a shared file outside the root, nor one
// without the token that proves the root.
func TestSharedPathsChecked(t *testing.T) {
	tok := &dist.SharedToken{Name: ".ppool-token-r1", SHA256: strings.Repeat("ef", 32)}
	for _, c := range []struct {
		shared string
		tok    *dist.SharedToken
		ok     bool
	}{
		{"in/a.txt", tok, true},
		{"in/a.txt", nil, false},
		{"../a.txt", tok, false},
		{"in/../../a.txt", tok, false},
		{"/etc/passwd", tok, false},
		{"in/a.txt", &dist.SharedToken{Name: "../.ppool-token-r1", SHA256: tok.SHA256}, false},
	} {
		m := &dist.TaskMessage{ID: "x", Shared: c.tok, Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Path: "/r/a.npy"}}},
			Files: map[string]*dist.FileRef{"/r/a.npy": {SHA256: strings.Repeat("ab", 32), Size: 2, Shared: c.shared}}}
		data, err := dist.EncodeTask(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dist.DecodeTask(data); (err == nil) != c.ok {
			t.Errorf("shared %q, token %v: error %v, want ok=%v", c.shared, c.tok, err, c.ok)
		}
	}
}
