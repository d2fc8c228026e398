package benchmark

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/errgroup"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// Options says what to measure.
type Options struct {
	// Quick uses small counts and sizes: a smoke test of every measurement
	// in a few seconds, not figures to quote.
	Quick bool
	// Python also measures Python's multiprocessing.Pool, numpy and Pillow
	// in the same run, and the ratios, if PythonPath can import numpy and
	// PIL; if not, the report's notes say why.
	Python bool
	// PythonPath is the interpreter; default DefaultPython.
	PythonPath string
	// Workers is the pool size for the all-workers figures; 0 means one per
	// usable core, as pool.Config's default.
	Workers int
	// Progress, if set, is told each step as it starts.
	Progress func(step string)
	// SelfBinary, if set, runs as the workers in place of this program
	// (pool.Config.SelfBinary): ppool's slim ppool-worker. The report's
	// worker_binary names the binary that ran.
	SelfBinary string
}

// plan holds the counts and sizes of one run.
type plan struct {
	rounds        int // throughput figures: the median of this many runs
	fresh         int // round trips: the best of this many fresh processes (pipe children, pools)
	pipeN, warmN  int
	applyN        int
	asyncN        int
	mapN          int
	imapN         int
	startN        int
	payload       int
	payloadReps   int
	payloadWarm   int // untimed echoes first: the heap takes a few to reach its steady state
	jobRounds     int // speedup jobs: the median of this many rounds
	matN, matReps int
	jobMatN       int
	jobMatCount   int
	blurW, blurH  int
	blurReps      int
	jobBlurCount  int
	// The file jobs: thumbFiles JPEGs and blurFiles PNGs of fileW×fileH;
	// the thumbnails are timed pl.rounds times, the blurs (seconds a
	// file in Pillow) blurFileRounds times.
	fileW, fileH          int
	thumbFiles, blurFiles int
	blurFileRounds        int
}

// The full plan's sizes are those of ../shared/bench/py_pool.py and of the
// design's figures, so that the two sides do the same work.
var (
	fullPlan = plan{
		rounds: 3, fresh: 5, pipeN: 20000, warmN: 2000, applyN: 20000, asyncN: 100_000, mapN: 1_000_000,
		imapN: 200_000, startN: 5, payload: 64 << 20, payloadReps: 5, payloadWarm: 3, jobRounds: 5,
		matN: 1024, matReps: 5, jobMatN: 512, jobMatCount: 32,
		blurW: 2048, blurH: 1536, blurReps: 5, jobBlurCount: 16,
		fileW: 3000, fileH: 2000, thumbFiles: 24, blurFiles: 8, blurFileRounds: 1,
	}
	quickPlan = plan{
		rounds: 1, fresh: 2, pipeN: 2000, warmN: 200, applyN: 2000, asyncN: 5000, mapN: 50_000,
		imapN: 5000, startN: 2, payload: 4 << 20, payloadReps: 2, payloadWarm: 1, jobRounds: 1,
		matN: 256, matReps: 2, jobMatN: 128, jobMatCount: 8,
		blurW: 512, blurH: 384, blurReps: 2, jobBlurCount: 4,
		fileW: 600, fileH: 400, thumbFiles: 4, blurFiles: 4, blurFileRounds: 1,
	}
)

const blurSigma = 2

// Run measures everything in one go and returns the report. It fails only
// if a measurement cannot be made (a pool that does not start, a wrong
// result); a missing Python is a note in the report, not an error.
func Run(ctx context.Context, o Options) (*Report, error) {
	pl := fullPlan
	if o.Quick {
		pl = quickPlan
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	step := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	b := &bench{ctx: ctx, pl: pl, workers: workers, self: o.SelfBinary, step: step, r: &Report{}}
	b.machine(o.Quick)
	for _, f := range []func() error{b.parallelism, b.pipeFloor, b.startAndMemory, b.singleWorker, b.applyRoundTrips, b.allWorkers, b.speedups} {
		if err := f(); err != nil {
			return nil, err
		}
	}
	b.derive()
	python := o.PythonPath
	if python == "" {
		python = DefaultPython
	}
	// Python's pool, numpy and Pillow figures come next, before the file
	// jobs (a minute of disk and CPU), so that each ratio compares figures
	// taken in the same minute.
	if o.Python {
		if err := b.python(python, o.Quick); err != nil {
			return nil, err
		}
	} else {
		b.r.note("python: not measured (run with --python to compare with multiprocessing.Pool, numpy and Pillow in the same run)")
	}
	if err := b.fileJobs(python, o.Python); err != nil {
		return nil, fmt.Errorf("file jobs: %w", err)
	}
	return b.r, nil
}

type bench struct {
	ctx     context.Context
	pl      plan
	workers int
	self    string // pool.Config.SelfBinary
	step    func(string, ...any)
	r       *Report
}

func (b *bench) machine(quick bool) {
	r := b.r
	r.add("date", time.Now().UTC().Format(time.RFC3339), "date", "")
	r.add("quick", quick, "quick mode", "")
	r.add("cores", runtime.NumCPU(), "cores", "")
	r.add("usable_cores", runtime.GOMAXPROCS(0), "usable cores", "")
	r.add("workers", b.workers, "workers", "")
	r.add("worker_binary", b.workerBinary(), "worker binary", "")
	r.add("cpu", cpuModel(), "cpu", "")
	r.add("go_version", runtime.Version(), "Go", "")
	r.add("goos", runtime.GOOS, "os", "")
	r.add("goarch", runtime.GOARCH, "arch", "")
}

// workerBinary names the binary the pools run as their workers.
func (b *bench) workerBinary() string {
	if b.self != "" {
		return filepath.Base(b.self)
	}
	exe, err := os.Executable()
	if err != nil {
		return "this program"
	}
	return filepath.Base(exe)
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parallelism measures how many cores' worth of work this machine does at
// once right now: a CPU-bound loop on as many goroutines as workers, against
// one. A shared VM can give much less than its core count, and the speedup
// figures can only be read against this one.
func (b *bench) parallelism() error {
	b.step("parallelism: a CPU-bound loop on %d threads against one", b.workers)
	iters := 100_000_000
	if b.pl.rounds == 1 {
		iters = 10_000_000
	}
	var one, all []time.Duration
	for range b.pl.rounds {
		if err := b.ctx.Err(); err != nil {
			return context.Cause(b.ctx)
		}
		t0 := time.Now()
		sink.Store(spin(iters))
		one = append(one, time.Since(t0))
		t0 = time.Now()
		var wg sync.WaitGroup
		for range b.workers {
			wg.Go(func() { sink.Store(spin(iters)) })
		}
		wg.Wait()
		all = append(all, time.Since(t0))
	}
	p := float64(b.workers) * percentile(one, 0.5).Seconds() / percentile(all, 0.5).Seconds()
	b.r.add("machine_parallelism", p, fmt.Sprintf("machine parallelism (ideal %d)", b.workers), "cores")
	return nil
}

var sink atomic.Uint64

// spin is a CPU-bound loop the compiler cannot remove: xorshift64.
func spin(n int) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// pipeFloor measures the floor with several echo children, one after the
// other, and keeps the best child's p50. On these VMs the round trip is
// bimodal from one process start to the next (about 7 µs or about 35 µs,
// ../shared/bench/pipelimit shows it too: where the scheduler puts the
// two processes), and a floor is what the best placement gives. The child
// is the binary the pools' workers run (Options.SelfBinary, else this
// program), so that the floor and Apply run the same two programs and
// differ only by the pool, as when ppool's workers were ppool itself.
func (b *bench) pipeFloor() error {
	children := b.pl.fresh
	per := b.pl.pipeN / children
	b.step("pipe floor: %d echo children, %d round trips of 16 bytes each", children, per)
	best, bestP99, worst, err := bestOf(children, func() ([]time.Duration, error) {
		return pipeRoundTrips(b.ctx, b.self, per, b.pl.warmN/children)
	})
	if err != nil {
		return err
	}
	b.r.add("pipe_roundtrip_us", us(best), "pipe 16 B round trip, p50 (the floor)", "µs")
	b.r.add("pipe_roundtrip_p99_us", us(bestP99), "pipe 16 B round trip, p99", "µs")
	b.r.add("pipe_roundtrip_worst_child_us", us(worst), fmt.Sprintf("pipe round trip p50, worst of %d children", children), "µs")
	return nil
}

// bestOf runs n rounds of round trips, each in fresh processes, and returns
// the best round's p50 with its p99, and the worst round's p50.
func bestOf(n int, round func() ([]time.Duration, error)) (best, bestP99, worst time.Duration, err error) {
	for range n {
		lat, err := round()
		if err != nil {
			return 0, 0, 0, err
		}
		p50 := percentile(lat, 0.5)
		if best == 0 || p50 < best {
			best, bestP99 = p50, percentile(lat, 0.99)
		}
		worst = max(worst, p50)
	}
	return best, bestP99, worst, nil
}

// startAndMemory starts and closes bare pools of all workers: start time to
// ready, close time, and the resident memory of a worker that has done
// nothing yet.
func (b *bench) startAndMemory() error {
	b.step("start: %d pools of %d workers, to ready and closed", b.pl.startN, b.workers)
	var starts, closes []time.Duration
	var rss []float64
	for range b.pl.startN {
		t0 := time.Now()
		p, err := pool.New(b.ctx, pool.Config{Workers: b.workers, SelfBinary: b.self})
		if err != nil {
			return fmt.Errorf("starting a pool: %w", err)
		}
		starts = append(starts, time.Since(t0))
		for _, w := range p.Stats().PerWorker {
			rss = append(rss, float64(w.RSS)/(1<<20))
		}
		t0 = time.Now()
		if err := p.Close(b.ctx); err != nil {
			return fmt.Errorf("closing a pool: %w", err)
		}
		closes = append(closes, time.Since(t0))
	}
	start, stop := percentile(starts, 0.5), percentile(closes, 0.5)
	b.r.add("start_ms", ms(start), fmt.Sprintf("start, %d workers to ready", b.workers), "ms")
	b.r.add("close_ms", ms(stop), "Close, all workers gone", "ms")
	b.r.add("start_and_close_ms", ms(start)+ms(stop), "start + Close", "ms")
	slices.Sort(rss)
	if len(rss) > 0 {
		b.r.add("worker_idle_rss_mb", rss[len(rss)/2], "idle worker RSS", "MiB")
	}
	return nil
}

// newPool starts a pool whose workers have loaded the BLAS backend.
func (b *bench) newPool(workers int) (*pool.Pool, error) {
	init := warm.With(struct{}{})
	p, err := pool.New(b.ctx, pool.Config{Workers: workers, Initializer: &init, SelfBinary: b.self})
	if err != nil {
		return nil, fmt.Errorf("starting a pool of %d workers: %w", workers, err)
	}
	return p, nil
}

// closePool closes p, and terminates it if that takes too long: a
// benchmark must not hang on its way out.
func closePool(p *pool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.Close(ctx)
}

// singleWorker measures the CPU-bound figures on one worker alone: one
// product, one blur, and the speedup jobs run serially.
func (b *bench) singleWorker() error {
	p, err := b.newPool(1)
	if err != nil {
		return err
	}
	defer closePool(p)
	pl := b.pl

	b.step("matmul: float64 n=%d in one worker, best of %d", pl.matN, pl.matReps)
	mr, err := pool.Apply(b.ctx, p, matmul, MatmulArgs{N: pl.matN, Seed: 1, Reps: pl.matReps})
	if err != nil {
		return fmt.Errorf("matmul: %w", err)
	}
	n := float64(pl.matN)
	b.r.add("blas_backend", mr.Backend, "BLAS backend", "")
	b.r.add("matmul_gflops_per_worker", 2*n*n*n/mr.Best.Seconds()/1e9, fmt.Sprintf("matmul float64 n=%d, one worker", pl.matN), "GFLOPS")

	b.step("blur: Gaussian σ=%d on %d×%d RGB in one worker, best of %d", blurSigma, pl.blurW, pl.blurH, pl.blurReps)
	br, err := pool.Apply(b.ctx, p, blur, BlurArgs{W: pl.blurW, H: pl.blurH, Sigma: blurSigma, Seed: 1, Reps: pl.blurReps})
	if err != nil {
		return fmt.Errorf("blur: %w", err)
	}
	b.r.add("blur_mpix_per_s_per_worker", float64(pl.blurW*pl.blurH)/br.Best.Seconds()/1e6, fmt.Sprintf("blur σ=%d %d×%d RGB, one worker", blurSigma, pl.blurW, pl.blurH), "MP/s")
	return nil
}

// jobRun is one run of a speedup job: its wall time and how busy it kept
// the workers.
type jobRun struct {
	wall time.Duration
	busy time.Duration // the tasks' run times as the workers measured them
}

// utilisation is the share of the workers' time spent running tasks: near
// 1, the pool kept every worker busy, and a speedup short of the worker
// count is the machine's (see machine_parallelism), not the scheduling's.
func (j jobRun) utilisation(workers int) float64 {
	return j.busy.Seconds() / (j.wall.Seconds() * float64(workers))
}

// runJob sends one task per input, as Map with chunk size 1 (and Python's
// map(chunksize=1)) would, and times them all.
func runJob[A, R any](ctx context.Context, p *pool.Pool, f workerproc.Func[A, R], in []A) (jobRun, error) {
	t0 := time.Now()
	rs := make([]*pool.AsyncResult[R], len(in))
	for i, a := range in {
		rs[i] = pool.ApplyAsync(ctx, p, f, a)
	}
	var j jobRun
	for _, r := range rs {
		if _, err := r.Get(ctx); err != nil {
			return jobRun{}, err
		}
		j.busy += r.Info().Duration
	}
	j.wall = time.Since(t0)
	return j, nil
}

// matmulJob runs the speedup job: jobMatCount products of fresh random
// matrices, one per task, as py_pool.py's matmul job.
func (b *bench) matmulJob(p *pool.Pool) (jobRun, error) {
	in := make([]MatmulArgs, b.pl.jobMatCount)
	for i := range in {
		in[i] = MatmulArgs{N: b.pl.jobMatN, Seed: uint64(2 * i), Reps: 1}
	}
	j, err := runJob(b.ctx, p, matmul, in)
	if err != nil {
		return jobRun{}, fmt.Errorf("matmul job: %w", err)
	}
	return j, nil
}

func (b *bench) blurJob(p *pool.Pool) (jobRun, error) {
	in := make([]BlurArgs, b.pl.jobBlurCount)
	for i := range in {
		in[i] = BlurArgs{W: b.pl.blurW, H: b.pl.blurH, Sigma: blurSigma, Seed: uint64(i), Reps: 1}
	}
	j, err := runJob(b.ctx, p, blur, in)
	if err != nil {
		return jobRun{}, fmt.Errorf("blur job: %w", err)
	}
	return j, nil
}

// allWorkers measures the pool's overheads and the speedup jobs on a pool
// of every worker.
func (b *bench) allWorkers() error {
	p, err := b.newPool(b.workers)
	if err != nil {
		return err
	}
	defer closePool(p)
	ctx, pl, r := b.ctx, b.pl, b.r

	b.step("ApplyAsync: %d tiny tasks, median of %d", pl.asyncN, pl.rounds)
	rate, err := b.rate(pl.asyncN, func() error {
		rs := make([]*pool.AsyncResult[int], pl.asyncN)
		for i := range rs {
			rs[i] = pool.ApplyAsync(ctx, p, square, i)
		}
		for i, res := range rs {
			v, err := res.Get(ctx)
			if err != nil {
				return fmt.Errorf("ApplyAsync: %w", err)
			}
			if v != i*i {
				return fmt.Errorf("ApplyAsync: square(%d) = %d", i, v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.add("apply_async_tasks_per_s", rate, "ApplyAsync, tiny tasks", "tasks/s")

	b.step("Map: %d tiny items, median of %d", pl.mapN, pl.rounds)
	in := make([]int, pl.mapN)
	for i := range in {
		in[i] = i
	}
	rate, err = b.rate(pl.mapN, func() error {
		out, err := pool.Map(ctx, p, square, in)
		if err != nil {
			return fmt.Errorf("Map: %w", err)
		}
		if last := len(in) - 1; out[last] != last*last {
			return fmt.Errorf("Map: square(%d) = %d", last, out[last])
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.add("map_tasks_per_s", rate, fmt.Sprintf("Map, %s tiny items", count(pl.mapN)), "tasks/s")

	b.step("ImapUnordered: %d tiny items one per message, median of %d", pl.imapN, pl.rounds)
	rate, err = b.rate(pl.imapN, func() error {
		n := 0
		for _, err := range pool.ImapUnordered(ctx, p, square, ints(pl.imapN), pool.Window(512)) {
			if err != nil {
				return fmt.Errorf("ImapUnordered: %w", err)
			}
			n++
		}
		if n != pl.imapN {
			return fmt.Errorf("ImapUnordered: %d results for %d items", n, pl.imapN)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.add("imap_unordered_tasks_per_s", rate, "ImapUnordered, chunk 1", "tasks/s")

	b.step("large payload: %d MiB echoed, median of %d after %d untimed", pl.payload>>20, pl.payloadReps, pl.payloadWarm)
	payload := make([]byte, pl.payload)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var trips []time.Duration
	for i := range pl.payloadWarm + pl.payloadReps {
		t0 := time.Now()
		got, err := pool.Apply(ctx, p, echo, payload)
		d := time.Since(t0)
		if err != nil {
			return fmt.Errorf("large payload: %w", err)
		}
		if len(got) != len(payload) || got[len(got)-1] != payload[len(payload)-1] {
			return errors.New("large payload: the echo differs")
		}
		if i >= pl.payloadWarm {
			trips = append(trips, d)
		}
	}
	r.add("large_payload_gb_per_s", 2*float64(pl.payload)/percentile(trips, 0.5).Seconds()/1e9,
		fmt.Sprintf("%d MiB echo, sent + received", pl.payload>>20), "GB/s")

	return nil
}

// applyRoundTrips measures Apply's round trip the way pipeFloor measures
// the floor, so that the two compare: round trips on these VMs run at one
// of two speeds depending on where the processes land (see
// pipe_roundtrip_worst_child_us), so the figure is the best p50 of several
// fresh pools, each of every worker, as the floor's is the best of several
// fresh children.
func (b *bench) applyRoundTrips() error {
	pools := b.pl.fresh
	per, warm := b.pl.applyN/pools, b.pl.warmN/pools
	b.step("Apply: %d pools of %d workers, %d round trips of 16 bytes each", pools, b.workers, per)
	msg := []byte("0123456789abcdef")
	best, bestP99, worst, err := bestOf(pools, func() ([]time.Duration, error) {
		p, err := b.newPool(b.workers)
		if err != nil {
			return nil, err
		}
		defer closePool(p)
		lat := make([]time.Duration, 0, per)
		for i := range warm + per {
			t0 := time.Now()
			got, err := pool.Apply(b.ctx, p, echo, msg)
			d := time.Since(t0)
			if err == nil && string(got) != string(msg) {
				err = fmt.Errorf("echo returned %q", got)
			}
			if err != nil {
				return nil, fmt.Errorf("Apply: %w", err)
			}
			if i >= warm {
				lat = append(lat, d)
			}
		}
		return lat, nil
	})
	if err != nil {
		return err
	}
	b.r.add("apply_roundtrip_us", us(best), "Apply 16 B round trip, p50", "µs")
	b.r.add("apply_roundtrip_p99_us", us(bestP99), "Apply 16 B round trip, p99", "µs")
	b.r.add("apply_roundtrip_worst_pool_us", us(worst), fmt.Sprintf("Apply round trip p50, worst of %d pools", pools), "µs")
	return nil
}

// speedups measures how much faster every worker does a job than one: the
// same job on a one-worker pool and on a pool of every worker, in turns,
// several rounds, after a warm-up. Taking turns matters on these VMs: the
// machine's speed drifts over seconds, and memory a process touches for
// the first time costs the hypervisor more than the work (a fresh pool's
// first products ran at half speed). Each round also runs the job on as
// many one-worker pools at once as there are workers: what independent
// processes get from the machine, the ceiling for any pool.
func (b *bench) speedups() error {
	pl, n := b.pl, b.workers
	b.step("speedup jobs: %d products n=%d, %d blurs; one worker, %d workers, and %d one-worker pools at once; median of %d", pl.jobMatCount, pl.jobMatN, pl.jobBlurCount, n, n, pl.jobRounds)
	all, err := b.newPool(n)
	if err != nil {
		return err
	}
	defer closePool(all)
	singles := make([]*pool.Pool, n)
	for i := range singles {
		if singles[i], err = b.newPool(1); err != nil {
			return err
		}
		defer closePool(singles[i])
	}
	for _, job := range []struct {
		name string
		run  func(*pool.Pool) (jobRun, error)
		what string
	}{
		{"matmul", b.matmulJob, fmt.Sprintf("%d products n=%d", pl.jobMatCount, pl.jobMatN)},
		{"blur", b.blurJob, fmt.Sprintf("%d blurs", pl.jobBlurCount)},
	} {
		// Warm-up: every worker does the job's work once, untimed.
		for _, p := range append([]*pool.Pool{all}, singles...) {
			if _, err := job.run(p); err != nil {
				return err
			}
		}
		var one, every []time.Duration
		var speedup, ceiling, util []float64
		for range pl.jobRounds {
			j1, err := job.run(singles[0])
			if err != nil {
				return err
			}
			jn, err := job.run(all)
			if err != nil {
				return err
			}
			t0 := time.Now()
			var g errgroup.Group
			for _, p := range singles {
				g.Go(func() error { _, err := job.run(p); return err })
			}
			if err := g.Wait(); err != nil {
				return err
			}
			js := time.Since(t0)
			one, every = append(one, j1.wall), append(every, jn.wall)
			speedup = append(speedup, j1.wall.Seconds()/jn.wall.Seconds())
			ceiling = append(ceiling, float64(n)*j1.wall.Seconds()/js.Seconds())
			util = append(util, jn.utilisation(n))
		}
		b.r.add(job.name+"_job_one_worker_s", percentile(one, 0.5).Seconds(), job.what+", one worker", "s")
		b.r.add(job.name+"_job_all_workers_s", percentile(every, 0.5).Seconds(), fmt.Sprintf("same, %d workers", n), "s")
		b.r.add(job.name+"_job_utilisation", percentile(util, 0.5), fmt.Sprintf("%s job, %d workers' time busy", job.name, n), "")
		b.r.add(job.name+"_speedup", percentile(speedup, 0.5), fmt.Sprintf("%s job speedup, %d workers (median of rounds)", job.name, n), "×")
		b.r.add(job.name+"_speedup_ceiling", percentile(ceiling, 0.5), fmt.Sprintf("%s job, %d one-worker pools at once", job.name, n), "×")
	}
	return nil
}

// rate runs f once to warm up, then pl.rounds times, and returns n divided
// by the median time.
func (b *bench) rate(n int, f func() error) (float64, error) {
	// One untimed round first: the first use of memory costs these VMs
	// more than the work, and later rounds reuse it, as a program does.
	if err := f(); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for range b.pl.rounds {
		if err := b.ctx.Err(); err != nil {
			return 0, context.Cause(b.ctx)
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	return float64(n) / percentile(ds, 0.5).Seconds(), nil
}

// derive adds the ratios that need no Python.
func (b *bench) derive() {
	b.r.ratio("apply_vs_pipe_floor", "apply_roundtrip_us", "pipe_roundtrip_us", "Apply p50 ÷ pipe floor p50")
}

// python runs the Python side with the interpreter at path and adds its
// figures and the ratios, or a note saying why it could not.
func (b *bench) python(path string, quick bool) error {
	if err := checkPython(b.ctx, path); err != nil {
		b.r.note("python: not measured: %v", err)
		return nil
	}
	b.step("python: multiprocessing.Pool, numpy and Pillow (%s, OPENBLAS_NUM_THREADS=1)", path)
	figs, err := runPython(b.ctx, path, quick)
	if err != nil {
		return fmt.Errorf("the Python comparison: %w", err)
	}
	for _, f := range figs {
		b.r.add(f.key, f.value, pythonLabel(f.key), pythonUnit(f.key))
	}
	r := b.r
	// Every ratio is "times better for ppool": above 1, ppool is faster.
	r.ratio("apply_roundtrip_vs_python", "python_apply_roundtrip_us", "apply_roundtrip_us", "Apply round trip, Python p50 ÷ ppool p50")
	r.ratio("apply_async_vs_python", "apply_async_tasks_per_s", "python_apply_async_tasks_per_s", "ApplyAsync ÷ apply_async")
	r.ratio("map_vs_python", "map_tasks_per_s", "python_map_tasks_per_s", "Map ÷ Pool.map")
	r.ratio("imap_unordered_vs_python", "imap_unordered_tasks_per_s", "python_imap_unordered_tasks_per_s", "ImapUnordered ÷ imap_unordered")
	r.ratio("start_vs_python", "python_start_and_stop_ms", "start_and_close_ms", "Pool start+terminate ÷ ppool start+Close")
	r.ratio("matmul_vs_numpy", "matmul_gflops_per_worker", "python_numpy_gflops", "matmul GFLOPS ÷ numpy's")
	r.ratio("blur_vs_pillow", "blur_mpix_per_s_per_worker", "python_pillow_mpix_per_s", "blur MP/s ÷ Pillow's")
	if bk, _ := r.Lookup("blas_backend"); bk.Value != "openblas" {
		r.note("matmul_vs_numpy compares ppool's %v backend with numpy's BLAS (usually OpenBLAS)", bk.Value)
	}
	r.note("Pillow's GaussianBlur is a box-filter approximation; ppool's is a true Gaussian (radius 3σ)")
	return nil
}

func pythonLabel(key string) string {
	return "python " + strings.ReplaceAll(strings.TrimPrefix(key, "python_"), "_", " ")
}

func pythonUnit(key string) string {
	for suffix, unit := range map[string]string{
		"_us": "µs", "_ms": "ms", "_s": "s", "_tasks_per_s": "tasks/s", "_gflops": "GFLOPS",
		"_mpix_per_s": "MP/s", "_speedup": "×",
	} {
		if strings.HasSuffix(key, suffix) && (suffix != "_s" || !strings.HasSuffix(key, "_per_s")) {
			return unit
		}
	}
	return ""
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func count(n int) string {
	if n >= 1_000_000 && n%1_000_000 == 0 {
		return fmt.Sprintf("%d M", n/1_000_000)
	}
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%d k", n/1000)
	}
	return fmt.Sprint(n)
}

func ints(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}
