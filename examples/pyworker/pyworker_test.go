// Package pyworker_test runs a ppool pool whose workers are worker.py, a
// worker written in Python against docs/protocol.md.
package pyworker_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
	"go.uber.org/goleak"
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
