package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// test.warn: a task that succeeds with a warning about its result.
func init() {
	Register(&Kind{
		Name: "test.warn", Summary: "succeeds with a warning", Version: 1,
		Outputs: []string{"txt"},
		Run: func(ctx context.Context, t *Task) (*Outcome, error) {
			if err := os.WriteFile(t.Output, []byte("result"), 0o644); err != nil {
				return nil, err
			}
			return &Outcome{Output: t.Output, Warnings: []string{"the result has about 2 correct digits"}}, nil
		},
	})
}

// TestWarningsReported: a task that succeeds with a warning is ok, and the
// warning is logged at WARN (which the default text log shows) and carried
// in its results line.
func TestWarningsReported(t *testing.T) {
	dir := t.TempDir()
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte("jobs:\n  - name: w\n    kind: test.warn\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	var results strings.Builder
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	sum, err := Run(context.Background(), plan, Options{Workers: 1, NoJournal: true, Results: &results, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	lines := readResultLines(t, results.String())
	if sum.OK != 1 || len(lines) != 1 || lines[0].Status != StatusOK {
		t.Fatalf("summary %+v, results %+v; want one ok task", sum, lines)
	}
	want := []string{"the result has about 2 correct digits"}
	if !slices.Equal(lines[0].Warnings, want) || !strings.Contains(results.String(), `"warnings":["the result`) {
		t.Errorf("results line %s, want warnings %q", results.String(), want)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), want[0]) {
		t.Errorf("log:\n%s\nwant the warning at WARN", log.String())
	}
}
