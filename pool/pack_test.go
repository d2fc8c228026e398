package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
)

// backlog holds the pool's only worker on a gate task, queues calls behind
// it, and opens the gate: the queued calls then reach the worker in packs.
// It returns the results in call order.
func backlog(t *testing.T, ctx context.Context, p *pool.Pool, calls []mixedCall, opts ...pool.Option) []*pool.AsyncResult[int] {
	t.Helper()
	// Tiny calls first, so that the pool's average run time says "tiny".
	if _, err := pool.Map(ctx, p, square, make([]int, 64), pool.ChunkSize(1)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	gate := pool.ApplyAsync(ctx, p, mixed, mixedCall{Op: "gate", Marker: open})
	eventually(t, 5*time.Second, "the gate never started", func() bool { return p.Stats().Busy == 1 })
	rs := make([]*pool.AsyncResult[int], len(calls))
	for i, c := range calls {
		rs[i] = pool.ApplyAsync(ctx, p, mixed, c, opts...)
	}
	if err := writeAtomic(open, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Get(ctx); err == nil {
		t.Fatal("the gate succeeded; it should fail")
	}
	return rs
}

func squares(n int) []mixedCall {
	calls := make([]mixedCall, n)
	for i := range calls {
		calls[i] = mixedCall{Op: "square", X: i}
	}
	return calls
}

// TestPackOutcomes: tasks sent together in packs still each get their own
// value or error, naming their own task.
func TestPackOutcomes(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2})
	calls := squares(300)
	calls[17] = mixedCall{Op: "fail", X: 17}
	calls[200] = mixedCall{Op: "panic", X: 200}
	var sum, errs atomic.Int64
	rs := backlog(t, ctx, p, calls,
		pool.Callback(func(v int) { sum.Add(int64(v)) }),
		pool.ErrorCallback(func(error) { errs.Add(1) }))
	for i, r := range rs {
		v, err := r.Get(ctx)
		switch i {
		case 17, 200:
			var re *pool.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("call %d: %v, want a *RemoteError", i, err)
			}
			if re.Task != r.Info().ID || !strings.Contains(re.Message, fmt.Sprintf("%s %d", calls[i].Op, i)) {
				t.Errorf("call %d: error %+v, want task %d and its own message", i, re, r.Info().ID)
			}
		default:
			if err != nil || v != i*i {
				t.Fatalf("call %d: %v, %v; want %d", i, v, err, i*i)
			}
		}
	}
	// Callbacks run on the pool's callback goroutine, after Get can see
	// the result: wait for them.
	want := int64(0)
	for i := range 300 {
		if i != 17 && i != 200 {
			want += int64(i * i)
		}
	}
	eventually(t, 5*time.Second, "callbacks did not all run", func() bool { return sum.Load() == want && errs.Load() == 2 })
	s := p.Stats()
	if s.Packed < 100 {
		t.Fatalf("%d of 300 queued tiny tasks were sent in packs; want most", s.Packed)
	}
	if s.Failed != 3 || s.Done < 298 { // the gate fails too
		t.Errorf("stats: %d done, %d failed; want 298+ done (and the warm-up), 3 failed", s.Done, s.Failed)
	}
	t.Logf("%d of 300 tasks sent in packs", s.Packed)
}

// TestPackCrash: a task that kills its worker while in a pack fails alone,
// with its own *WorkerExitError; the others in its pack run again and
// succeed, without being charged a retry.
func TestPackCrash(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2})
	calls := squares(300)
	calls[150] = mixedCall{Op: "crash"}
	rs := backlog(t, ctx, p, calls, pool.Retries(0))
	for i, r := range rs {
		v, err := r.Get(ctx)
		if i == 150 {
			var we *pool.WorkerExitError
			if !errors.As(err, &we) || we.Task != r.Info().ID {
				t.Fatalf("the crashing call: %v, want its own *WorkerExitError", err)
			}
			continue
		}
		if err != nil || v != i*i {
			t.Fatalf("call %d: %v, %v; want %d", i, v, err, i*i)
		}
		if a := r.Info().Attempts; a != 1 {
			t.Errorf("call %d: %d attempts, want 1", i, a)
		}
	}
	if s := p.Stats(); s.Packed == 0 {
		t.Fatal("nothing was packed: the test tests nothing")
	}
	fullSize(t, p, 1)
}

// TestPackCancel: cancelling a task that is running in a pack stops it
// (its worker is killed after KillGrace if it does not stop); the others
// sent with it run again and succeed.
func TestPackCancel(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2, KillGrace: 100 * time.Millisecond})
	marker := filepath.Join(t.TempDir(), "hanging")
	calls := squares(300)
	calls[150] = mixedCall{Op: "hang", Marker: marker}
	rs := backlog(t, ctx, p, calls)
	waitForPID(t, marker)
	rs[150].Cancel()
	for i, r := range rs {
		v, err := r.Get(ctx)
		if i == 150 {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("the cancelled call: %v", err)
			}
			continue
		}
		if err != nil || v != i*i {
			t.Fatalf("call %d: %v, %v; want %d", i, v, err, i*i)
		}
	}
	if s := p.Stats(); s.Packed == 0 {
		t.Fatal("nothing was packed: the test tests nothing")
	}
	eventually(t, 5*time.Second, "the hung worker was not replaced", func() bool { return p.Stats().Restarts == 1 })
	fullSize(t, p, 1)
}

// TestPackContext: when a context ends, its tasks fail, packed or not, and
// the tasks of other contexts sent in the same packs succeed.
func TestPackContext(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2, KillGrace: 100 * time.Millisecond})
	marker := filepath.Join(t.TempDir(), "hanging")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Warm up and hold the worker as backlog does, but submit under two
	// contexts.
	if _, err := pool.Map(ctx, p, square, make([]int, 64), pool.ChunkSize(1)); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "open")
	gate := pool.ApplyAsync(ctx, p, mixed, mixedCall{Op: "gate", Marker: open})
	eventually(t, 5*time.Second, "the gate never started", func() bool { return p.Stats().Busy == 1 })
	var mine, others []*pool.AsyncResult[int]
	for i := range 300 {
		c := mixedCall{Op: "square", X: i}
		if i == 100 {
			c = mixedCall{Op: "hang", Marker: marker}
		}
		if i%2 == 0 {
			mine = append(mine, pool.ApplyAsync(cctx, p, mixed, c))
		} else {
			others = append(others, pool.ApplyAsync(ctx, p, mixed, c))
		}
	}
	if err := writeAtomic(open, ""); err != nil {
		t.Fatal(err)
	}
	gate.Get(ctx)
	waitForPID(t, marker) // a packed task of cctx is running
	cancel()
	for i, r := range mine {
		if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) && !(err == nil && i < 50) {
			t.Fatalf("task %d of the cancelled context: %v", 2*i, err)
		}
	}
	for i, r := range others {
		if v, err := r.Get(ctx); err != nil || v != (2*i+1)*(2*i+1) {
			t.Fatalf("task %d of another context: %v, %v", 2*i+1, v, err)
		}
	}
	if s := p.Stats(); s.Packed == 0 {
		t.Fatal("nothing was packed: the test tests nothing")
	}
	_ = os.Remove(marker)
}

// TestPackTimeout: a pack that runs past its tasks' timeout is undone; its
// tasks run again alone, and only the one that hangs times out.
func TestPackTimeout(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2, KillGrace: 50 * time.Millisecond})
	marker := filepath.Join(t.TempDir(), "hanging")
	calls := squares(300)
	calls[150] = mixedCall{Op: "hang", Marker: marker}
	// A second: each square must finish within it when it runs alone, on
	// however busy a machine.
	rs := backlog(t, ctx, p, calls, pool.Timeout(time.Second), pool.Retries(0))
	for i, r := range rs {
		v, err := r.Get(ctx)
		if i == 150 {
			var te *pool.TimeoutError
			if !errors.As(err, &te) || te.Task != r.Info().ID {
				t.Fatalf("the hanging call: %v, want its own *TimeoutError", err)
			}
			continue
		}
		if err != nil || v != i*i {
			t.Fatalf("call %d: %v, %v; want %d", i, v, err, i*i)
		}
	}
	if s := p.Stats(); s.Packed == 0 {
		t.Fatal("nothing was packed: the test tests nothing")
	}
}

// TestCrashBlamesRunningTask: a worker that crashes fails the task it was
// running, never one it had finished before: a worker writes its answers
// before it starts the next task.
func TestCrashBlamesRunningTask(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	for i := range 10 {
		done := pool.ApplyAsync(ctx, p, square, i)
		crashed := pool.ApplyAsync(ctx, p, crash, struct{}{}, pool.Retries(0))
		if v, err := done.Get(ctx); err != nil || v != i*i {
			t.Fatalf("round %d: the task before the crash: %v, %v", i, v, err)
		}
		var we *pool.WorkerExitError
		if _, err := crashed.Get(ctx); !errors.As(err, &we) {
			t.Fatalf("round %d: the crashing task: %v", i, err)
		}
	}
}

// TestMapItemTimeout: in a Map with a timeout, an item that runs past it
// fails with a timeout of its own, whether it honours its context or not,
// and the items sent in the same chunk succeed.
func TestMapItemTimeout(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, KillGrace: 100 * time.Millisecond})
	for _, slowOp := range []string{"sleep", "hang"} {
		calls := squares(8)
		marker := filepath.Join(t.TempDir(), "hanging")
		calls[5] = mixedCall{Op: slowOp, Marker: marker}
		// 250 ms: each square must finish within it when it runs alone,
		// on a busy machine too.
		out, err := pool.Map(ctx, p, mixed, calls, pool.ChunkSize(8), pool.Timeout(250*time.Millisecond), pool.Retries(0))
		var me *pool.MapError
		if !errors.As(err, &me) || len(me.Failed) != 1 || me.Failed[0].Index != 5 {
			t.Fatalf("%s: Map returned %v; want item 5 alone to fail", slowOp, err)
		}
		if !errors.Is(me.Failed[0].Err, context.DeadlineExceeded) {
			t.Errorf("%s: item 5 failed with %v; want a timeout", slowOp, me.Failed[0].Err)
		}
		for i, v := range out {
			if i != 5 && v != i*i {
				t.Errorf("%s: item %d = %d, want %d", slowOp, i, v, i*i)
			}
		}
	}
}
