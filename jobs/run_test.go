package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// test.split: a task of six parts. Each part leaves a marker file as it
// starts, fails if it is the part the params name, and otherwise waits for
// a release file, so that a test knows which parts ran and can hold them.
func init() {
	Register(&Kind{
		Name: "test.split", Summary: "six parts that wait to be released", Version: 1,
		Params: []Param{
			{Name: "dir", Type: TypeString, Default: "", Doc: "where markers go"},
			{Name: "fail_part", Type: TypeInt, Default: -1, Doc: "the part that fails"},
		},
		Outputs: []string{"txt"},
		Run: func(ctx context.Context, t *Task) (*Outcome, error) {
			dir := t.Params["dir"].(string)
			if t.Part == nil {
				return nil, errors.New("test.split runs in parts only")
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("started-%d", t.Part.Index)), nil, 0o644); err != nil {
				return nil, err
			}
			if fmt.Sprint(t.Params["fail_part"]) == fmt.Sprint(t.Part.Index) {
				return nil, errors.New("this part fails")
			}
			for {
				if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
					return &Outcome{}, os.WriteFile(t.Part.Path, []byte("part"), 0o644)
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		},
		Split: func(t *Task) ([]Part, error) {
			parts := make([]Part, 6)
			for i := range parts {
				parts[i] = Part{Index: i, Row0: i, Row1: i + 1}
			}
			return parts, nil
		},
		Merge: func(ctx context.Context, t *Task) (*Outcome, error) {
			return &Outcome{}, os.WriteFile(t.Output, []byte("merged"), 0o644)
		},
	})
}

// splitRun runs one test.split task on one worker, and returns the run's
// summary, its results and the parts that started.
func splitRun(t *testing.T, failPart int, drain chan struct{}, whileRunning func(dir string)) (*Summary, []Result, []string) {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf("jobs:\n  - name: s\n    kind: test.split\n    params: {dir: %q, fail_part: %d}\n", dir, failPart)
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	var res strings.Builder
	done := make(chan struct{})
	var sum *Summary
	go func() {
		defer close(done)
		sum, err = Run(context.Background(), plan, Options{Workers: 1, Results: &res, Drain: drain})
	}()
	if whileRunning != nil {
		whileRunning(dir)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
		<-done
		t.Fatal("the run did not end within 60s")
	}
	if err != nil {
		t.Fatal(err)
	}
	started, _ := filepath.Glob(filepath.Join(dir, "started-*"))
	for i := range started {
		started[i] = filepath.Base(started[i])
	}
	return sum, readResultLines(t, res.String()), started
}

func readResultLines(t *testing.T, s string) []Result {
	t.Helper()
	var out []Result
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("results line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// waitFile waits for a file to exist, failing the test after a generous
// deadline.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 30s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSplitDrainStopsParts: a first interrupt while a split task's first
// part runs lets that part finish and starts none of the others; the task
// is cancelled, not failed.
func TestSplitDrainStopsParts(t *testing.T) {
	drain := make(chan struct{})
	sum, res, started := splitRun(t, -1, drain, func(dir string) {
		waitFile(t, filepath.Join(dir, "started-0"))
		close(drain)
		os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
	})
	if !slices.Equal(started, []string{"started-0"}) {
		t.Errorf("parts started: %v, want only the first", started)
	}
	if len(res) != 1 || res[0].Status != StatusCancelled || !strings.Contains(res[0].Error, "interrupted") {
		t.Errorf("results %+v, want one cancelled task", res)
	}
	if !sum.Interrupted || sum.Cancelled != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// TestSplitFailedPartStopsTask: once a part fails, the task's remaining
// parts are not started, and the task fails naming the part.
func TestSplitFailedPartStopsTask(t *testing.T) {
	_, res, started := splitRun(t, 0, nil, nil)
	if !slices.Equal(started, []string{"started-0"}) {
		t.Errorf("parts started: %v, want only the failed first", started)
	}
	if len(res) != 1 || res[0].Status != StatusFailed || !strings.Contains(res[0].Error, "part 0: ") || !strings.Contains(res[0].Error, "this part fails") {
		t.Errorf("results %+v, want one failed task naming part 0", res)
	}
}

// TestSplitRunsWhole: with nothing in the way, every part runs and the task
// is merged.
func TestSplitRunsWhole(t *testing.T) {
	_, res, started := splitRun(t, -1, nil, func(dir string) {
		os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
	})
	if len(started) != 6 || len(res) != 1 || res[0].Status != StatusOK {
		t.Errorf("started %v, results %+v", started, res)
	}
}

// TestSplitResumeReusesParts: parts finished before an interrupt are kept,
// and --resume runs only the others, then merges.
func TestSplitResumeReusesParts(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf("jobs:\n  - name: s\n    kind: test.split\n    params: {dir: %q}\n", dir)
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	drain := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), plan, Options{Workers: 1, Drain: drain})
		done <- err
	}()
	waitFile(t, filepath.Join(dir, "started-0"))
	close(drain)
	os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "started-0"))
	var res strings.Builder
	sum, err := Run(context.Background(), plan, Options{Workers: 1, Resume: true, Results: &res})
	if err != nil {
		t.Fatal(err)
	}
	if sum.OK != 1 {
		t.Fatalf("resumed run: %+v\n%s", sum, res.String())
	}
	started, _ := filepath.Glob(filepath.Join(dir, "started-*"))
	for i := range started {
		started[i] = filepath.Base(started[i])
	}
	if want := []string{"started-1", "started-2", "started-3", "started-4", "started-5"}; !slices.Equal(started, want) {
		t.Errorf("the resumed run started %v, want %v: part 0 was done", started, want)
	}
	if b, err := os.ReadFile(plan.Jobs[0].Tasks[0].Output); err != nil || string(b) != "merged" {
		t.Errorf("output %q, %v", b, err)
	}
	// Done: the parts are gone, and a further --resume skips the task.
	if left, _ := filepath.Glob(filepath.Join(dir, ".ppool", "*.parts", "*")); len(left) != 0 {
		t.Errorf("parts left after a complete run: %v", left)
	}
}
