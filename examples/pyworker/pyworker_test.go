// Package pyworker_test runs a ppool pool whose workers are worker.py, a
// worker written in Python against docs/protocol.md.
package pyworker_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// The functions worker.py serves, typed on the Go side. Nothing is
// registered here: Remote only names them.
var (
	fib       = workerproc.Remote[int, int64]("py.fib")
	fibOfText = workerproc.Remote[string, int64]("py.fib") // wrong on purpose
	sum       = workerproc.Remote[[]float64, float64]("py.sum")
	wordcount = workerproc.Remote[string, map[string]int]("py.wordcount")
	sleep     = workerproc.Remote[float64, any](workerproc.BuiltinSleep)
)

const python = "/usr/bin/python3"

func newPool(t *testing.T, cfg pool.Config) (*pool.Pool, context.Context) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("worker.py runs on the system python, and %s is missing: %v", python, err)
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	worker, err := filepath.Abs("worker.py")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Command = []string{python, worker}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	p, err := pool.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, ctx
}

func goFib(n int) int64 {
	a, b := int64(0), int64(1)
	for range n {
		a, b = b, a+b
	}
	return a
}

func TestApply(t *testing.T) {
	p, ctx := newPool(t, pool.Config{})
	for _, n := range []int{0, 1, 10, 92} {
		if got, err := pool.Apply(ctx, p, fib, n); err != nil || got != goFib(n) {
			t.Errorf("py.fib(%d) = %d, %v; want %d", n, got, err, goFib(n))
		}
	}
	xs := make([]float64, 100_000)
	for i := range xs {
		xs[i] = 0.1
	}
	if got, err := pool.Apply(ctx, p, sum, xs); err != nil || math.Abs(got-10_000) > 1e-9 {
		t.Errorf("py.sum of 100000 × 0.1 = %v, %v", got, err)
	}
	counts, err := pool.Apply(ctx, p, wordcount, "The cat and the hat. THE end")
	if err != nil || counts["the"] != 3 || counts["cat"] != 1 || len(counts) != 5 {
		t.Errorf("py.wordcount = %v, %v", counts, err)
	}
}

func TestMap(t *testing.T) {
	p, ctx := newPool(t, pool.Config{})
	inputs := make([]int, 93)
	for i := range inputs {
		inputs[i] = i
	}
	got, err := pool.Map(ctx, p, fib, inputs, pool.ChunkSize(10)) // batch tasks of 10
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != goFib(i) {
			t.Errorf("Map: py.fib(%d) = %d, want %d", i, v, goFib(i))
		}
	}

	// One bad item fails alone; the others in its batch succeed.
	got, err = pool.Map(ctx, p, fib, []int{5, 6, -1, 7}, pool.ChunkSize(4))
	var me *pool.MapError
	if !errors.As(err, &me) || len(me.Failed) != 1 || me.Failed[0].Index != 2 {
		t.Fatalf("Map with py.fib(-1) in the batch: %v", err)
	}
	if got[0] != 5 || got[1] != 8 || got[3] != 13 {
		t.Errorf("Map results next to the failed item: %v", got)
	}
	var re *pool.RemoteError
	if !errors.As(err, &re) || re.Type != "ValueError" || !strings.Contains(re.Traceback, "in fib") {
		t.Errorf("the failed item's error: %#v", re)
	}
}

func TestPythonException(t *testing.T) {
	p, ctx := newPool(t, pool.Config{Workers: 1})
	_, err := pool.Apply(ctx, p, fib, -1)
	var re *pool.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("py.fib(-1): %v, want a *pool.RemoteError", err)
	}
	if re.Type != "ValueError" || !strings.Contains(re.Message, "between 0 and 92") {
		t.Errorf("py.fib(-1): type %q, message %q", re.Type, re.Message)
	}
	for _, want := range []string{"Traceback (most recent call last)", "worker.py", "in fib", "ValueError: py.fib(-1)"} {
		if !strings.Contains(re.Traceback, want) {
			t.Errorf("the traceback lacks %q:\n%s", want, re.Traceback)
		}
	}
	if _, err := pool.Apply(ctx, p, fibOfText, "ten"); !errors.Is(err, pool.ErrBadArguments) {
		t.Errorf("py.fib(\"ten\"): %v, want ErrBadArguments", err)
	}
	// The exceptions cost no worker.
	if got, err := pool.Apply(ctx, p, fib, 20); err != nil || got != 6765 {
		t.Errorf("py.fib(20) after the exceptions = %d, %v", got, err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers restarted", s.Restarts)
	}
}

func TestCancel(t *testing.T) {
	p, ctx := newPool(t, pool.Config{Workers: 1, KillGrace: 2 * time.Second})
	r := pool.ApplyAsync(ctx, p, sleep, 30)
	waitUntil(t, "the sleep is running", func() bool { return p.Stats().Busy == 1 })
	time.Sleep(50 * time.Millisecond) // let the worker start it
	start := time.Now()
	r.Cancel()
	if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ppool.sleep(30): %v", err)
	}
	// The worker answers the cancel well within KillGrace, and is not
	// killed: the next task runs on the same process.
	waitUntil(t, "the worker to answer the cancel", func() bool { return p.Stats().Busy == 0 })
	if took := time.Since(start); took > time.Second {
		t.Errorf("the worker took %v to answer a cancel", took)
	}
	if _, err := pool.Apply(ctx, p, sleep, 30, pool.Timeout(200*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ppool.sleep(30) with a 200ms timeout: %v", err)
	}
	if got, err := pool.Apply(ctx, p, fib, 30); err != nil || got != 832040 {
		t.Errorf("py.fib(30) after the cancel = %d, %v", got, err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers restarted: cancel and timeout should not cost a worker", s.Restarts)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Values as the wire carries them, for the tests of what msgpack allows
// and Python's types do not map one to one.
var (
	echoRaw     = workerproc.Remote[msgpack.RawMessage, msgpack.RawMessage](workerproc.BuiltinEcho)
	echoFloat32 = workerproc.Remote[[]float32, []float32](workerproc.BuiltinEcho)
	echoPairs   = workerproc.Remote[map[[2]int]string, map[[2]int]string](workerproc.BuiltinEcho)
)

// TestMapKeysOfAnyType: msgpack allows any value as a map key; a dict
// cannot have a list or a dict as a key, and worker.py once exited on such
// an argument, legal as it is.
func TestMapKeysOfAnyType(t *testing.T) {
	p, ctx := newPool(t, pool.Config{Workers: 1})
	pairs := map[[2]int]string{{1, 2}: "one two", {3, 4}: "three four"}
	got, err := pool.Apply(ctx, p, echoPairs, pairs)
	if err != nil || !maps.Equal(got, pairs) {
		t.Errorf("ppool.echo of a map keyed by arrays = %v, %v; want %v", got, err, pairs)
	}
	for _, raw := range []msgpack.RawMessage{
		{0x81, 0x81, 0x01, 0x02, 0x03},                  // {{1: 2}: 3}
		{0x81, 0x92, 0x81, 0xa1, 'k', 0x90, 0x01, 0xc0}, // {[{"k": []}, 1]: nil}
		{0x81, 0xd4, 0x05, 0x07, 0xc3},                  // {ext(5, 0x07): true}
	} {
		got, err := pool.Apply(ctx, p, echoRaw, raw)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ppool.echo of % x = % x, %v", []byte(raw), []byte(got), err)
		}
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers restarted", s.Restarts)
	}
}

// TestFloat32: a float32 goes back as a float32, which a caller whose
// result type is float32 can decode; a float64 would not decode.
func TestFloat32(t *testing.T) {
	p, ctx := newPool(t, pool.Config{Workers: 1})
	xs := []float32{1.5, -0.1, math.MaxFloat32, float32(math.Inf(1))}
	got, err := pool.Apply(ctx, p, echoFloat32, xs)
	if err != nil || !slices.Equal(got, xs) {
		t.Errorf("ppool.echo of %v = %v, %v", xs, got, err)
	}
}

// nested is n arrays of one element, each inside the last, around a 0:
// n levels of nesting.
func nested(n int) []byte {
	return append(bytes.Repeat([]byte{0x91}, n), 0x00)
}

// deepest returns the largest n for which ok(n) holds, ok being true up to
// some n and false after.
func deepest(t *testing.T, what string, ok func(n int) bool) int {
	t.Helper()
	for n := 1; n < 1000; n++ {
		if !ok(n) {
			if n == 1 {
				t.Fatalf("ipc refuses even one level in %s", what)
			}
			return n - 1
		}
	}
	t.Fatalf("ipc accepts 1000 levels in %s", what)
	return 0
}

// ipcArgDepth is how many levels of nesting ipc accepts in a task's
// argument, and ipcItemDepth in an item's value of a batch result:
// worker.py must draw the line in the same place.
func ipcDepths(t *testing.T) (arg, item int) {
	arg = deepest(t, "a task's argument", func(n int) bool {
		_, err := ipc.Decode(ipc.AppendTask(nil, 1, workerproc.BuiltinEcho, nested(n), 0, false)[4:])
		return err == nil
	})
	item = deepest(t, "an item of a batch result", func(n int) bool {
		v := ipc.AppendItem(ipc.AppendArrayHeader(nil, 1), nested(n), nil)
		m, err := ipc.Decode(ipc.AppendResult(nil, 1, v, nil, 0, true)[4:])
		if err == nil {
			_, err = ipc.DecodeBatch(m.Value)
		}
		return err == nil
	})
	return arg, item
}

// TestNestingLimits: worker.py accepts an argument, and sends a result, as
// deeply nested as ipc allows, and no deeper.
func TestNestingLimits(t *testing.T) {
	argDepth, itemDepth := ipcDepths(t)
	p, ctx := newPool(t, pool.Config{Workers: 1})
	// The pool sends an argument at most ipc.MaxArgDepth deep (so that a
	// batch, one level deeper, can carry it too), one less than ipc takes.
	sent := min(argDepth, ipc.MaxArgDepth)
	raw := msgpack.RawMessage(nested(sent))
	if got, err := pool.Apply(ctx, p, echoRaw, raw); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("ppool.echo of %d levels, as many as the pool sends in an argument: %v", sent, err)
	}
	// In a batch the items are one level down in the task, and two in the
	// result: an item as deep as ipc allows in a result comes back; one a
	// level deeper fails alone, as a result that cannot be sent.
	items := []msgpack.RawMessage{nested(itemDepth), nested(itemDepth + 1), nested(1)}
	got, err := pool.Map(ctx, p, echoRaw, items, pool.ChunkSize(len(items)))
	var me *pool.MapError
	if !errors.As(err, &me) || len(me.Failed) != 1 || me.Failed[0].Index != 1 {
		t.Fatalf("Map of ppool.echo on items of %d, %d and 1 levels: %v; want item 1 alone to fail", itemDepth, itemDepth+1, err)
	}
	var re *pool.RemoteError
	if !errors.As(me.Failed[0].Err, &re) || !strings.Contains(re.Message, "cannot be sent") {
		t.Errorf("item 1, over ipc's limit for a batch item's value: %v; want a *pool.RemoteError saying the result cannot be sent", me.Failed[0].Err)
	}
	if !bytes.Equal(got[0], items[0]) || !bytes.Equal(got[2], items[2]) {
		t.Errorf("Map: items 0 and 2 = % x, % x", []byte(got[0]), []byte(got[2]))
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers restarted: a value nested to ipc's limit is legal", s.Restarts)
	}
}

// TestNestingOverLimit: an argument one level deeper than ipc allows is a
// malformed frame, which worker.py refuses by exiting, as ipc would.
func TestNestingOverLimit(t *testing.T) {
	argDepth, _ := ipcDepths(t)
	if _, err := os.Stat(python); err != nil {
		t.Skipf("worker.py runs on the system python, and %s is missing: %v", python, err)
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer toW.Close()
	frR, frW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer frR.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(python, "worker.py")
	cmd.ExtraFiles = []*os.File{toR, frW}
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Start()
	toR.Close()
	frW.Close()
	if err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	r := ipc.NewReader(frR, 64<<10, ipc.DefaultMaxFrame)
	if m, err := r.ReadMsg(); err != nil || m.Kind != ipc.KindHello {
		t.Fatalf("first frame: %v, %v; want a hello", m.Kind, err)
	}
	// A task frame built by hand: ipc's encoders do not check depth.
	if _, err := toW.Write(ipc.AppendTask(nil, 1, workerproc.BuiltinEcho, nested(argDepth+1), 0, false)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) || ee.ExitCode() <= 0 {
			t.Errorf("worker.py sent an argument %d levels deep: %v; want a non-zero exit status", argDepth+1, waitErr)
		}
		if !strings.Contains(stderr.String(), "nesting deeper than") {
			t.Errorf("its stderr says %q; want the reason, nesting", stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("worker.py sent an argument %d levels deep, one more than ipc allows, is still running after 10 s", argDepth+1)
	}
	if m, err := r.ReadMsg(); err == nil {
		t.Errorf("it answered with a %s frame; want no answer", m.Kind)
	}
}
