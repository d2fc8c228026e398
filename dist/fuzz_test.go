package dist_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// Task messages come from the network: any bytes decode to a checked task
// or an error, never a panic, and a checked task names a built-in kind and
// carries every file it reads, each named by a SHA-256.
func FuzzDecodeTask(f *testing.F) {
	for _, m := range []*dist.TaskMessage{
		sleepTask("a", 5, false),
		{ID: "mm", Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Gen: &jobs.Generator{Kind: "identity", Shape: []int{2, 2}}}}}},
		{ID: "file", Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Path: "/etc/passwd"}}}},
		{ID: "carried", Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Path: "a.npy"}}},
			Files: map[string]*dist.FileRef{"a.npy": {SHA256: strings.Repeat("ab", 32), Size: 2, Data: []byte("hi")}}},
		{ID: "part", Task: jobs.Task{Kind: "image.mandelbrot", Mode: "part", Part: &jobs.Part{Index: 1, Path: "../../x.png"}}},
		{ID: "call", Task: jobs.Task{Kind: "call", Mode: "run", Params: map[string]any{"function": "f"}, Inputs: map[string]jobs.Input{"input": {Path: "a.txt"}}},
			Files:  map[string]*dist.FileRef{"a.txt": {SHA256: strings.Repeat("ab", 32), Size: 2, Shared: "in/a.txt"}},
			Shared: &dist.SharedToken{Name: ".ppool-token-r1", SHA256: strings.Repeat("ef", 32)},
			Worker: &dist.WorkerRef{Command: "/usr/bin/w", Args: []string{"-x"}, Env: []string{"A=1"}, SHA256: strings.Repeat("cd", 32), Shipped: true}},
	} {
		data, err := dist.EncodeTask(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := dist.DecodeTask(data)
		if err != nil {
			return
		}
		if _, ok := jobs.LookupKind(m.Task.Kind); !ok || m.ID == "" {
			t.Fatalf("accepted %+v", m)
		}
		switch m.Task.Mode {
		case "run", "part", "merge":
		default:
			t.Fatalf("accepted mode %q", m.Task.Mode)
		}
		if k, _ := jobs.LookupKind(m.Task.Kind); k.NeedsWorker && m.Worker == nil {
			t.Fatalf("accepted a %s task without its worker", k.Name)
		}
		if w := m.Worker; w != nil && (w.Command == "" || w.Shipped && len(w.SHA256) != 64) {
			t.Fatalf("accepted worker %+v", w)
		}
		for _, f := range m.Files {
			if f.Shared != "" && (m.Shared == nil || !filepath.IsLocal(f.Shared)) {
				t.Fatalf("accepted shared file %q (token %v)", f.Shared, m.Shared)
			}
		}
		for _, in := range m.Task.Inputs {
			if f := m.Files[in.Path]; in.Path != "" && (f == nil || len(f.SHA256) != 64) {
				t.Fatalf("accepted a file input it does not carry: %+v", m)
			}
		}
	})
}

// Result messages too.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte{0x81, 0xa2, 'i', 'd', 0xa1, 'x'})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := dist.DecodeResult(data); err == nil && r.ID == "" {
			t.Fatal("a result without an id")
		}
	})
}

// A message nested a million levels deep (a megabyte of one-byte array
// headers, under the server's max_payload) is refused before it is
// decoded: decoding it took over a second and hundreds of MB.
func TestDecodeRefusesDeepNesting(t *testing.T) {
	// {"id": "x", "outcome": {"info": {"k": [[[...nil...]]]}}}
	deep := []byte{0x82, 0xa2, 'i', 'd', 0xa1, 'x', 0xa7, 'o', 'u', 't', 'c', 'o', 'm', 'e', 0x81, 0xa4, 'i', 'n', 'f', 'o', 0x81, 0xa1, 'k'}
	deep = append(deep, bytes.Repeat([]byte{0x91}, 1<<20)...)
	deep = append(deep, 0xc0)
	if _, err := dist.DecodeResult(deep); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("DecodeResult of a million nested arrays: %v, want refused for its nesting", err)
	}
	if _, err := dist.DecodeTask(deep); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("DecodeTask of a million nested arrays: %v, want refused for its nesting", err)
	}
}
