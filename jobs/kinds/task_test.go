package kinds

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/ppool/ppool/internal/proctest"
)

// test.hashcopy copies its input to its output, as an image kind does its
// files: it reads the input whole once and writes the output once,
// hashing both on the way when its "hash" param says so.
func init() {
	Register(&Kind{
		Name: "test.hashcopy", Summary: "copy a file, hashing as it reads and writes", Version: 1,
		Slots:   []Slot{{Name: "in", Doc: "a file"}},
		Outputs: []string{"bin"},
		Params:  []Param{{Name: "hash", Type: TypeBool, Default: true, Doc: "report the hashes"}},
		Run: func(ctx context.Context, t *Task) (*Outcome, error) {
			in := t.Inputs["in"].Path
			data, err := os.ReadFile(in)
			if err != nil {
				return nil, err
			}
			o := &Outcome{Output: t.Output}
			if err := os.WriteFile(t.Output, data, 0o644); err != nil {
				return nil, err
			}
			if t.Bool("hash") {
				h := NewHasher()
				h.Write(data)
				o.InputHashes = map[string]string{in: h.Sum()}
				o.OutputHash = h.Sum() // the same bytes
			}
			return o, nil
		},
	})
}

// TestWorkerReadsEachFileOnce: a kind that hashes its input as it reads
// it and its output as it writes it costs the worker no second read of
// either, and the journal still gets both hashes, the same as hashing the
// files afterwards gives; a kind that reports none gets them from the
// worker, which reads the files for them.
func TestWorkerReadsEachFileOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts reads with /proc/self/io")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	const size = 8 << 20
	if err := os.WriteFile(in, bytes.Repeat([]byte("ppool reads once "), size/17+1)[:size], 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := hashFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		hash      bool
		readsUpTo int64 // files' worth of bytes read
	}{
		{hash: true, readsUpTo: 1},  // the kind's read only
		{hash: false, readsUpTo: 3}, // and the worker's of the input and the output
	} {
		out := filepath.Join(dir, "out-"+strconv.FormatBool(c.hash)+".bin")
		task := Task{Job: "t", Kind: "test.hashcopy", Name: "x", Mode: "run", Output: out,
			Params: map[string]any{"hash": c.hash}, Inputs: map[string]Input{"in": {Path: in}}}
		before := proctest.BytesRead(t)
		o, err := runTaskHere(task)
		read := proctest.BytesRead(t) - before
		if err != nil {
			t.Fatal(err)
		}
		if o.InputHashes[in] != want || o.OutputHash != want {
			t.Errorf("hash %v: input hash %q, output hash %q; both want %q", c.hash, o.InputHashes[in], o.OutputHash, want)
		}
		if lo, hi := c.readsUpTo*size, c.readsUpTo*size+size/2; read < lo-size/2 || read > hi {
			t.Errorf("hash %v: the task read %d bytes of an %d-byte input and output, want about %d", c.hash, read, size, lo)
		}
	}
}

// runTaskHere runs a task as a worker does, in this process.
func runTaskHere(t Task) (Outcome, error) { return task(context.Background(), t) }
