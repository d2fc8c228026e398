package pool

import (
	"os"
	"testing"

	"github.com/ppool/ppool/ipc"
)

// A worker's reader takes every frame already buffered in one run, which
// the pool handles under one lock, and what it read before the pipe broke
// comes with the reason, so that a worker's last answers count before its
// death.
func TestReadRun(t *testing.T) {
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b []byte
	for id := uint64(1); id <= 5; id++ {
		b = ipc.AppendResult(b, id, ipc.AppendInt(nil, int64(id)), nil, 0, false)
	}
	b = append(b, 0, 0, 0, 9, 1) // a frame cut short by the end of the pipe
	if _, err := wr.Write(b); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	w := &worker{in: reading{rd: ipc.NewReader(r, 256<<10, 0)}}
	msgs, reason := w.readRun()
	if len(msgs) != 5 {
		t.Fatalf("read %d frames in one run, want the 5 buffered", len(msgs))
	}
	for i, m := range msgs {
		if m.Kind != ipc.KindResult || m.ID != uint64(i+1) {
			t.Errorf("frame %d: %v %d", i, m.Kind, m.ID)
		}
	}
	if reason != "its pipe closed in the middle of a frame" {
		t.Errorf("reason %q", reason)
	}
}
