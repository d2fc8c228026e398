package matrix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ppool/ppool/jobs"
)

// TestMultiplySplitAsWhole: matrix.multiply run as tiles on separate
// workers and assembled writes the same bytes as the product run whole.
func TestMultiplySplitAsWhole(t *testing.T) {
	defer func(f, s int) { splitFlops, tileSize = f, s }(splitFlops, tileSize)
	splitFlops, tileSize = 1000, 64

	dir := t.TempDir()
	k, _ := jobs.LookupKind("matrix.multiply")
	task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Inputs: map[string]jobs.Input{
		"a": {Gen: &jobs.Generator{Kind: "random", Shape: []int{200, 150}, Seed: 1}},
		"b": {Gen: &jobs.Generator{Kind: "random", Shape: []int{150, 170}, Seed: 2}},
	}}
	task.Output = filepath.Join(dir, "whole.npy")
	if _, err := k.Run(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
	parts, err := k.Split(&task)
	if err != nil || len(parts) != 4*3 {
		t.Fatalf("split into %d tiles, %v; want 4×3", len(parts), err)
	}
	for i := range parts {
		parts[i].Path = filepath.Join(dir, fmt.Sprintf("tile%02d.npy", i))
		pt := task
		pt.Mode, pt.Part = "part", &parts[i]
		if _, err := k.Run(context.Background(), &pt); err != nil {
			t.Fatalf("tile %d: %v", i, err)
		}
	}
	task.Mode, task.Parts, task.Output = "merge", parts, filepath.Join(dir, "split.npy")
	if _, err := k.Merge(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "whole.npy"))
	b, _ := os.ReadFile(task.Output)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("tiled product differs from the whole one (backend %s)", Backend())
	}
}
