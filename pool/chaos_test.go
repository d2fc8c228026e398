//go:build chaos

// The chaos suite: go test -tags chaos -race ./pool/
//
// It kills workers at random under load, runs tasks past their memory
// limit and their timeout, and feeds the master malformed frames from fake
// workers, and checks the promise: a crashed, hung or bloated worker fails
// only its own task, with a typed cause, and the pool heals; nothing is
// left running, nothing is lost. The figures go to t.Logf (run with -v).
// PPOOL_CHAOS_SEED fixes the random choices; the seed is logged.

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ppool/ppool/pool"
)

// fastExit spares the pools' workers the race runtime's one-second sleep at
// exit, so Close does not wait on it.
var fastExit = []string{"GORACE=atexit_sleep_ms=0"}

func chaosSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PPOOL_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PPOOL_CHAOS_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (PPOOL_CHAOS_SEED=%d reproduces the random choices)", seed, seed)
	return seed
}

// chaosCtx bounds a chaos test. The bounds are generous: the tests do a
// fixed amount of work (tasks, kills, fake workers started), which on a
// busy machine, where every process start is slow, takes several times
// as long as on an idle one.
func chaosCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond, once a millisecond, until it holds; past within it
// fails the test. Pool state has no change notification, so observing it
// means polling; nothing here sleeps in the hope that something happened.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(t0) > within {
			t.Fatalf("after %v: %s", within, what)
		}
		<-tick.C
	}
	return time.Since(t0)
}

// isRunning reports whether pid is a live process (not a zombie).
func isRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// quantile returns the q-quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// checkAttempts checks TaskInfo.Attempts: every run, counting the last.
func checkAttempts(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s: Info().Attempts = %d, want %d", what, got, want)
	}
}

// killReport is what the killer saw.
type killReport struct {
	kills       int
	skipped     int             // ticks with no worker to kill (all restarting, or yet to do their share)
	recoveries  []time.Duration // per kill: until Stats showed full size without the victim
	pids        map[int]bool    // every worker seen
	unrecovered int
}

// killer SIGKILLs a random worker every 50 ms until stop is closed, then
// goes on watching until the pool is back at full size. It samples Stats
// every millisecond to time each kill's recovery: from the kill until Stats
// shows the full number of workers, the victim no longer among them.
//
// It kills only workers that have answered at least worked tasks. Every
// life of a worker then moves the work on, however slowly workers start:
// on a busy machine, where a start took longer than the 50 ms between
// kills, killing fresh workers left the pool with next to none at work,
// and a run of 10,000 tasks went on for minutes. On an idle machine a
// worker answers a few dozen tasks between two kills anyway.
func killer(p *pool.Pool, workers int, rng *rand.Rand, stop <-chan struct{}, worked int) killReport {
	const cadence = 50 * time.Millisecond
	rep := killReport{pids: map[int]bool{}}
	type victim struct {
		pid int
		at  time.Time
	}
	var waiting []victim
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	next := time.Now().Add(cadence)
	var deadline time.Time
	for {
		select {
		case <-stop:
			stop = nil
			deadline = time.Now().Add(20 * time.Second)
		case <-tick.C:
		}
		now := time.Now()
		s := p.Stats()
		live := map[int]bool{}
		for _, w := range s.PerWorker {
			live[w.PID] = true
			rep.pids[w.PID] = true
		}
		if s.Workers == workers {
			waiting = slices.DeleteFunc(waiting, func(v victim) bool {
				if live[v.pid] {
					return false // its death not noticed yet
				}
				rep.recoveries = append(rep.recoveries, now.Sub(v.at))
				return true
			})
		}
		if !deadline.IsZero() {
			if len(waiting) == 0 && s.Workers == workers {
				return rep
			}
			if now.After(deadline) {
				rep.unrecovered = len(waiting)
				return rep
			}
			continue
		}
		if now.Before(next) {
			continue
		}
		next = now.Add(cadence)
		var candidates []int
		for _, w := range s.PerWorker {
			if w.Finished >= worked && !slices.ContainsFunc(waiting, func(v victim) bool { return v.pid == w.PID }) {
				candidates = append(candidates, w.PID)
			}
		}
		if len(candidates) == 0 {
			rep.skipped++
			continue
		}
		pid := candidates[rng.IntN(len(candidates))]
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			continue
		}
		waiting = append(waiting, victim{pid, now})
		rep.kills++
	}
}

// tally counts each task's callbacks, to find lost and duplicated outcomes.
// Task i must return i.
type tally struct {
	oks, fails []atomic.Int32
	wrongValue atomic.Int32
	mu         sync.Mutex
	errs       map[int]error // read once the pool is closed
}

func newTally(n int) *tally {
	return &tally{oks: make([]atomic.Int32, n), fails: make([]atomic.Int32, n), errs: map[int]error{}}
}

// options are task i's callbacks.
func (c *tally) options(i int) []pool.Option {
	return []pool.Option{
		pool.Callback(func(v int) {
			if v != i {
				c.wrongValue.Add(1)
			}
			c.oks[i].Add(1)
		}),
		pool.ErrorCallback(func(err error) {
			c.fails[i].Add(1)
			c.mu.Lock()
			c.errs[i] = err
			c.mu.Unlock()
		}),
	}
}

// check fails t unless each of the first n tasks had exactly one outcome,
// its own, and returns the counts.
func (c *tally) check(t *testing.T, n int) (lost, duplicated, succeeded, failed int) {
	t.Helper()
	for i := range n {
		switch k := c.oks[i].Load() + c.fails[i].Load(); {
		case k == 0:
			lost++
		case k > 1:
			duplicated++
		}
		succeeded += int(c.oks[i].Load())
		failed += int(c.fails[i].Load())
	}
	if lost > 0 || duplicated > 0 {
		t.Errorf("%d tasks lost (no callback), %d duplicated (more than one)", lost, duplicated)
	}
	if k := c.wrongValue.Load(); k > 0 {
		t.Errorf("%d results belonged to another task", k)
	}
	return lost, duplicated, succeeded, failed
}

// TestChaosKillWorkers: 10,000 tasks with retries while a random worker is
// SIGKILLed every 50 ms. Every task ends exactly once: succeeded, or
// failed with *WorkerExitError after its retries. The pool ends at full
// size and leaves no process behind.
func TestChaosKillWorkers(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const (
		tasks   = 10_000
		workers = 2
		retries = 3
	)
	rng := rand.New(rand.NewPCG(chaosSeed(t), 1))
	ctx := chaosCtx(t, 4*time.Minute)
	// Every restart must be a kill's: no start may time out, however slow.
	p, err := pool.New(ctx, pool.Config{Workers: workers, Retries: retries, Env: fastExit, StartTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()

	tl := newTally(tasks)
	stop := make(chan struct{})
	reported := make(chan killReport, 1)
	killRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
	go func() { reported <- killer(p, workers, killRng, stop, 25) }()

	rs := make([]*pool.AsyncResult[int], tasks)
	for i := range rs {
		d := time.Duration(200+rng.IntN(1600)) * time.Microsecond // 1 ms on average
		rs[i] = pool.ApplyAsync(ctx, p, chaosWork, workArgs{ID: i, D: d}, tl.options(i)...)
	}
	for i, r := range rs {
		if err := r.Wait(ctx); err != nil {
			close(stop)
			<-reported
			p.Terminate()
			t.Fatalf("task %d never completed: %v", i, err)
		}
	}
	ran := time.Since(t0)
	close(stop)
	rep := <-reported
	if rep.unrecovered > 0 {
		t.Errorf("%d kills not recovered from 20 s after the last; Stats: %+v", rep.unrecovered, p.Stats())
	}
	s := p.Stats()
	if s.Workers != workers {
		t.Errorf("pool ended at %d workers, want %d", s.Workers, workers)
	}
	// The pool still works.
	if v, err := pool.Apply(ctx, p, chaosWork, workArgs{ID: 7}); v != 7 || err != nil {
		t.Errorf("after the chaos: %d, %v", v, err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has run every callback.

	lost, duplicated, succeeded, failed := tl.check(t, tasks)
	for i, err := range tl.errs {
		var we *pool.WorkerExitError
		if !errors.As(err, &we) || we.Signal != syscall.SIGKILL {
			t.Errorf("task %d failed with %v, want a *WorkerExitError for SIGKILL", i, err)
			continue
		}
		checkAttempts(t, fmt.Sprintf("task %d, failed", i), rs[i].Info().Attempts, retries+1)
	}
	if s.Done != uint64(succeeded) || s.Failed != uint64(failed) {
		t.Errorf("Stats counts %d done, %d failed; the callbacks %d and %d", s.Done, s.Failed, succeeded, failed)
	}
	if s.Restarts != uint64(rep.kills) {
		t.Errorf("%d restarts for %d kills", s.Restarts, rep.kills)
	}
	var orphans []int
	for pid := range rep.pids {
		if isRunning(pid) {
			orphans = append(orphans, pid)
		}
	}
	if len(orphans) > 0 {
		t.Errorf("worker processes still running after Close: %v", orphans)
	}
	goleak.VerifyNone(t, before)

	t.Logf("tasks %d in %v: succeeded %d, failed after %d retries %d, lost %d, duplicated %d",
		tasks, ran.Round(time.Millisecond), succeeded, retries, failed, lost, duplicated)
	t.Logf("kills %d (every 50 ms; %d ticks found no worker to kill), retried runs %d, restarts %d, workers seen %d",
		rep.kills, rep.skipped, s.Retried, s.Restarts, len(rep.pids))
	t.Logf("recovery (kill until Stats shows %d workers without the victim), over %d kills: median %v, p90 %v, max %v",
		workers, len(rep.recoveries), quantile(rep.recoveries, 0.5).Round(time.Microsecond),
		quantile(rep.recoveries, 0.9).Round(time.Microsecond), quantile(rep.recoveries, 1).Round(time.Microsecond))
}

// TestChaosMemoryLimit: a task that allocates until its memory limit fails
// with *MemoryLimitError naming it, while the tasks around it succeed.
func TestChaosMemoryLimit(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const limit = 64 << 20
	ctx := chaosCtx(t, 60*time.Second)
	p, err := pool.New(ctx, pool.Config{Workers: 2, MemoryCheckInterval: 10 * time.Millisecond, Env: fastExit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	t0 := time.Now()
	hog := pool.ApplyAsync(ctx, p, chaosHog, struct{}{}, pool.MemoryLimit(limit), pool.Retries(1))
	var others []*pool.AsyncResult[int]
	for i := range 400 {
		others = append(others, pool.ApplyAsync(ctx, p, chaosWork, workArgs{ID: i, D: time.Millisecond}))
	}
	in := make([]workArgs, 2000)
	for i := range in {
		in[i] = workArgs{ID: i}
	}
	out, err := pool.Map(ctx, p, chaosWork, in)
	if err != nil {
		t.Errorf("Map beside the hog: %v", err)
	}
	for i, v := range out {
		if v != i {
			t.Fatalf("Map item %d = %d", i, v)
		}
	}
	_, err = hog.Get(ctx)
	took := time.Since(t0)
	var me *pool.MemoryLimitError
	if !errors.As(err, &me) {
		t.Fatalf("the hog: %v, want *MemoryLimitError", err)
	}
	if me.Task != hog.Info().ID || me.Function != "chaos.hog" || me.Limit != limit || me.Seen <= limit {
		t.Errorf("MemoryLimitError = %+v, want task %d (chaos.hog), limit %d, seen over it", me, hog.Info().ID, limit)
	}
	for i, r := range others {
		if v, err := r.Get(ctx); v != i || err != nil {
			t.Errorf("task %d beside the hog: %d, %v", i, v, err)
		}
	}
	s := settled(t, p, 2)
	if s.Restarts != 2 {
		t.Errorf("%d restarts, want 2 (the hog's worker, twice: it had a retry)", s.Restarts)
	}
	checkAttempts(t, "the hog", hog.Info().Attempts, 2)
	if v, err := pool.Apply(ctx, p, chaosWork, workArgs{ID: 3}); v != 3 || err != nil {
		t.Errorf("after the memory kills: %d, %v", v, err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
	t.Logf("hog killed at %.1f MiB (limit %d MiB) after %d attempts, %v; 400 tasks and a Map of 2000 beside it all succeeded",
		float64(me.Seen)/(1<<20), limit>>20, hog.Info().Attempts, took.Round(time.Millisecond))
}

// TestChaosHangTimeout: tasks that hang past their timeout fail with
// context.DeadlineExceeded, their workers are killed and replaced, and the
// tasks around them succeed.
func TestChaosHangTimeout(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const (
		timeout = 300 * time.Millisecond
		// The cooperative task must answer its cancel within the grace to
		// keep its worker: on a busy machine 200 ms was not always enough.
		grace = time.Second
	)
	ctx := chaosCtx(t, 60*time.Second)
	p, err := pool.New(ctx, pool.Config{Workers: 2, KillGrace: grace, Env: fastExit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	t0 := time.Now()
	var hung, others []*pool.AsyncResult[int]
	for i := range 400 {
		if i%100 == 50 {
			hung = append(hung, pool.ApplyAsync(ctx, p, chaosHang, struct{}{}, pool.Timeout(timeout)))
		}
		others = append(others, pool.ApplyAsync(ctx, p, chaosWork, workArgs{ID: i, D: time.Millisecond}))
	}
	retried := pool.ApplyAsync(ctx, p, chaosHang, struct{}{}, pool.Timeout(timeout), pool.Retries(1))
	// A task that honours its context stops at its timeout and keeps its
	// worker.
	coop := pool.ApplyAsync(ctx, p, chaosWork, workArgs{ID: -1, D: time.Hour}, pool.Timeout(timeout))

	for i, r := range append(hung, retried, coop) {
		_, err := r.Get(ctx)
		var te *pool.TimeoutError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) || te.Timeout != timeout {
			t.Errorf("timed-out task %d: %v, want a *TimeoutError of %v matching context.DeadlineExceeded", i, err, timeout)
		}
	}
	checkAttempts(t, "a hung task without retries", hung[0].Info().Attempts, 1)
	checkAttempts(t, "the retried hung task", retried.Info().Attempts, 2)
	checkAttempts(t, "the cooperative task", coop.Info().Attempts, 1)
	for i, r := range others {
		if v, err := r.Get(ctx); v != i || err != nil {
			t.Errorf("task %d beside the hung ones: %d, %v", i, v, err)
		}
	}
	took := time.Since(t0)
	// Get returns at the timeout, while the worker is killed only after
	// the grace: counted once the pool has settled, not when it is merely
	// back at 2 workers (a stalled one counts), restarts were one short
	// on a busy machine.
	s := settled(t, p, 2)
	if want := uint64(len(hung) + 2); s.Restarts != want {
		t.Errorf("%d restarts, want %d (one per hung run; none for the cooperative task)", s.Restarts, want)
	}
	if v, err := pool.Apply(ctx, p, chaosWork, workArgs{ID: 5}); v != 5 || err != nil {
		t.Errorf("after the timeouts: %d, %v", v, err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
	t.Logf("%d hung runs timed out after %v and their workers were replaced (restarts %d); a cooperative task timed out in place; 400 tasks beside them succeeded; %v",
		len(hung)+2, timeout, s.Restarts, took.Round(time.Millisecond))
}

// TestChaosMalformedFrames: fake workers send 1,000 malformed frames, each
// from a fresh process: garbage, invalid msgpack, lengths over the limit,
// lying headers, wrong first frames, truncated frames. Each start fails
// with a *StartError, or, for frames after a good hello, each task fails
// with *WorkerExitError: the worker broke on that task, which is the
// task's fault, not a crash loop. The master never panics and no goroutine
// is left.
func TestChaosMalformedFrames(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const want = 1000
	ctx := chaosCtx(t, 4*time.Minute)
	frames := filepath.Join(t.TempDir(), "frames")
	sent := func() int {
		st, err := os.Stat(frames)
		if err != nil {
			return 0
		}
		return int(st.Size())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := chaosSeed(t)

	var (
		next                        atomic.Int64
		mu                          sync.Mutex
		startFailures, taskFailures int
		byCase                      = map[string]int{}
		slowest                     time.Duration
		slowestCase                 string
	)
	fail := func(format string, args ...any) {
		t.Error(fmt.Sprintf(format, args...))
	}
	one := func(n int) {
		c := fakeCases[n%len(fakeCases)]
		// A short KillGrace: after a protocol error the master gives the
		// worker min(KillGrace, 250 ms) to exit on its own before it kills.
		// A long StartTimeout: no case may need it to fail (checked below),
		// and on a busy machine a start can take seconds.
		cfg := pool.Config{
			Workers: 1, Command: []string{self}, StartTimeout: 15 * time.Second, CrashLoopLimit: 3, KillGrace: 10 * time.Millisecond,
			Env: append([]string{envChaosFake + "=" + strconv.Itoa(n), envChaosLog + "=" + frames}, fastExit...),
		}
		t0 := time.Now()
		p, err := pool.New(ctx, cfg)
		if !c.afterHello {
			d := time.Since(t0)
			if err == nil {
				p.Terminate()
				fail("case %d (%s): New succeeded", n, c)
				return
			}
			var se *pool.StartError
			if !errors.As(err, &se) {
				fail("case %d (%s): New failed with %v, want a *StartError", n, c, err)
			}
			if strings.Contains(err.Error(), "no hello within") {
				fail("case %d (%s): caught only by the start timeout: %v", n, c, err)
			}
			mu.Lock()
			startFailures++
			byCase[c.name]++
			if d > slowest {
				slowest, slowestCase = d, c.name
			}
			mu.Unlock()
			return
		}
		if err != nil {
			fail("case %d (%s): New: %v", n, c, err)
			return
		}
		defer p.Terminate()
		// More tasks than CrashLoopLimit: each kills a worker that had
		// started, which must not break the pool.
		for k := range 4 {
			_, err := pool.Apply(ctx, p, chaosWork, workArgs{ID: k})
			var we *pool.WorkerExitError
			if !errors.As(err, &we) {
				fail("case %d (%s), task %d: %v, want *WorkerExitError", n, c, k, err)
				return
			}
		}
		if err := p.Close(ctx); err != nil {
			fail("case %d (%s): Close: %v", n, c, err)
		}
		mu.Lock()
		taskFailures++
		byCase[c.name]++
		mu.Unlock()
	}

	t0 := time.Now()
	var wg sync.WaitGroup
	base := int(seed % 1_000_000_000) // case n's bytes are random, seeded by n
	for range 3 {                     // two cores: keep both busy while processes start
		wg.Go(func() {
			for sent() < want && !t.Failed() && ctx.Err() == nil {
				one(base + int(next.Add(1)-1))
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if got := sent(); got < want && !t.Failed() {
		t.Fatalf("only %d malformed frames sent: %v", got, ctx.Err())
	}
	goleak.VerifyNone(t, before)
	t.Logf("%d malformed frames from %d fake workers (%d kinds) in %v: %d starts failed with *StartError, %d pools failed each task with *WorkerExitError; slowest start failure %v (%s)",
		sent(), next.Load(), len(fakeCases), took.Round(time.Millisecond), startFailures, taskFailures, slowest.Round(time.Microsecond), slowestCase)
}

// TestChaosKillPacks: bursts of tiny tasks, which the pool sends in packs,
// while a random worker is SIGKILLed every 50 ms. A killed pack's tasks run
// again alone, uncharged; every task still ends exactly once, with its own
// result or a *WorkerExitError after its retries.
func TestChaosKillPacks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const (
		workers  = 2
		retries  = 3
		burst    = 2000
		maxTasks = 400_000
		runFor   = 3 * time.Second
		minKills = 10
	)
	rng := rand.New(rand.NewPCG(chaosSeed(t), 3))
	ctx := chaosCtx(t, 100*time.Second)
	// Every restart must be a kill's: no start may time out, however slow.
	p, err := pool.New(ctx, pool.Config{Workers: workers, Retries: retries, Env: fastExit, StartTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally(maxTasks)
	stop := make(chan struct{})
	reported := make(chan killReport, 1)
	go func() { reported <- killer(p, workers, rand.New(rand.NewPCG(rng.Uint64(), 4)), stop, 1) }()
	t0 := time.Now()
	tasks := 0
	rs := make([]*pool.AsyncResult[int], burst)
	// At least runFor, and at least minKills kills (each costs a restart):
	// on a busy machine workers take long to start, and the killer, which
	// kills only running workers, skips many of its ticks.
	for (time.Since(t0) < runFor || p.Stats().Restarts < minKills) && tasks+burst <= maxTasks {
		for j := range rs {
			i := tasks + j
			rs[j] = pool.ApplyAsync(ctx, p, chaosWork, workArgs{ID: i}, tl.options(i)...)
		}
		for j, r := range rs {
			if err := r.Wait(ctx); err != nil {
				close(stop)
				<-reported
				p.Terminate()
				t.Fatalf("task %d never completed: %v", tasks+j, err)
			}
		}
		tasks += burst
	}
	ran := time.Since(t0)
	close(stop)
	rep := <-reported
	s := p.Stats()
	if err := p.Close(ctx); err != nil { // runs every callback
		t.Fatalf("Close: %v", err)
	}
	lost, duplicated, succeeded, failed := tl.check(t, tasks)
	for i, err := range tl.errs {
		var we *pool.WorkerExitError
		if !errors.As(err, &we) || we.Signal != syscall.SIGKILL || we.Task == 0 {
			t.Errorf("task %d failed with %v, want a *WorkerExitError for SIGKILL", i, err)
		}
	}
	if s.Packed == 0 {
		t.Error("no task was sent in a pack: the test tests nothing")
	}
	if rep.kills < minKills {
		t.Errorf("only %d kills in %v", rep.kills, ran)
	}
	goleak.VerifyNone(t, before)
	t.Logf("tasks %d in %v, %d of them sent in packs: succeeded %d, failed after %d retries %d, lost %d, duplicated %d; kills %d",
		tasks, ran.Round(time.Millisecond), s.Packed, succeeded, retries, failed, lost, duplicated, rep.kills)
}
