package dist_test

import (
	"testing"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// Task messages come from the network: any bytes decode to a checked task
// or an error, never a panic, and a checked task names a built-in kind
// and no file.
func FuzzDecodeTask(f *testing.F) {
	for _, m := range []*dist.TaskMessage{
		sleepTask("a", 5, false),
		{ID: "mm", Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Gen: &jobs.Generator{Kind: "identity", Shape: []int{2, 2}}}}}},
		{ID: "file", Task: jobs.Task{Kind: "matrix.inverse", Mode: "run", Inputs: map[string]jobs.Input{"a": {Path: "/etc/passwd"}}}},
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
		if _, ok := jobs.LookupKind(m.Task.Kind); !ok || m.ID == "" || m.Task.Mode != "run" {
			t.Fatalf("accepted %+v", m)
		}
		for _, in := range m.Task.Inputs {
			if in.Path != "" {
				t.Fatalf("accepted a file input: %+v", m)
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
