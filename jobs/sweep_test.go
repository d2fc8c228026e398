package jobs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSweepTemps: the temporary files of an output's interrupted writes go;
// the output itself and files of other names stay.
func TestSweepTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "a[1].png") // a name with glob characters
	for _, f := range []string{"a[1].png", ".a[1].png.tmp-123", ".a[1].png.tmp456", ".b.png.tmp-1", "a1.png", ".a1.png.tmp-9"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sweepTemps(&Plan{Jobs: []*PlannedJob{{Tasks: []*Task{{Output: out}}}}})
	var left []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{".a1.png.tmp-9", ".b.png.tmp-1", "a1.png", "a[1].png"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
