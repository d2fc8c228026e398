package pool_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
	"go.uber.org/goleak"
)

func newPool(t *testing.T, cfg pool.Config) *pool.Pool {
	t.Helper()
	ctx := testCtx(t)
	p, err := pool.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fullSize(t *testing.T, p *pool.Pool, n int) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("pool not back to %d workers", n), func() bool {
		return p.Stats().Workers == n
	})
}

func TestApplyKinds(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	if v, err := pool.Apply(ctx, p, square, -12); err != nil || v != 144 {
		t.Errorf("square(-12) = %d, %v", v, err)
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	got, err := pool.Apply(ctx, p, echo, big)
	if err != nil || string(got) != string(big) {
		t.Errorf("echo of 3 MiB: %d bytes back, %v", len(got), err)
	}
	// Around the size from which a worker writes a []byte result from
	// where it is, alone and in a batch.
	var sizes [][]byte
	for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		got, err := pool.Apply(ctx, p, echo, big[:n])
		if err != nil || string(got) != string(big[:n]) {
			t.Errorf("echo of %d bytes: %d bytes back, %v", n, len(got), err)
		}
		sizes = append(sizes, big[n:2*n])
	}
	outs, err := pool.Map(ctx, p, echo, sizes, pool.ChunkSize(4))
	for i := range sizes {
		if err != nil || string(outs[i]) != string(sizes[i]) {
			t.Fatalf("Map echo, item %d of %d bytes: %v", i, len(sizes[i]), err)
		}
	}
	r := pool.ApplyAsync(ctx, p, square, 9)
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Ready() || !r.Successful() {
		t.Errorf("after Wait: Ready %v, Successful %v", r.Ready(), r.Successful())
	}
	select {
	case <-r.Done():
	default:
		t.Error("Done not closed after Wait")
	}
	if v, err := r.Get(ctx); v != 81 || err != nil {
		t.Errorf("Get = %d, %v", v, err)
	}
	if info := r.Info(); info.PID == 0 || info.Attempts != 1 {
		t.Errorf("Info = %+v", info)
	}
}

func TestCallbacks(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	got := make(chan int, 10)
	errs := make(chan error, 10)
	for i := range 5 {
		pool.ApplyAsync(ctx, p, square, i, pool.Callback(func(v int) { got <- v }), pool.ErrorCallback(func(err error) { errs <- err }))
	}
	pool.ApplyAsync(ctx, p, fail, "no luck", pool.Callback(func(v int) { got <- v }), pool.ErrorCallback(func(err error) { errs <- err }))
	// A panicking callback is logged, and the others still run.
	pool.ApplyAsync(ctx, p, square, 100, pool.Callback(func(int) { panic("callback panic") }))
	sum := 0
	for range 5 {
		sum += <-got
	}
	if sum != 0+1+4+9+16 {
		t.Errorf("callbacks summed to %d", sum)
	}
	if err := <-errs; !strings.Contains(err.Error(), "no luck") {
		t.Errorf("error callback got %v", err)
	}
	if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
		t.Errorf("after a panicking callback: %d, %v", v, err)
	}
}

func TestMapAndImap(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	in := make([]int, 10_000)
	for i := range in {
		in[i] = i
	}
	out, err := pool.Map(ctx, p, square, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("Map: out[%d] = %d", i, v)
		}
	}
	i := 0
	for v, err := range pool.Imap(ctx, p, square, seq(1000), pool.ChunkSize(7)) {
		if err != nil || v != i*i {
			t.Fatalf("Imap item %d = %d, %v", i, v, err)
		}
		i++
	}
	if i != 1000 {
		t.Fatalf("Imap yielded %d items", i)
	}
	seen := map[int]bool{}
	for v, err := range pool.ImapUnordered(ctx, p, square, seq(1000)) {
		if err != nil {
			t.Fatal(err)
		}
		seen[v] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("ImapUnordered yielded %d distinct results", len(seen))
	}
	// Failing items fail alone.
	msgs := []string{"a", "b", "c"}
	_, err = pool.Map(ctx, p, fail, msgs)
	var me *pool.MapError
	if !errors.As(err, &me) || len(me.Failed) != 3 || me.Failed[1].Index != 1 {
		t.Fatalf("Map of failing items: %v", err)
	}
}

// TestImapBreak: breaking out of Imap leaves no goroutine behind and the
// pool keeps working.
func TestImapBreak(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	before := goleak.IgnoreCurrent()
	n := 0
	for _, err := range pool.Imap(ctx, p, sleep, durations(1000, time.Millisecond)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	goleak.VerifyNone(t, before)
	if v, err := pool.Apply(ctx, p, square, 5); v != 25 || err != nil {
		t.Fatalf("after break: %d, %v", v, err)
	}
}

func durations(n int, d time.Duration) func(func(time.Duration) bool) {
	return func(yield func(time.Duration) bool) {
		for range n {
			if !yield(d) {
				return
			}
		}
	}
}

// TestImapFlatMemory streams a long input through Imap: the heap must not
// grow with the number of inputs.
func TestImapFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams ten million items")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := newPool(t, pool.Config{Workers: 2})
	// Ten million, as promised; PPOOL_TEST_IMAP_ITEMS changes the count.
	n := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("PPOOL_TEST_IMAP_ITEMS")); err == nil {
		n = v
	}
	var peak uint64
	i := 0
	for v, err := range pool.Imap(ctx, p, square, seq(n), pool.ChunkSize(256)) {
		if err != nil || v != i*i {
			t.Fatalf("item %d = %d, %v", i, v, err)
		}
		if i%1_000_000 == 0 {
			peak = max(peak, heapInUse())
		}
		i++
	}
	if i != n {
		t.Fatalf("%d items", i)
	}
	if peak > 64<<20 {
		t.Fatalf("heap reached %d MiB streaming %d items", peak>>20, n)
	}
	t.Logf("%d items streamed; heap in use peaked at %.1f MiB", n, float64(peak)/(1<<20))
}

func TestWorkerKilledMidTask(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2, Prefetch: 4})
	marker := filepath.Join(t.TempDir(), "parked")
	victim := pool.ApplyAsync(ctx, p, parkOnce, marker, pool.Retries(0))
	workerPID := waitForPID(t, marker)
	// Queue more work; some of it lands behind the parked task.
	var others []*pool.AsyncResult[int]
	for i := range 20 {
		others = append(others, pool.ApplyAsync(ctx, p, square, i))
	}
	syscall.Kill(workerPID, syscall.SIGKILL)

	_, err := victim.Get(ctx)
	var wexit *pool.WorkerExitError
	if !errors.As(err, &wexit) {
		t.Fatalf("task on the killed worker: %v, want *WorkerExitError", err)
	}
	if wexit.PID != workerPID || wexit.Signal != syscall.SIGKILL {
		t.Errorf("WorkerExitError = %+v, want pid %d and SIGKILL", wexit, workerPID)
	}
	for i, r := range others {
		if v, err := r.Get(ctx); err != nil || v != i*i {
			t.Errorf("other task %d: %d, %v", i, v, err)
		}
	}
	fullSize(t, p, 2)
	if p.Stats().Restarts != 1 {
		t.Errorf("restarts = %d, want 1", p.Stats().Restarts)
	}

	// With a retry, the same task succeeds on a fresh worker.
	marker2 := filepath.Join(t.TempDir(), "parked")
	r := pool.ApplyAsync(ctx, p, parkOnce, marker2, pool.Retries(1))
	first := waitForPID(t, marker2)
	syscall.Kill(first, syscall.SIGKILL)
	second, err := r.Get(ctx)
	if err != nil || second == first {
		t.Fatalf("retried task: pid %d (first %d), %v", second, first, err)
	}
	if r.Info().Attempts != 2 {
		t.Errorf("attempts = %d, want 2", r.Info().Attempts)
	}
}

func waitForPID(t *testing.T, marker string) int {
	t.Helper()
	var pid int
	eventually(t, 5*time.Second, "the task never started", func() bool {
		b, err := os.ReadFile(marker)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	return pid
}

func TestTimeout(t *testing.T) {
	ctx := testCtx(t)
	// The margins are wide, for a busy machine: the kill comes 2 s after
	// the timeout, the task behind has 1.45 s to spare, a cooperative task
	// 2 s to answer its cancel.
	const (
		timeout = 200 * time.Millisecond
		grace   = 2 * time.Second
	)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2, KillGrace: grace})
	t0 := time.Now()
	hung := pool.ApplyAsync(ctx, p, hang, "", pool.Timeout(timeout))
	// Queued behind the hung task on the same worker, it waits 2.2 s (the
	// timeout and the kill grace) before it runs: its clock must not start
	// until then, or its 1.5 s timeout would fail it.
	behind := pool.ApplyAsync(ctx, p, sleep, 50*time.Millisecond, pool.Timeout(1500*time.Millisecond))
	_, err := hung.Get(ctx)
	elapsed := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung task: %v, want context.DeadlineExceeded", err)
	}
	var te *pool.TimeoutError
	if !errors.As(err, &te) || te.Timeout != timeout {
		t.Errorf("hung task error %v, want a *TimeoutError of %v", err, timeout)
	}
	// At the timeout, not once the worker is killed.
	if limit := timeout + grace*3/4; elapsed > limit {
		t.Errorf("timeout reported after %v, more than %v", elapsed, limit)
	}
	if _, err := behind.Get(ctx); err != nil {
		t.Errorf("task queued behind the hung one: %v", err)
	}
	if s := settled(t, p, 1); s.Restarts != 1 {
		t.Errorf("restarts = %d, want 1 (the hung worker replaced)", s.Restarts)
	}
	// A task that honours its context stops in time and keeps its worker.
	worker := p.Stats().PerWorker[0].PID
	_, err = pool.Apply(ctx, p, sleep, time.Hour, pool.Timeout(100*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cooperative timeout: %v", err)
	}
	if s := settled(t, p, 1); s.Restarts != 1 || s.PerWorker[0].PID != worker {
		t.Errorf("restarts = %d, worker %d after a cooperative timeout; want still 1, and worker %d", s.Restarts, s.PerWorker[0].PID, worker)
	}
}

func TestCancel(t *testing.T) {
	ctx := testCtx(t)
	// A cooperative task has a second to answer its cancel, which is
	// plenty even on a busy machine; the hung one costs that second.
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 1, KillGrace: time.Second})
	marker := filepath.Join(t.TempDir(), "running")
	running := pool.ApplyAsync(ctx, p, hang, marker)
	queued := pool.ApplyAsync(ctx, p, pid, struct{}{})
	queued.Cancel()
	if _, err := queued.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued task: %v", err)
	}
	waitForPID(t, marker)
	running.Cancel()
	if _, err := running.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled running task: %v", err)
	}
	// The hung worker ignores the cancel and is killed after the grace.
	eventually(t, 5*time.Second, "hung worker not replaced", func() bool { return p.Stats().Restarts == 1 })
	fullSize(t, p, 1)
	if s := p.Stats(); s.Done != 0 {
		t.Errorf("%d tasks done; the cancelled queued task must never run", s.Done)
	}
	// Cancelling through the context works the same way.
	worker := p.Stats().PerWorker[0].PID
	cctx, cancel := context.WithCancel(ctx)
	r := pool.ApplyAsync(cctx, p, sleep, time.Hour)
	cancel()
	if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("task whose context was cancelled: %v", err)
	}
	// A cooperative task stops in time and its worker lives on.
	if s := settled(t, p, 1); s.Restarts != 1 || s.PerWorker[0].PID != worker {
		t.Errorf("restarts = %d, worker %d; want 1, and worker %d still", s.Restarts, s.PerWorker[0].PID, worker)
	}
}

func TestMemoryLimit(t *testing.T) {
	ctx := testCtx(t)
	const limit = 64 << 20
	p := newPool(t, pool.Config{Workers: 1, MaxWorkerMemory: limit, MemoryCheckInterval: 20 * time.Millisecond})
	r := pool.ApplyAsync(ctx, p, grow, 1024)
	_, err := r.Get(ctx)
	var me *pool.MemoryLimitError
	if !errors.As(err, &me) {
		t.Fatalf("task over the memory limit: %v, want *MemoryLimitError", err)
	}
	if me.Task != r.Info().ID || me.Seen <= limit || me.Limit != limit || me.Function != "grow" {
		t.Errorf("MemoryLimitError = %+v (task %d)", me, r.Info().ID)
	}
	if !strings.Contains(err.Error(), "grow") || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("message %q should name the task and the memory seen", err)
	}
	if v, err := pool.Apply(ctx, p, square, 4); v != 16 || err != nil {
		t.Errorf("after the memory kill: %d, %v", v, err)
	}
}

func TestRemoteErrors(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})

	_, err := pool.Apply(ctx, p, fail, "bad input")
	var re *pool.RemoteError
	if !errors.As(err, &re) || re.Type != "error" || re.Message != "bad input" {
		t.Errorf("returned error: %v", err)
	}
	_, err = pool.Apply(ctx, p, boom, struct{}{})
	if !errors.As(err, &re) || re.Type != "panic" || !strings.Contains(re.Traceback, "goroutine") || !strings.Contains(err.Error(), "boom at the worker") {
		t.Errorf("panic: %v (traceback %q)", err, re.Traceback)
	}
	_, err = pool.Apply(ctx, p, workerprocRemote[int, int]("nosuchfunction"), 1)
	if !errors.Is(err, pool.ErrUnknownFunction) || !strings.Contains(err.Error(), "nosuchfunction") {
		t.Errorf("unknown function: %v", err)
	}
	_, err = pool.Apply(ctx, p, workerprocRemote[string, int]("square"), "not a number")
	if !errors.Is(err, pool.ErrBadArguments) || !strings.Contains(err.Error(), "square") {
		t.Errorf("bad arguments: %v", err)
	}
	if v, err := pool.Apply(ctx, p, square, 6); v != 36 || err != nil {
		t.Errorf("after the errors: %d, %v", v, err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("restarts = %d; errors must not cost a worker", s.Restarts)
	}
}

func TestInitializer(t *testing.T) {
	ctx := testCtx(t)
	init := initOnce.With(5)
	p := newPool(t, pool.Config{Workers: 2, Initializer: &init})
	for range 4 {
		if v, err := pool.Apply(ctx, p, initialized, struct{}{}); v != 5 || err != nil {
			t.Fatalf("initialized = %d, %v: the initializer must run exactly once per worker", v, err)
		}
	}
	bad := initOnce.With(-1)
	_, err := pool.New(ctx, pool.Config{Workers: 1, Initializer: &bad})
	var se *pool.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "initializer refused") {
		t.Fatalf("failing initializer: %v", err)
	}
}

func TestBadWorkerBinaries(t *testing.T) {
	ctx := testCtx(t)
	// Only the silent worker waits for the start timeout; the others must
	// fail for their own reason, which a long one leaves them time to show
	// on a busy machine.
	cases := map[string]struct {
		cmd     []string
		want    string
		timeout time.Duration
	}{
		"exits at once":   {[]string{"/bin/sh", "-c", "echo cannot start >&2; exit 3"}, "cannot start", 10 * time.Second},
		"garbage on fd 4": {[]string{"/bin/sh", "-c", "echo this is not a frame >&4; sleep 10"}, "protocol error", 10 * time.Second},
		"no such binary":  {[]string{"/nonexistent/worker"}, "no such file", 10 * time.Second},
		"silent":          {[]string{"/bin/sh", "-c", "exec sleep 10"}, "no hello", 300 * time.Millisecond},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t0 := time.Now()
			p, err := pool.New(ctx, pool.Config{Workers: 2, Command: c.cmd, StartTimeout: c.timeout})
			if err == nil {
				p.Terminate()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if d := time.Since(t0); d > c.timeout+5*time.Second {
				t.Errorf("New took %v to fail", d)
			}
		})
	}
}

// TestCrashLoop: workers that die at start once the pool is running trip
// ErrCrashLoop instead of being restarted forever.
func TestCrashLoop(t *testing.T) {
	ctx := testCtx(t)
	marker := filepath.Join(t.TempDir(), "die")
	p := newPool(t, pool.Config{Workers: 2, Env: []string{"PPOOL_TEST_DIE_AT_START=" + marker}})
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err := pool.Apply(ctx, p, crash, struct{}{}, pool.Retries(3))
	if err == nil {
		t.Fatal("crash succeeded")
	}
	r := pool.ApplyAsync(ctx, p, square, 2)
	_, err = r.Get(ctx)
	if !errors.Is(err, pool.ErrCrashLoop) {
		t.Fatalf("task after the crash loop: %v, want ErrCrashLoop", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("crash loop took %v to detect", d)
	}
	if !strings.Contains(err.Error(), "dying at start as the test asked") {
		t.Errorf("crash loop error should show the worker's output: %v", err)
	}
}

// TestKillingBusyWorkers: killing busy workers over and over does not trip
// the crash-loop detector; every task ends exactly once.
func TestKillingBusyWorkers(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2, Retries: 100})
	var rs []*pool.AsyncResult[int]
	for i := range 400 {
		rs = append(rs, pool.ApplyAsync(ctx, p, sleep, time.Millisecond))
		_ = i
	}
	for range 15 {
		eventually(t, 5*time.Second, "no busy worker", func() bool { return p.Stats().Busy > 0 })
		for _, w := range p.Stats().PerWorker {
			if w.InFlight > 0 {
				syscall.Kill(w.PID, syscall.SIGKILL)
				break
			}
		}
		fullSize(t, p, 2)
	}
	for i, r := range rs {
		if _, err := r.Get(ctx); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if _, err := pool.Apply(ctx, p, square, 1); err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := testCtx(t)
	p, err := pool.New(ctx, pool.Config{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, w := range p.Stats().PerWorker {
		pids = append(pids, w.PID)
	}
	child, err := pool.Apply(ctx, p, spawnChild, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, child)
	if _, err := pool.Map(ctx, p, square, []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after Close", pid)
		}
	}
	goleak.VerifyNone(t, before)
	if _, err := pool.Apply(ctx, p, square, 1); !errors.Is(err, pool.ErrPoolClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
}

func TestTerminate(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := testCtx(t)
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "running")
	r := pool.ApplyAsync(ctx, p, hang, marker)
	waitForPID(t, marker)
	// Tasks sent to the hung worker's window, and a pool queue besides.
	var behind []*pool.AsyncResult[int]
	for i := range 600 {
		behind = append(behind, pool.ApplyAsync(ctx, p, square, i))
	}
	p.Terminate()
	if _, err := r.Get(ctx); !errors.Is(err, pool.ErrPoolClosed) {
		t.Errorf("running task after Terminate: %v", err)
	}
	for i, b := range behind {
		if v, err := b.Get(ctx); err != nil && !errors.Is(err, pool.ErrPoolClosed) || err == nil && v != i*i {
			t.Fatalf("task %d after Terminate: %v, %v; want its result or ErrPoolClosed", i, v, err)
		}
	}
	goleak.VerifyNone(t, before)
}

// TestMasterKilled: a master killed with SIGKILL takes its workers, and the
// programs they started, with it (within a second or so; the bound below
// is for a busy machine).
func TestMasterKilled(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PPOOL_TEST_MASTER=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper master: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("helper printed %q", line)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 4 {
		t.Fatalf("helper printed %q, want 2 worker and 2 child pids", line)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("process %d not running before the kill", pid)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	t0 := time.Now()
	eventually(t, 10*time.Second, "workers or their children outlived the master", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	t.Logf("all gone %v after the kill", time.Since(t0))
}

// runMaster is the helper master of TestMasterKilled: it starts a pool,
// has each worker start a child, prints the pids and waits to be killed.
func runMaster() int {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2, Prefetch: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var pids []string
	for _, w := range p.Stats().PerWorker {
		pids = append(pids, strconv.Itoa(w.PID))
	}
	// One child per worker: the first task holds its worker while the
	// second goes to the other.
	a := pool.ApplyAsync(ctx, p, spawnChild, struct{}{})
	b := pool.ApplyAsync(ctx, p, spawnChild, struct{}{})
	for _, r := range []*pool.AsyncResult[int]{a, b} {
		pid, err := r.Get(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(pids, " "))
	select {}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestChecksum(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(self)
	good := hex.EncodeToString(sum[:])
	env := []string{"PPOOL_WORKER=1"}
	p, err := pool.New(ctx, pool.Config{Workers: 1, Command: []string{bin}, Env: env, SHA256: good})
	if err != nil {
		t.Fatalf("binary with the right checksum: %v", err)
	}
	if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
		t.Errorf("square(3) = %d, %v", v, err)
	}
	// Swap another program in at the path: replacement workers still run
	// the binary that was verified.
	impostor := filepath.Join(dir, "impostor")
	if err := os.WriteFile(impostor, []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(impostor, bin); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(p.Stats().PerWorker[0].PID, syscall.SIGKILL)
	eventually(t, 5*time.Second, "worker not replaced", func() bool { s := p.Stats(); return s.Restarts == 1 && s.Workers == 1 })
	if v, err := pool.Apply(ctx, p, square, 4); v != 16 || err != nil {
		t.Errorf("after the swap: square(4) = %d, %v", v, err)
	}
	p.Close(ctx)
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}

	// A tampered binary is refused, naming the binary and both sums.
	if err := os.WriteFile(bin, append(self, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = pool.New(ctx, pool.Config{Workers: 1, Command: []string{bin}, Env: env, SHA256: good})
	var se *pool.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), bin) || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("tampered binary: %v", err)
	}
}

// TestOversizedArgument: an argument over the frame limit fails its call at
// once and costs no worker.
func TestOversizedArgument(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, MaxFrame: 64 << 10, Retries: 5})
	_, err := pool.Apply(ctx, p, echo, make([]byte, 100<<10))
	if err == nil || !strings.Contains(err.Error(), "frame limit") {
		t.Fatalf("100 KiB argument with a 64 KiB limit: %v", err)
	}
	if v, err := pool.Apply(ctx, p, echo, []byte("small")); err != nil || string(v) != "small" {
		t.Fatalf("after: %q, %v", v, err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("restarts = %d, want 0", s.Restarts)
	}
}

// TestMaxTasksPerWorker: a worker is retired after its share of tasks and
// a fresh one takes over.
func TestMaxTasksPerWorker(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, MaxTasksPerWorker: 3, Prefetch: 1})
	pids := map[int]int{}
	for range 9 {
		v, err := pool.Apply(ctx, p, pid, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		pids[v]++
	}
	if len(pids) != 3 {
		t.Errorf("9 tasks with MaxTasksPerWorker 3 ran on %d workers: %v", len(pids), pids)
	}
	for pid, n := range pids {
		if n != 3 {
			t.Errorf("worker %d ran %d tasks", pid, n)
		}
	}
}

// TestContextCancelsItsTasks: tasks share one watch per context; when the
// context ends, every task of it fails, queued or running, and nothing
// else does.
func TestContextCancelsItsTasks(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2, Prefetch: 2})
	type key struct{}
	cctx, cancel := context.WithCancel(ctx)
	vctx := context.WithValue(cctx, key{}, 1) // shares cctx's Done channel
	var doomed []*pool.AsyncResult[int]
	for range 2 {
		doomed = append(doomed, pool.ApplyAsync(cctx, p, sleep, time.Hour)) // running
	}
	for range 50 {
		doomed = append(doomed, pool.ApplyAsync(vctx, p, sleep, time.Hour)) // queued
	}
	if _, busy := p.Watches(); busy != 1 {
		t.Fatalf("%d busy watches for one context's 52 tasks, want 1", busy)
	}
	other := pool.ApplyAsync(ctx, p, square, 7)
	cancel()
	for i, r := range doomed {
		if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("task %d of the cancelled context: %v", i, err)
		}
	}
	if v, err := other.Get(ctx); err != nil || v != 49 {
		t.Fatalf("a task of another context: %v, %v", v, err)
	}
	// A context that has already ended cancels a task at once.
	late := pool.ApplyAsync(cctx, p, square, 3)
	if _, err := late.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("task submitted under an ended context: %v", err)
	}
	// Every task is finished: at most one idle watch is left registered,
	// once the readers that finished them have let go (Get can return
	// first) and the contexts' callbacks have run.
	settled := func() bool { reg, busy := p.Watches(); return reg <= 1 && busy == 0 }
	eventually(t, 5*time.Second, "watches left registered after every task finished", settled)
	// Many short-lived contexts leave nothing behind.
	for i := range 20 {
		c, stop := context.WithCancel(ctx)
		if _, err := pool.ApplyAsync(c, p, square, i).Get(ctx); err != nil {
			t.Fatal(err)
		}
		stop()
	}
	eventually(t, 5*time.Second, "watches left registered after 20 finished contexts", settled)
}

// TestApplyLargeArgument: Apply writes a large []byte argument from the
// caller's slice instead of copying it. A call that gives up before its
// answer must not leave the pool reading the slice after it returns: the
// caller may change it at once.
func TestApplyLargeArgument(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1, Prefetch: 2, KillGrace: 100 * time.Millisecond})
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	got, err := pool.Apply(ctx, p, echo, buf)
	if err != nil || string(got) != string(buf) {
		t.Fatalf("echo of 8 MiB: %d bytes, %v", len(got), err)
	}
	// Queued behind a task that hangs, the call times out with its
	// argument sent or still queued for the worker.
	marker := filepath.Join(t.TempDir(), "running")
	hung := pool.ApplyAsync(ctx, p, hang, marker)
	waitForPID(t, marker)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := pool.Apply(short, p, echo, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply behind a hung task: %v", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Apply took %v to give up after 100 ms", d)
	}
	for i := range buf {
		buf[i] = ^byte(i) // ours again
	}
	// The hung task is cancelled (its worker killed); the pool goes on.
	hung.Cancel()
	if got, err := pool.Apply(ctx, p, echo, buf); err != nil || string(got) != string(buf) {
		t.Fatalf("echo after: %d bytes, %v", len(got), err)
	}
}

// TestInfoSaysWhyRetried: a task retried after a timeout reports, in its
// TaskInfo, why each earlier attempt failed.
func TestInfoSaysWhyRetried(t *testing.T) {
	p := newPool(t, pool.Config{Workers: 1})
	marker := filepath.Join(t.TempDir(), "parked")
	ctx := context.Background()
	r := pool.ApplyAsync(ctx, p, parkOnce, marker, pool.Timeout(2*time.Second), pool.Retries(1))
	if _, err := r.Get(ctx); err != nil {
		t.Fatal(err)
	}
	info := r.Info()
	if info.Attempts != 2 || len(info.RetriedAfter) != 1 {
		t.Fatalf("attempts %d, retried after %v; want 2 attempts, one cause", info.Attempts, info.RetriedAfter)
	}
	var te *pool.TimeoutError
	if !errors.As(info.RetriedAfter[0], &te) {
		t.Errorf("retried after %v, want a *TimeoutError", info.RetriedAfter[0])
	}
	// A task that succeeds at once has none.
	r = pool.ApplyAsync(ctx, p, square, 3)
	if _, err := r.Get(ctx); err != nil || r.Info().RetriedAfter != nil {
		t.Errorf("square: %v, retried after %v", err, r.Info().RetriedAfter)
	}
}

// TestApplyInfo: ApplyInfo returns the result and says how the task ran,
// as AsyncResult.Info does: the worker, and the attempts of a task
// retried after its worker was killed.
func TestApplyInfo(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	v, info, err := pool.ApplyInfo(ctx, p, square, 7)
	if err != nil || v != 49 || info.PID == 0 || info.Attempts != 1 || info.ID == 0 {
		t.Errorf("square(7) = %d, %+v, %v", v, info, err)
	}
	marker := filepath.Join(t.TempDir(), "parked")
	type answer struct {
		pid  int
		info pool.TaskInfo
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		pid, info, err := pool.ApplyInfo(ctx, p, parkOnce, marker, pool.Retries(1))
		got <- answer{pid, info, err}
	}()
	first := waitForPID(t, marker)
	syscall.Kill(first, syscall.SIGKILL)
	a := <-got
	if a.err != nil || a.pid == first || a.info.PID != a.pid || a.info.Attempts != 2 || len(a.info.RetriedAfter) != 1 {
		t.Errorf("retried task: pid %d (first %d), %+v, %v; want a second pid, 2 attempts", a.pid, first, a.info, a.err)
	}
}
