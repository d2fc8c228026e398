package workerproctest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/ipc/codec"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
	"go.uber.org/goleak"
)

// nilAnswers are the answers nilWorker gives, chosen by the task's
// argument: what docs/protocol.md (section 3, result) says ppool makes of a
// nil where a key is optional.
var nilAnswers = [][]byte{
	{0x81, 0xa1, 'e', 0xc0},                  // 0: {"e": nil}
	{0x82, 0xa1, 'v', 0x07, 0xa1, 'e', 0xc0}, // 1: {"v": 7, "e": nil}
	// 2: {"e": {"type": "error", "msg": "m", "tb": nil}}
	{0x81, 0xa1, 'e', 0x83, 0xa4, 't', 'y', 'p', 'e', 0xa5, 'e', 'r', 'r', 'o', 'r', 0xa3, 'm', 's', 'g', 0xa1, 'm', 0xa2, 't', 'b', 0xc0},
	{0x80}, // 3: {}
}

// nilWorker answers each task, or each item of a batch, with
// nilAnswers[its argument], as a result's keys or as a batch item.
func nilWorker() int {
	in, out := os.NewFile(ipc.FromMasterFD, "in"), os.NewFile(ipc.ToMasterFD, "out")
	fns := []string{"nil", workerproc.BuiltinEcho, workerproc.BuiltinFail, workerproc.BuiltinPanic, workerproc.BuiltinSleep}
	if _, err := out.Write(ipc.AppendHello(nil, ipc.Versions, os.Getpid(), fns, "fake")); err != nil {
		return 1
	}
	r := ipc.NewReader(in, 64<<10, ipc.DefaultMaxFrame)
	for {
		m, err := r.ReadMsg()
		if err != nil {
			return 0
		}
		if m.Kind != ipc.KindTask {
			continue
		}
		var frame []byte
		if m.Batch {
			args, _ := ipc.SplitArray(m.Args)
			v := ipc.AppendArrayHeader(nil, len(args))
			for _, a := range args {
				var k int
				_ = codec.Decode(a, &k)
				v = append(v, nilAnswers[k]...)
			}
			frame = ipc.AppendResult(nil, m.ID, v, nil, 0, true)
		} else {
			// The answer's own keys, after "t" and "id", in one map.
			var k int
			_ = codec.Decode(m.Args, &k)
			ans := nilAnswers[k]
			body := append([]byte{0x82 + ans[0] - 0x80, 0xa1, 't', 0xa6, 'r', 'e', 's', 'u', 'l', 't', 0xa2, 'i', 'd'}, ipc.AppendInt(nil, int64(m.ID))...)
			body = append(body, ans[1:]...)
			frame = append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
		}
		if _, err := out.Write(frame); err != nil {
			return 1
		}
	}
}

// TestNilOptionalKeys pins what docs/protocol.md says of a nil where a key
// is optional: it reads as absent, in a result and in a batch item, and the
// worker is kept; an answer with no value fails its call or item alone.
func TestNilOptionalKeys(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pool.New(ctx, pool.Config{Command: []string{self(t)}, Env: append(goEnv, envFake+"=nil-optional-keys"), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	f := workerproc.Remote[int, int]("nil")

	check := func(what string, got int, err error, k int) {
		t.Helper()
		var re *pool.RemoteError
		switch k {
		case 0, 3: // no value at all
			if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "decoding the result: EOF") {
				t.Errorf("%s of % x: %v, %v; want a decoding error", what, nilAnswers[k], got, err)
			}
		case 1: // nil "e" is no error
			if err != nil || got != 7 {
				t.Errorf("%s of % x: %v, %v; want 7", what, nilAnswers[k], got, err)
			}
		case 2: // nil "tb" is no traceback
			if !errors.As(err, &re) || re.Type != "error" || re.Message != "m" || re.Traceback != "" {
				t.Errorf("%s of % x: %v; want a RemoteError without a traceback", what, nilAnswers[k], err)
			}
		}
	}
	for k := range nilAnswers {
		got, err := pool.Apply(ctx, p, f, k)
		check("a result", got, err, k)
	}
	inputs := []int{0, 1, 2, 3}
	got, err := pool.Map(ctx, p, f, inputs, pool.ChunkSize(len(inputs)))
	var me *pool.MapError
	if !errors.As(err, &me) {
		t.Fatalf("Map: %v", err)
	}
	itemErr := make(map[int]error)
	for _, ie := range me.Failed {
		itemErr[ie.Index] = ie.Err
	}
	for i, k := range inputs {
		check("a batch item", got[i], itemErr[i], k)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers restarted: a nil where a key is optional is no protocol error", s.Restarts)
	}
}
