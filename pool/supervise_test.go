package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// Functions for the supervision tests.
var (
	// exitNow ends its worker with os.Exit, as a library that gives up on
	// bad input might.
	exitNow = workerproc.Register("exitNow", func(ctx context.Context, code int) (int, error) {
		fmt.Fprintln(os.Stderr, "exiting on purpose")
		os.Exit(code)
		return 0, nil
	})
	// refuseIfExists, as an initializer, fails once the file it names exists.
	refuseIfExists = workerproc.Register("refuseIfExists", func(ctx context.Context, path string) (int, error) {
		if _, err := os.Stat(path); err == nil {
			return 0, errors.New("the initializer found " + path)
		}
		return 0, nil
	})
)

// hookHandler is a slog.Handler that hands every record to a function, on
// the goroutine that logged it.
type hookHandler struct{ f func(slog.Record) }

func (h hookHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h hookHandler) Handle(_ context.Context, r slog.Record) error { h.f(r); return nil }
func (h hookHandler) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h hookHandler) WithGroup(string) slog.Handler                 { return h }

// copyOfSelf copies the test binary into a temporary folder, so that a test
// can take it away from a running pool.
func copyOfSelf(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "worker")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// getWithin waits for r at most d: a call that never ends is a failure of
// the test, not a hang of the suite.
func getWithin[R any](t *testing.T, r *pool.AsyncResult[R], d time.Duration) (R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		var zero R
		t.Fatalf("call still waiting after %v", d)
		return zero, err
	}
	return r.Get(ctx)
}

// TestReplacementCannotStart: when the worker binary is gone or no longer
// executable, replacements fail to start; each failure counts toward the
// crash loop, and the calls waiting end in ErrCrashLoop instead of waiting
// forever for a worker.
func TestReplacementCannotStart(t *testing.T) {
	cases := map[string]struct {
		breakIt func(path string) error
		want    string
	}{
		"removed":        {os.Remove, "no such file"},
		"not executable": {func(path string) error { return os.Chmod(path, 0o644) }, "permission denied"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			bin := copyOfSelf(t)
			p := newPool(t, pool.Config{Workers: 1, Command: []string{bin}, Env: []string{workerproc.EnvWorker + "=1"}})
			if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
				t.Fatalf("square(3) = %d, %v", v, err)
			}
			if err := c.breakIt(bin); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(0)); !errors.As(err, new(*pool.WorkerExitError)) {
				t.Fatalf("crash: %v, want *WorkerExitError", err)
			}
			var rs []*pool.AsyncResult[int]
			for i := range 3 {
				rs = append(rs, pool.ApplyAsync(ctx, p, square, i))
			}
			for i, r := range rs {
				_, err := getWithin(t, r, 10*time.Second)
				if !errors.Is(err, pool.ErrCrashLoop) {
					t.Fatalf("call %d: %v, want ErrCrashLoop", i, err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("call %d: %v does not say %q", i, err, c.want)
				}
			}
		})
	}
}

// TestReplacementStartRecovers: a binary that cannot be executed for a
// moment costs a few failed starts, retried with backoff; once it can be
// executed again the pool is back to full size and serves calls.
func TestReplacementStartRecovers(t *testing.T) {
	ctx := testCtx(t)
	bin := copyOfSelf(t)
	var failures atomic.Int32
	restore := func(r slog.Record) {
		if r.Message == "worker failed to start" && failures.Add(1) == 2 {
			if err := os.Chmod(bin, 0o755); err != nil {
				t.Error(err)
			}
		}
	}
	p := newPool(t, pool.Config{
		Workers: 1, Command: []string{bin}, Env: []string{workerproc.EnvWorker + "=1"},
		Logger: slog.New(hookHandler{restore}),
	})
	if err := os.Chmod(bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(0)); !errors.As(err, new(*pool.WorkerExitError)) {
		t.Fatalf("crash: %v, want *WorkerExitError", err)
	}
	r := pool.ApplyAsync(ctx, p, square, 7)
	if v, err := getWithin(t, r, 10*time.Second); v != 49 || err != nil {
		t.Fatalf("square(7) after the binary came back: %d, %v", v, err)
	}
	if n := failures.Load(); n != 2 {
		t.Errorf("%d failed starts logged, want 2", n)
	}
	fullSize(t, p, 1)
}

// TestTaskDeathsAreTheTasksFault: a function that kills its worker fails
// its own call, charged to the call's retries, however often it is called;
// it never trips the crash loop, and calls beside and after it succeed.
func TestTaskDeathsAreTheTasksFault(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	for i := range 10 {
		r := pool.ApplyAsync(ctx, p, exitNow, 3, pool.Retries(1))
		_, err := getWithin(t, r, 10*time.Second)
		var we *pool.WorkerExitError
		if !errors.As(err, &we) || we.ExitCode != 3 {
			t.Fatalf("exitNow, call %d: %v, want *WorkerExitError with status 3", i, err)
		}
		if a := r.Info().Attempts; a != 2 {
			t.Errorf("exitNow, call %d: %d attempts, want 2", i, a)
		}
	}
	// Two bad items among twenty good ones, each with two retries: only
	// the bad ones fail.
	items := make([]mixedCall, 22)
	for i := range items {
		items[i] = mixedCall{Op: "square", X: i}
	}
	items[5].Op, items[17].Op = "crash", "crash"
	out, err := pool.Map(ctx, p, mixed, items, pool.Retries(2), pool.ChunkSize(4))
	var me *pool.MapError
	if !errors.As(err, &me) || len(me.Failed) != 2 || me.Failed[0].Index != 5 || me.Failed[1].Index != 17 {
		t.Fatalf("Map with two crashing items: %v, want items 5 and 17 failed", err)
	}
	for _, f := range me.Failed {
		if !errors.As(f.Err, new(*pool.WorkerExitError)) {
			t.Errorf("item %d: %v, want *WorkerExitError", f.Index, f.Err)
		}
	}
	for i, v := range out {
		if i != 5 && i != 17 && v != i*i {
			t.Errorf("item %d = %d, want %d", i, v, i*i)
		}
	}
	if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
		t.Fatalf("square(3) after the crashes: %d, %v", v, err)
	}
}

// TestInitializerFailsInReplacements: replacement workers whose initializer
// fails never become ready; they count toward the crash loop, and the call
// waiting for them ends in ErrCrashLoop with the initializer's error.
func TestInitializerFailsInReplacements(t *testing.T) {
	ctx := testCtx(t)
	marker := filepath.Join(t.TempDir(), "refuse")
	init := refuseIfExists.With(marker)
	p := newPool(t, pool.Config{Workers: 1, Initializer: &init})
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(0)); !errors.As(err, new(*pool.WorkerExitError)) {
		t.Fatalf("crash: %v, want *WorkerExitError", err)
	}
	_, err := getWithin(t, pool.ApplyAsync(ctx, p, square, 2), 10*time.Second)
	if !errors.Is(err, pool.ErrCrashLoop) || !strings.Contains(err.Error(), "the initializer found") {
		t.Fatalf("call after the initializer broke: %v, want ErrCrashLoop with the initializer's error", err)
	}
}

// TestCrashLoopRecovers: a pool broken by a crash loop starts a probe worker
// after a backoff; once workers start again, the pool runs again at full
// size.
func TestCrashLoopRecovers(t *testing.T) {
	ctx := testCtx(t)
	marker := filepath.Join(t.TempDir(), "die")
	p := newPool(t, pool.Config{Workers: 2, Env: []string{"PPOOL_TEST_DIE_AT_START=" + marker}})
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(0)); !errors.As(err, new(*pool.WorkerExitError)) {
		t.Fatalf("crash: %v, want *WorkerExitError", err)
	}
	// The other worker serves calls until its partner's replacements have
	// died at start CrashLoopLimit times.
	eventually(t, 10*time.Second, "no crash loop", func() bool {
		_, err := pool.Apply(ctx, p, square, 2)
		return errors.Is(err, pool.ErrCrashLoop)
	})
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	var v int
	var err error
	eventually(t, 15*time.Second, "the pool did not recover", func() bool {
		v, err = pool.Apply(ctx, p, square, 5)
		return !errors.Is(err, pool.ErrCrashLoop)
	})
	if v != 25 || err != nil {
		t.Fatalf("square(5) after recovery: %d, %v", v, err)
	}
	fullSize(t, p, 2)
}

// TestCloseCountsNothing: workers that Close kills, including a replacement
// started while Close runs, are not deaths at start: nothing is counted
// toward the crash loop.
func TestCloseCountsNothing(t *testing.T) {
	ctx := testCtx(t)
	var (
		mu      sync.Mutex
		counted []string
		target  atomic.Pointer[pool.Pool]
		closed  = make(chan error, 1)
	)
	hook := func(r slog.Record) {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "streak" {
				mu.Lock()
				counted = append(counted, r.Message)
				mu.Unlock()
			}
			return true
		})
		// Close as soon as a worker's death is seen: its replacement is
		// being started meanwhile.
		if r.Message == "worker died" {
			if p := target.Swap(nil); p != nil {
				go func() { closed <- p.Close(ctx) }()
			}
		}
	}
	p, err := pool.New(ctx, pool.Config{Workers: 1, Logger: slog.New(hookHandler{hook})})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
		t.Fatalf("square(3) = %d, %v", v, err)
	}
	target.Store(p)
	if _, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(0)); !errors.As(err, new(*pool.WorkerExitError)) {
		t.Fatalf("crash: %v, want *WorkerExitError", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counted) > 0 {
		t.Errorf("deaths counted toward the crash loop: %q", counted)
	}
}

// TestStartErrorReason: a worker killed for a protocol error before its
// hello gets a *StartError saying so, not that it exited; one that exits
// before its hello gets that.
func TestStartErrorReason(t *testing.T) {
	hello := ipc.AppendHello(nil, ipc.Versions, 1, []string{"square"}, "fake")
	// A hello whose last string is cut short, framed with its true length.
	cut := hello[4 : len(hello)-2]
	malformed := append([]byte{0, 0, 0, byte(len(cut))}, cut...)
	cases := map[string]struct {
		bytes []byte // what the fake writes to fd 4
		exit  bool   // then exits (else it waits to be killed)
		want  string
	}{
		"malformed hello":   {bytes: malformed, want: "protocol error: malformed frame"},
		"result first":      {bytes: ipc.AppendResult(nil, 1, []byte{0x01}, nil, time.Millisecond, false), want: "protocol error"},
		"length over limit": {bytes: []byte{0x7f, 0xff, 0xff, 0xff}, want: "protocol error"},
		"exits":             {exit: true, want: "it exited before saying hello"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			frames := filepath.Join(t.TempDir(), "frames")
			if err := os.WriteFile(frames, c.bytes, 0o644); err != nil {
				t.Fatal(err)
			}
			then := "exec sleep 10"
			if c.exit {
				then = "exit 3"
			}
			cmd := []string{"/bin/sh", "-c", fmt.Sprintf("cat %s >&4; %s", frames, then)}
			p, err := pool.New(ctx, pool.Config{Workers: 1, Command: cmd, KillGrace: 50 * time.Millisecond})
			if err == nil {
				p.Terminate()
				t.Fatal("New succeeded")
			}
			var se *pool.StartError
			if !errors.As(err, &se) {
				t.Fatalf("New: %v, want a *StartError", err)
			}
			if !strings.Contains(se.Reason, c.want) {
				t.Errorf("Reason %q does not say %q (error: %v)", se.Reason, c.want, err)
			}
			if !c.exit && strings.Contains(se.Reason, "exited") {
				t.Errorf("Reason %q blames an exit on a worker the master killed", se.Reason)
			}
		})
	}
}
