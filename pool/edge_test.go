package pool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// depthOf returns how deeply its argument nests arrays and maps.
var depthOf = workerproc.Register("depthOf", func(ctx context.Context, v any) (int, error) { return depth(v), nil })

func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// nested returns 1 wrapped in n arrays: its depth is n.
func nested(n int) any {
	var v any = 1
	for range n {
		v = []any{v}
	}
	return v
}

// TestDeepArguments: an argument nested deeper than any frame can carry
// fails its own call with ErrBadArguments before anything is sent; the
// other calls, the other items of the same Map among them, succeed, and no
// worker dies of a frame the master sent.
func TestDeepArguments(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	limit := ipc.MaxDepth - 1 // a batch's array takes one level
	depths := []int{0, 1, limit - 1, limit, limit + 1, ipc.MaxDepth, ipc.MaxDepth + 1, 2 * ipc.MaxDepth, 3}
	var inputs []any
	for _, d := range depths {
		inputs = append(inputs, nested(d))
	}
	tooDeep := func(d int) bool { return d > limit }
	checkErr := func(what string, d int, err error) {
		t.Helper()
		switch {
		case tooDeep(d) && !errors.Is(err, pool.ErrBadArguments):
			t.Errorf("%s, depth %d: %v; want ErrBadArguments", what, d, err)
		case tooDeep(d) && !strings.Contains(err.Error(), "depthOf"):
			t.Errorf("%s, depth %d: %q does not name the function", what, d, err)
		case !tooDeep(d) && err != nil:
			t.Errorf("%s, depth %d: %v", what, d, err)
		}
	}

	for _, d := range depths {
		v, err := pool.Apply(ctx, p, depthOf, nested(d))
		checkErr("Apply", d, err)
		if err == nil && v != d {
			t.Errorf("Apply, depth %d: the worker saw %d", d, v)
		}
		r := pool.ApplyAsync(ctx, p, depthOf, nested(d))
		v, err = r.Get(ctx)
		checkErr("ApplyAsync", d, err)
		if err == nil && v != d {
			t.Errorf("ApplyAsync, depth %d: the worker saw %d", d, v)
		}
	}

	// All in one chunk, and one item per chunk.
	for _, size := range []int{len(inputs), 1} {
		what := fmt.Sprintf("Map, chunks of %d", size)
		got, err := pool.Map(ctx, p, depthOf, inputs, pool.ChunkSize(size))
		var me *pool.MapError
		if !errors.As(err, &me) {
			t.Fatalf("%s: %v; want a *MapError", what, err)
		}
		var failed []int
		for _, f := range me.Failed {
			failed = append(failed, f.Index)
			checkErr(what, depths[f.Index], f.Err)
			if !strings.Contains(f.Error(), fmt.Sprintf("item %d", f.Index)) {
				t.Errorf("%s: %q does not name item %d", what, f, f.Index)
			}
		}
		for i, d := range depths {
			if tooDeep(d) != slices.Contains(failed, i) {
				t.Errorf("%s: item %d (depth %d) failed: %v", what, i, d, slices.Contains(failed, i))
			}
			if !tooDeep(d) && got[i] != d {
				t.Errorf("%s: item %d: the worker saw depth %d, want %d", what, i, got[i], d)
			}
		}

		what = fmt.Sprintf("Imap, chunks of %d", size)
		i := 0
		for v, err := range pool.Imap(ctx, p, depthOf, slices.Values(inputs), pool.ChunkSize(size)) {
			checkErr(what, depths[i], err)
			if err == nil && v != depths[i] {
				t.Errorf("%s: item %d: the worker saw depth %d, want %d", what, i, v, depths[i])
			}
			i++
		}
		if i != len(inputs) {
			t.Errorf("%s: %d results for %d inputs", what, i, len(inputs))
		}
	}

	// Tiny calls queued together travel in packs: one more array.
	var rs []*pool.AsyncResult[int]
	for range 200 {
		rs = append(rs, pool.ApplyAsync(ctx, p, depthOf, nested(limit)))
	}
	for _, r := range rs {
		if v, err := r.Get(ctx); err != nil || v != limit {
			t.Fatalf("ApplyAsync burst, depth %d: %d, %v", limit, v, err)
		}
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d workers died: the master sent a frame deeper than the protocol allows", s.Restarts)
	}
}

// TestDeepInitializer: an initializer's argument no frame can carry fails
// New at once, naming it, rather than killing every worker at start.
func TestDeepInitializer(t *testing.T) {
	bad := workerproc.Call{Function: "initOnce", Args: append(bytes.Repeat([]byte{0x91}, ipc.MaxDepth+1), 1)}
	p, err := pool.New(testCtx(t), pool.Config{Workers: 1, Initializer: &bad})
	if err == nil {
		p.Terminate()
	}
	if !errors.Is(err, pool.ErrBadArguments) || !strings.Contains(err.Error(), "initOnce") {
		t.Fatalf("New with an initializer argument nested %d deep: %v", ipc.MaxDepth+1, err)
	}
}

// TestCloseFromCallback: Close and Terminate called from a completion
// callback return, rather than wait forever for the callback they run in;
// so does a Close with a deadline. A callback may call into the pool.
func TestCloseFromCallback(t *testing.T) {
	for _, how := range []string{"Close", "Close with a deadline", "Terminate"} {
		t.Run(how, func(t *testing.T) {
			ctx := testCtx(t)
			p, err := pool.New(ctx, pool.Config{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			returned := make(chan error, 1)
			pool.ApplyAsync(ctx, p, square, 3, pool.Callback(func(int) {
				switch how {
				case "Close":
					returned <- p.Close(context.Background())
				case "Close with a deadline":
					short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					returned <- p.Close(short)
				case "Terminate":
					p.Terminate()
					returned <- nil
				}
			}))
			select {
			case err := <-returned:
				if err != nil {
					t.Errorf("%s from a callback: %v", how, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s from a callback has not returned after 10 s", how)
			}
			if _, err := pool.Apply(ctx, p, square, 2); !errors.Is(err, pool.ErrPoolClosed) {
				t.Errorf("Apply after %s: %v; want ErrPoolClosed", how, err)
			}
			// Called again from outside, it returns at once.
			if err := p.Close(ctx); err != nil {
				t.Errorf("Close after %s from a callback: %v", how, err)
			}
		})
	}
}

// TestCallbackCallsThePool: a callback may call Apply, Map and ApplyAsync
// on its own pool and wait for their results.
func TestCallbackCallsThePool(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	got := make(chan string, 1)
	pool.ApplyAsync(ctx, p, square, 3, pool.Callback(func(v int) {
		a, err := pool.Apply(ctx, p, square, v)
		if err != nil {
			got <- err.Error()
			return
		}
		m, err := pool.Map(ctx, p, square, []int{a, 2})
		if err != nil {
			got <- err.Error()
			return
		}
		inner := make(chan int, 1)
		pool.ApplyAsync(ctx, p, square, m[1], pool.Callback(func(v int) { inner <- v }))
		r, err := pool.ApplyAsync(ctx, p, square, 5).Get(ctx)
		got <- fmt.Sprint(a, m, r, err)
		// The inner callback runs after this one returns.
		go func() { got <- fmt.Sprint(<-inner) }()
	}))
	for _, want := range []string{"81 [6561 4] 25 <nil>", "16"} {
		select {
		case s := <-got:
			if s != want {
				t.Errorf("callback saw %q, want %q", s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("callback calling the pool: no answer after 10 s (want %q)", want)
		}
	}
}

// TestOversizedArgumentRefusedEarly: an argument over the frame limit is
// refused before it is encoded whole. A []byte or string is measured, not
// copied; any other value is encoded only up to the limit, so what the
// refused call allocates is bounded by the limit, not by the argument.
func TestOversizedArgumentRefusedEarly(t *testing.T) {
	ctx := testCtx(t)
	const limit = 1 << 20
	p := newPool(t, pool.Config{Workers: 1, MaxFrame: limit})
	big := make([]byte, 16*limit)
	text := string(big)
	ints := make([]int, 4*limit) // 5 bytes each: 20 MiB encoded
	for i := range ints {
		ints[i] = 1 << 20
	}
	byKey := map[string]string{"a": text}
	allocated := func(f func() error) (uint64, error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, err
	}
	cases := []struct {
		what  string
		call  func() error
		bound uint64 // what the call may allocate: a []byte or string is measured, not copied; other values cost up to about twice the limit, the encoder's buffer doubling on the way
	}{
		{"ApplyAsync []byte", func() error { _, err := pool.ApplyAsync(ctx, p, echo, big).Get(ctx); return err }, 64 << 10},
		{"ApplyAsync string", func() error { _, err := pool.ApplyAsync(ctx, p, say, text).Get(ctx); return err }, 64 << 10},
		{"Apply []byte", func() error { _, err := pool.Apply(ctx, p, echo, big); return err }, 64 << 10},
		{"Apply string", func() error { _, err := pool.Apply(ctx, p, say, text); return err }, 64 << 10},
		{"ApplyAsync []int", func() error { _, err := pool.ApplyAsync(ctx, p, depthOf, any(ints)).Get(ctx); return err }, 8 * limit},
		{"Apply map", func() error { _, err := pool.Apply(ctx, p, depthOf, any(byKey)); return err }, 8 * limit},
		{"Map []int", func() error { _, err := pool.Map(ctx, p, depthOf, []any{1, ints}); return err }, 8 * limit},
		{"Map string", func() error { _, err := pool.Map(ctx, p, say, []string{"x", text}); return err }, 8 * limit},
	}
	for _, c := range cases {
		n, err := allocated(c.call)
		t.Logf("%s: %d bytes allocated by the refused call", c.what, n)
		if err == nil || !strings.Contains(err.Error(), "over the frame limit of 1048576") {
			t.Errorf("%s over the frame limit: %v", c.what, err)
		}
		if n > c.bound {
			t.Errorf("%s over the frame limit: the refused call allocated %d bytes, want at most %d", c.what, n, c.bound)
		}
	}
	if v, err := pool.Apply(ctx, p, echo, []byte("small")); err != nil || string(v) != "small" {
		t.Fatalf("after: %q, %v", v, err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("restarts = %d, want 0", s.Restarts)
	}
}

// TestStatsCountFailedDecodes: a call whose result does not decode into
// the caller's type counts as failed, not done, whatever the kind of
// call; so does a Map item whose function failed.
func TestStatsCountFailedDecodes(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	echoAsInt := workerprocRemote[[]byte, int]("echo") // answers a bin, not an int
	steps := []struct {
		what         string
		call         func() error
		done, failed uint64
	}{
		{"Apply", func() error { _, err := pool.Apply(ctx, p, echoAsInt, []byte("x")); return err }, 0, 1},
		{"ApplyAsync", func() error { _, err := pool.ApplyAsync(ctx, p, echoAsInt, []byte("x")).Get(ctx); return err }, 0, 1},
		{"Map", func() error {
			_, err := pool.Map(ctx, p, echoAsInt, [][]byte{{1}, {2}, {3}}, pool.ChunkSize(3))
			return err
		}, 1, 3}, // Done counts the chunk
		{"Imap", func() error {
			var errs []error
			for _, err := range pool.Imap(ctx, p, echoAsInt, slices.Values([][]byte{{1}, {2}}), pool.ChunkSize(2)) {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}, 1, 2},
		{"Map of failing calls", func() error {
			_, err := pool.Map(ctx, p, fail, []string{"a", "b", "c"}, pool.ChunkSize(3))
			return err
		}, 1, 3},
	}
	for _, s := range steps {
		before := p.Stats()
		if err := s.call(); err == nil {
			t.Fatalf("%s: no error", s.what)
		}
		after := p.Stats()
		if done, failed := after.Done-before.Done, after.Failed-before.Failed; done != s.done || failed != s.failed {
			t.Errorf("%s: Stats counted %d done, %d failed; want %d done, %d failed", s.what, done, failed, s.done, s.failed)
		}
	}
}

// TestUnknownFunctionHint: the error for a function the workers do not
// serve gives the hint that fits the worker: the Go hint about package
// init only for workers that re-execute this program.
func TestUnknownFunctionHint(t *testing.T) {
	ctx := testCtx(t)
	nosuch := workerprocRemote[int, int]("nosuch")
	cases := []struct {
		what      string
		cfg       pool.Config
		want, not []string
	}{
		{"built-in", pool.Config{Workers: 1}, []string{"package init", "this program"}, nil},
		{"Go worker binary", pool.Config{Workers: 1, Command: []string{os.Args[0]}, Env: []string{"PPOOL_WORKER=1"}},
			[]string{os.Args[0], "register", "go1"}, []string{"this program", "this process"}},
		{"Python worker", pool.Config{Workers: 1, Command: []string{"/usr/bin/python3", "../examples/pyworker/worker.py"}},
			[]string{"worker.py", "python", "ppool.echo"}, []string{"package init", "this process", "Go"}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if c.cfg.Command != nil {
				if _, err := os.Stat(c.cfg.Command[0]); err != nil {
					t.Skip(err)
				}
			}
			p := newPool(t, c.cfg)
			_, err := pool.Apply(ctx, p, nosuch, 1)
			if !errors.Is(err, pool.ErrUnknownFunction) {
				t.Fatalf("Apply of an unknown function: %v; want ErrUnknownFunction", err)
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("%q says %q", err, n)
				}
			}
		})
	}
}

// TestCloseDeadlineWithAStuckCallback: a callback that does not return
// cannot hold Close past its deadline: Close kills the workers and returns
// the context's error; the pool finishes stopping once the callback
// returns.
func TestCloseDeadlineWithAStuckCallback(t *testing.T) {
	ctx := testCtx(t)
	p, err := pool.New(ctx, pool.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	pool.ApplyAsync(ctx, p, square, 3, pool.Callback(func(int) {
		close(entered)
		<-release
	}))
	<-entered
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- p.Close(short) }()
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close past its deadline: %v; want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Close with a 200 ms deadline has not returned after 10 s, a callback being stuck")
	}
	if s := p.Stats(); s.Workers != 0 {
		t.Errorf("%d workers left after Close gave up", s.Workers)
	}
	close(release)
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close once the callback returned: %v", err)
	}
}

// nestedResult returns 1 wrapped in n arrays.
var nestedResult = workerproc.Register("nestedResult", func(ctx context.Context, n int) (any, error) { return nested(n), nil })

// TestDeepResults: a Go worker whose function returns a value nested
// deeper than the protocol allows answers an error for that call or item,
// rather than send a frame the master must refuse (which killed the worker
// and blamed the task for a crash).
func TestDeepResults(t *testing.T) {
	p := newPool(t, pool.Config{Workers: 1})
	ctx := context.Background()
	if v, err := pool.Apply(ctx, p, nestedResult, ipc.MaxDepth); err != nil || depth(v) != ipc.MaxDepth {
		t.Fatalf("depth %d: %v, depth %d", ipc.MaxDepth, err, depth(v))
	}
	_, err := pool.Apply(ctx, p, nestedResult, ipc.MaxDepth+1)
	var re *pool.RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "cannot be sent") {
		t.Fatalf("depth %d: %v, want a RemoteError saying it cannot be sent", ipc.MaxDepth+1, err)
	}
	// In a Map chunk an item's value may nest two levels less.
	_, err = pool.Map(ctx, p, nestedResult, []int{1, ipc.MaxDepth - 1, 2}, pool.ChunkSize(3))
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "cannot be sent") {
		t.Fatalf("Map: %v, want the deep item's RemoteError", err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("%d restarts: a worker died", s.Restarts)
	}
}

// TestCancelSplitChunk: a Map chunk split into single items (a crash in
// it) and then cancelled by its context cancels the items, which answer
// for the chunk: none keeps running, none is reported twice, and the pool
// drains.
func TestCancelSplitChunk(t *testing.T) {
	p, err := pool.New(context.Background(), pool.Config{Workers: 1, KillGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	marker := filepath.Join(t.TempDir(), "hanging")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := pool.Map(ctx, p, mixed, []mixedCall{{Op: "crash"}, {Op: "hang", Marker: marker}, {Op: "square", X: 2}}, pool.ChunkSize(3))
		done <- err
	}()
	waitForPID(t, marker) // the chunk was split and its second item runs alone
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Map: %v, want it cancelled", err)
	}
	closeCtx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	if err := p.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v: a split item kept running after its chunk was cancelled", err)
	}
}
