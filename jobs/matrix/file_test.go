package matrix

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadWriteByExtension(t *testing.T) {
	dir := t.TempDir()
	m := dense(2, 2, 1, 2, 3, 4)
	for _, name := range []string{"a.npy", "b.csv", "C.NPY", "d.Csv"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := Write(path, m); err != nil {
				t.Fatal(err)
			}
			assertEqualBits(t, name, mustRead(t, path), m)
		})
	}
	for _, name := range []string{"e.txt", "noext"} {
		path := filepath.Join(dir, name)
		var formatErr *FormatError
		if err := Write(path, m); !errors.As(err, &formatErr) || !strings.Contains(err.Error(), "want .npy or .csv") {
			t.Errorf("Write(%s) error = %v, want unknown format", name, err)
		}
		if _, err := Read(path); !errors.As(err, &formatErr) {
			t.Errorf("Read(%s) error = %v, want unknown format", name, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.npy")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) error = %v, want ErrNotExist", err)
	}
}

// TestWriteFileAtomic checks that a failed write leaves the old file as it
// was and no temporary file behind, and that a good one replaces it whole.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.npy")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	failure := errors.New("disk on fire")
	err := writeFileAtomic(path, func(w io.Writer) error {
		w.Write(make([]byte, 1<<17)) // past the buffer, so bytes reach the temp file
		return failure
	})
	if !errors.Is(err, failure) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want the write's error naming %s", err, path)
	}
	assertDir(t, dir, "out.npy")
	if raw, _ := os.ReadFile(path); string(raw) != "old" {
		t.Fatalf("after a failed write the file holds %q, want the old content", raw)
	}

	if err := WriteNPY(path, dense(1, 1, 7)); err != nil {
		t.Fatal(err)
	}
	assertDir(t, dir, "out.npy")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Fatalf("stat = %v, %v; want mode 0644", info, err)
	}

	if err := WriteNPY(filepath.Join(dir, "no-such-dir", "x.npy"), dense(1, 1, 7)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("writing into a missing directory: error = %v, want ErrNotExist", err)
	}
}

func assertDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("directory holds %v, want %v", names, want)
	}
}
