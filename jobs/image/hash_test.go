package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ppool/ppool/internal/proctest"
	"github.com/ppool/ppool/jobs"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestKindsReadInputOnce: a whole image task reads its input file once,
// and reports the hashes the journal records, of the bytes it decoded and
// of the bytes it wrote, so that the worker reads neither file again for
// them (jobs.TestWorkerReadsEachFileOnce); a strip of a split task, whose
// inputs the journal does not record, reports only its output's.
func TestKindsReadInputOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts reads with /proc/self/io")
	}
	dir := t.TempDir()
	img := makePhoto(600, 400, 3)
	jpg, png := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "in.png")
	for _, p := range []string{jpg, png} {
		if err := Save(p, img, SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		kind, in, out string
		params        map[string]any
		part          *jobs.Part
	}{
		{"image.thumbnail", jpg, "thumb.jpg", map[string]any{"max_width": 128, "max_height": 128}, nil},
		{"image.resize", png, "resized.png", map[string]any{"width": 300}, nil},
		{"image.blur", png, "blurred.png", map[string]any{"sigma": 2.0}, nil},
		{"image.blur", jpg, "strip.png", map[string]any{"sigma": 2.0}, &jobs.Part{Index: 0, Row0: 0, Row1: 100, Col1: 600}},
	} {
		k, ok := jobs.LookupKind(c.kind)
		if !ok {
			t.Fatalf("no kind %s", c.kind)
		}
		out := filepath.Join(dir, c.out)
		task := jobs.Task{Job: "t", Kind: c.kind, Name: "x", Mode: "run", Output: out, Params: c.params,
			Inputs: map[string]jobs.Input{"image": {Path: c.in}}}
		if c.part != nil {
			task.Mode, task.Part = "part", c.part
			c.part.Path = out
		}
		st, err := os.Stat(c.in)
		if err != nil {
			t.Fatal(err)
		}
		before := proctest.BytesRead(t)
		o, err := k.Run(context.Background(), &task)
		read := proctest.BytesRead(t) - before
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if read > st.Size()+st.Size()/4 {
			t.Errorf("%s of %s: read %d bytes of a %d-byte file", c.kind, c.in, read, st.Size())
		}
		if want := sha256File(t, out); o.OutputHash != want {
			t.Errorf("%s of %s: output hash %q, want %q", c.kind, c.in, o.OutputHash, want)
		}
		want := map[string]string{c.in: sha256File(t, c.in)}
		if c.part != nil {
			want = nil
		}
		if len(o.InputHashes) != len(want) || o.InputHashes[c.in] != want[c.in] {
			t.Errorf("%s of %s: input hashes %v, want %v", c.kind, c.in, o.InputHashes, want)
		}
	}
}

// TestLoadRejectsBeforeReading: a large file that is no image is refused
// from its first bytes, without being read whole.
func TestLoadRejectsBeforeReading(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts reads with /proc/self/io")
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	before := proctest.BytesRead(t)
	_, err := Load(path)
	read := proctest.BytesRead(t) - before
	if !errors.Is(err, ErrNotImage) {
		t.Fatalf("Load: %v, want ErrNotImage", err)
	}
	if read > 64<<10 {
		t.Errorf("Load read %d bytes of an 8 MiB file that is no image", read)
	}
}

// TestSplitReadsHeaderOnce: planning a split kind's task reads the start
// of its input once (the master does this for every such task), however
// many budgets it checks the header against.
func TestSplitReadsHeaderOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts reads with /proc/self/io")
	}
	path := filepath.Join(t.TempDir(), "in.png")
	if err := Save(path, makePhoto(1200, 900, 5), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const headRead = 256 << 10 // what inspect reads first
	if st.Size() < 2*headRead {
		t.Fatalf("the test image is %d bytes: too small to tell one read of its head from two", st.Size())
	}
	k, _ := jobs.LookupKind("image.blur")
	task := jobs.Task{Job: "t", Kind: "image.blur", Name: "x", Mode: "run", Output: filepath.Join(t.TempDir(), "out.png"),
		Params: map[string]any{"sigma": 2.0}, Inputs: map[string]jobs.Input{"image": {Path: path}}}
	before := proctest.BytesRead(t)
	if _, err := k.Split(&task); err != nil {
		t.Fatal(err)
	}
	if read := proctest.BytesRead(t) - before; read > headRead+headRead/4 {
		t.Errorf("planning the split read %d bytes of a %d-byte file; its head is %d", read, st.Size(), headRead)
	}
}
