package matrix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/mat"

	"github.com/ppool/ppool/jobs"
)

// TestMultiplySplitAsWhole: matrix.multiply split into tiles writes the
// same bytes however its tiles are shared among workers and however often
// they are computed again (as by a resumed run), and agrees with the
// product run whole as PlanTiles promises: within the rounding bound of a
// dot product, and byte for byte on gonum. So for generated inputs and
// for .npy and .csv files, of which each tile reads only its bands.
func TestMultiplySplitAsWhole(t *testing.T) {
	defer func(f, s int) { splitFlops, tileSize = f, s }(splitFlops, tileSize)
	splitFlops, tileSize = 1000, 64

	a, _ := Random(200, 150, 1)
	b, _ := Random(150, 170, 2)
	files := t.TempDir()
	inputs := map[string]map[string]jobs.Input{"generated": {
		"a": {Gen: &jobs.Generator{Kind: "random", Shape: []int{200, 150}, Seed: 1}},
		"b": {Gen: &jobs.Generator{Kind: "random", Shape: []int{150, 170}, Seed: 2}},
	}}
	for _, ext := range []string{"npy", "csv"} {
		inputs[ext] = map[string]jobs.Input{"a": {Path: filepath.Join(files, "a."+ext)}, "b": {Path: filepath.Join(files, "b."+ext)}}
		if err := Write(inputs[ext]["a"].Path, a); err != nil {
			t.Fatal(err)
		}
		if err := Write(inputs[ext]["b"].Path, b); err != nil {
			t.Fatal(err)
		}
	}
	forBackends(t, productBackends, func(t *testing.T, backend string) {
		for _, source := range []string{"generated", "npy", "csv"} {
			t.Run(source, func(t *testing.T) { testSplitAsWhole(t, backend, inputs[source], a, b) })
		}
	})
}

func testSplitAsWhole(t *testing.T, backend string, inputs map[string]jobs.Input, a, b *mat.Dense) {
	dir := t.TempDir()
	k, _ := jobs.LookupKind("matrix.multiply")
	task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Inputs: inputs}
	task.Output = filepath.Join(dir, "whole.npy")
	if _, err := k.Run(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
	parts, err := k.Split(&task)
	if err != nil || len(parts) != 4*3 {
		t.Fatalf("split into %d tiles, %v; want 4×3", len(parts), err)
	}
	// Once in order on one worker, once in reverse order on as many
	// workers as there are tiles.
	split := func(run string, scrambled bool) []byte {
		parts := slices.Clone(parts)
		runTile := func(i int) error {
			pt := task
			pt.Mode, pt.Part = "part", &parts[i]
			if _, err := k.Run(context.Background(), &pt); err != nil {
				return fmt.Errorf("tile %d: %w", i, err)
			}
			return nil
		}
		var group errgroup.Group
		for i := range parts {
			if scrambled {
				i = len(parts) - 1 - i
			}
			parts[i].Path = filepath.Join(dir, fmt.Sprintf("%s-tile%02d.npy", run, i))
			if scrambled {
				group.Go(func() error { return runTile(i) })
			} else if err := runTile(i); err != nil {
				t.Fatal(err)
			}
		}
		if err := group.Wait(); err != nil {
			t.Fatal(err)
		}
		merge := task
		merge.Mode, merge.Parts, merge.Output = "merge", parts, filepath.Join(dir, run+".npy")
		if _, err := k.Merge(context.Background(), &merge); err != nil {
			t.Fatal(err)
		}
		out, err := os.ReadFile(merge.Output)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first, again := split("first", false), split("again", true)
	if !bytes.Equal(first, again) {
		t.Fatal("the tiled product differs when its tiles are computed again, in another order")
	}
	whole, err := os.ReadFile(task.Output)
	if err != nil {
		t.Fatal(err)
	}
	if backend == BackendGonum && !bytes.Equal(first, whole) {
		t.Error("on gonum, the tiled product's bytes differ from the whole one's")
	}
	assertWithinDotProductBound(t, "tiled", mustRead(t, filepath.Join(dir, "first.npy")), mustRead(t, task.Output), a, b)
}

// TestKindErrorsNameInputs: an operation that fails on its operands
// (shapes that do not fit, a singular matrix) names the input files, not
// only the task; an ill-conditioned solve or inverse succeeds with a
// warning, naming the files, in its outcome (which the runner logs and
// puts in the results line).
func TestKindErrorsNameInputs(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, m *mat.Dense) string {
		path := filepath.Join(dir, name)
		if err := Write(path, m); err != nil {
			t.Fatal(err)
		}
		return path
	}
	hilbert := mat.NewDense(10, 10, nil)
	hilbert.Apply(func(i, j int, _ float64) float64 { return 1 / float64(i+j+1) }, hilbert)
	ones := mat.NewDense(10, 1, nil)
	ones.Apply(func(int, int, float64) float64 { return 1 }, ones)
	wide := file("wide.npy", mat.NewDense(3, 4, nil))
	tall := file("tall.csv", dense(5, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	singular := file("singular.npy", dense(2, 2, 1, 2, 2, 4))
	hilbertFile, onesFile := file("hilbert10.npy", hilbert), file("ones.csv", ones)
	run := func(kind string, inputs map[string]jobs.Input) (*jobs.Outcome, error) {
		k, _ := jobs.LookupKind(kind)
		task := jobs.Task{Job: "j", Kind: kind, Name: "t", Mode: "run", Inputs: inputs, Output: filepath.Join(dir, "out.npy")}
		return k.Run(context.Background(), &task)
	}
	for _, tt := range []struct {
		kind   string
		inputs map[string]jobs.Input
		want   []string
	}{
		{"matrix.multiply", map[string]jobs.Input{"a": {Path: wide}, "b": {Path: tall}}, []string{"dimension mismatch", wide, tall}},
		{"matrix.solve", map[string]jobs.Input{"a": {Path: wide}, "b": {Gen: &jobs.Generator{Kind: "random", Shape: []int{3, 1}, Seed: 4}}}, []string{"dimension mismatch", wide, "random 3×1 seed 4"}},
		{"matrix.solve", map[string]jobs.Input{"a": {Path: singular}, "b": {Path: tall}}, []string{"dimension mismatch", singular, tall}},
		{"matrix.inverse", map[string]jobs.Input{"a": {Path: singular}}, []string{"singular", singular}},
		{"matrix.eigen", map[string]jobs.Input{"a": {Path: wide}}, []string{"square", wide}},
	} {
		_, err := run(tt.kind, tt.inputs)
		for _, want := range tt.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want it to name %q", tt.kind, err, want)
			}
		}
	}
	for _, tt := range []struct {
		kind   string
		inputs map[string]jobs.Input
	}{
		{"matrix.solve", map[string]jobs.Input{"a": {Path: hilbertFile}, "b": {Path: onesFile}}},
		{"matrix.inverse", map[string]jobs.Input{"a": {Path: hilbertFile}}},
	} {
		out, err := run(tt.kind, tt.inputs)
		if err != nil {
			t.Fatalf("%s of hilbert(10): %v", tt.kind, err)
		}
		if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], "ill-conditioned") || !strings.Contains(out.Warnings[0], hilbertFile) {
			t.Errorf("%s of hilbert(10): warnings %q, want one that it is ill-conditioned, naming %s", tt.kind, out.Warnings, hilbertFile)
		}
	}
}
