package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ppool/ppool/jobs"
	_ "github.com/ppool/ppool/jobs/image" // the kinds the plans use
	_ "github.com/ppool/ppool/jobs/matrix"
	"github.com/ppool/ppool/workerproc"
)

func TestMain(m *testing.M) {
	workerproc.Main() // first: the pools re-execute this test binary as their workers
	os.Exit(m.Run())
}

const matmulJobs = `jobs:
  - name: products
    kind: matrix.multiply
    count: 32
    inputs:
      a: {random: [512, 512], seed: 1}
      b: {random: [512, 512], seed: 1001}
`

const blurJobs = `jobs:
  - name: blurred
    kind: image.blur
    inputs: img/*.png
    params: {sigma: 2}
    output: out/blurred/{stem}.jpg
`

// BenchmarkParallelEfficiency runs the same plans on one worker and on
// two, and reports how much faster two are (speedup-*): the ideal is 2 on
// two free cores. The tasks are whole (a 512×512 product and a 3-megapixel
// image are below the sizes that split), so this is the pool's task
// parallelism, with every cost a user pays: worker start-up, input hashing,
// the journal, writing the outputs.
//
// What two cores give at best is not always 2: they may share caches,
// memory bandwidth or, on a VM, a physical core. ceiling-* is the speedup
// of two independent one-worker runs side by side, which no scheduling of
// tasks can beat; speedup-* near ceiling-* means ppool loses little.
//
//	go test -run '^$' -bench ParallelEfficiency -benchtime 2x ./jobs/
func BenchmarkParallelEfficiency(b *testing.B) {
	dir := b.TempDir()
	writeImages(b, filepath.Join(dir, "img"), 16, 2048, 1536)
	// Each plan twice, in folders of their own, for the side-by-side runs.
	type pair struct {
		name string
		plan [2]*jobs.Plan
	}
	var plans []pair
	for _, j := range []struct{ name, text string }{{"matmul", matmulJobs}, {"blur", blurJobs}} {
		p := pair{name: j.name}
		for i := range p.plan {
			sub := filepath.Join(dir, fmt.Sprint(i))
			p.plan[i] = plan(b, sub, j.name+".yaml", strings.ReplaceAll(j.text, "img/", "../img/"))
		}
		plans = append(plans, p)
	}
	// Once untimed: the page cache has the inputs, and the test binary,
	// which every worker executes, for the first timed run as for the rest.
	for _, p := range plans {
		run(b, p.plan[0], 2)
	}
	one := make([]time.Duration, len(plans))
	two := make([]time.Duration, len(plans))
	sideBySide := make([]time.Duration, len(plans))
	for b.Loop() {
		for i, p := range plans {
			one[i] += run(b, p.plan[0], 1)
			two[i] += run(b, p.plan[0], 2)
			start := time.Now()
			var g errgroup.Group
			for _, pl := range p.plan {
				g.Go(func() error { _, err := runPlan(pl, 1); return err })
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			sideBySide[i] += time.Since(start)
		}
	}
	for i, p := range plans {
		b.ReportMetric(float64(one[i])/float64(two[i]), "speedup-"+p.name)
		b.ReportMetric(2*float64(one[i])/float64(sideBySide[i]), "ceiling-"+p.name)
		tasks := float64(p.plan[0].Tasks * b.N)
		b.ReportMetric(tasks/two[i].Seconds(), p.name+"-tasks/s")
	}
}

// plan writes a jobs file into dir and expands it.
func plan(b *testing.B, dir, name, text string) *jobs.Plan {
	b.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := jobs.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	p, err := f.Expand()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// run runs every task of p on that many workers (none skipped: the journal
// is started afresh) and returns the wall time.
func run(b *testing.B, p *jobs.Plan, workers int) time.Duration {
	b.Helper()
	elapsed, err := runPlan(p, workers)
	if err != nil {
		b.Fatal(err)
	}
	return elapsed
}

func runPlan(p *jobs.Plan, workers int) (time.Duration, error) {
	start := time.Now()
	s, err := jobs.Run(context.Background(), p, jobs.Options{Workers: workers})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if s.OK != p.Tasks {
		return 0, fmt.Errorf("%s: %d of %d tasks ok on %d workers", p.File.Path, s.OK, p.Tasks, workers)
	}
	return elapsed, nil
}

// writeImages writes n distinct opaque RGB PNGs of w×h: smooth colour
// fields with texture and noise, so that they compress and blur like
// photographs rather than like flat colour or pure noise.
func writeImages(b *testing.B, dir string, n, w, h int) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			img := image.NewNRGBA(image.Rect(0, 0, w, h))
			fx, fy := 0.002+0.001*float64(i), 0.003
			for y := range h {
				for x := range w {
					v := math.Sin(float64(x)*fx) * math.Cos(float64(y)*fy)
					t := 20 * math.Sin(float64(x*y)*0.0001)
					img.SetNRGBA(x, y, color.NRGBA{
						R: clamp(128 + 100*v + t + 8*rng.NormFloat64()),
						G: clamp(128 + 80*math.Sin(float64(y)*0.004+float64(i)) + 8*rng.NormFloat64()),
						B: clamp(128 - 100*v + 8*rng.NormFloat64()),
						A: 255,
					})
				}
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%02d.png", i)))
			if err != nil {
				return err
			}
			enc := png.Encoder{CompressionLevel: png.BestSpeed}
			if err := enc.Encode(f, img); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func clamp(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

// BenchmarkTinyTasks measures what ppool itself costs per task: a run of n
// tasks too small to take any time (1×1 PNGs made grey), read to write,
// with the journal and the results, on two workers. Beside it, in the same
// run, the tools a user would otherwise reach for, starting one process
// per input: xargs -P2 and, when installed, GNU parallel -j2, each running
// true (on the first 10,000 inputs only: GNU parallel takes milliseconds
// per input, which over 100,000 would be half an hour).
//
// Reported per task: ppool's wall time (ms/task-ppool); the busy time its
// workers spent in the kind (busy-ms/task); ppool's own time, the wall
// time beyond the kind's (own-ms/task-ppool); the CPU time, user and
// system, of every process of the run, master and workers
// (cpu-ms/task-ppool), and of xargs or parallel with the processes they
// start (cpu-ms/task-xargs, -parallel). And per run, the time from the
// last task's result to the run's end (after-last-ms: closing the
// workers, syncing the outputs and the journal). On a busy machine the
// wall times follow the share of the CPU the run gets; the CPU times do
// not, and say what each way costs.
//
//	go test -run '^$' -bench TinyTasks -benchtime 1x ./jobs/
func BenchmarkTinyTasks(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			in := filepath.Join(dir, "in")
			if err := os.MkdirAll(in, 0o755); err != nil {
				b.Fatal(err)
			}
			var pix bytes.Buffer
			img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
			if err := png.Encode(&pix, img); err != nil {
				b.Fatal(err)
			}
			var list bytes.Buffer
			for i := range n {
				p := filepath.Join(in, fmt.Sprintf("%06d.png", i))
				if err := os.WriteFile(p, pix.Bytes(), 0o644); err != nil {
					b.Fatal(err)
				}
				list.WriteString(p)
				list.WriteByte(0)
			}
			pl := plan(b, dir, "tiny.yaml", "jobs:\n  - name: grey\n    kind: image.grayscale\n    inputs: in/*.png\n    output: out/{stem}.png\n")
			var wall, afterLast, busy, cpu time.Duration
			for b.Loop() {
				obs := &lastTask{}
				cpu0 := cpuTime(b)
				start := time.Now()
				s, err := jobs.Run(context.Background(), pl, jobs.Options{Workers: 2, Observer: obs, Results: io.Discard})
				end := time.Now()
				if err != nil || s.OK != n {
					b.Fatalf("%v; summary %+v", err, s)
				}
				cpu += cpuTime(b) - cpu0 // the pool has waited for its workers
				wall += end.Sub(start)
				afterLast += end.Sub(obs.last)
				busy += s.Busy
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n*b.N) }
			b.ReportMetric(per(wall), "ms/task-ppool")
			b.ReportMetric(per(cpu), "cpu-ms/task-ppool")
			// ppool's own time: the wall time per task beyond what the two
			// workers spent in the kind.
			b.ReportMetric(per(wall-busy/2), "own-ms/task-ppool")
			b.ReportMetric(per(busy), "busy-ms/task")
			b.ReportMetric(float64(afterLast.Microseconds())/1000/float64(b.N), "after-last-ms")
			b.ReportMetric(0, "ns/op")
			sample, m := list.Bytes(), n
			if m > 10_000 {
				m = 10_000
				sample = sample[:nthNUL(sample, m)]
			}
			for _, c := range []struct {
				name string
				args []string
			}{{"xargs", []string{"-0", "-P2", "-n1", "true"}}, {"parallel", []string{"--will-cite", "-0", "-j2", "true"}}} {
				cpu0 := cpuTime(b)
				if d, ok := perInput(b, sample, c.name, c.args...); ok {
					b.ReportMetric(float64(d.Microseconds())/1000/float64(m), "ms/task-"+c.name)
					b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(m), "cpu-ms/task-"+c.name)
				}
			}
		})
	}
}

// cpuTime is the CPU time, user and system, of this process and of the
// children it has waited for.
func cpuTime(b *testing.B) time.Duration {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	var d time.Duration
	for _, tv := range []syscall.Timeval{self.Utime, self.Stime, children.Utime, children.Stime} {
		d += time.Duration(tv.Nano())
	}
	return d
}

// nthNUL is the length of the first m NUL-terminated entries of list.
func nthNUL(list []byte, m int) int {
	end := 0
	for range m {
		end += bytes.IndexByte(list[end:], 0) + 1
	}
	return end
}

// lastTask notes when the last task finished.
type lastTask struct{ last time.Time }

func (o *lastTask) Started(*jobs.Plan, int)   {}
func (o *lastTask) TaskFinished(*jobs.Result) { o.last = time.Now() }
func (o *lastTask) Stopping(string)           {}

// perInput runs a command with the NUL-separated list on its stdin and
// returns its wall time; ok is false if the command is not installed.
func perInput(b *testing.B, list []byte, name string, args ...string) (time.Duration, bool) {
	if _, err := exec.LookPath(name); err != nil {
		b.Logf("%s is not installed: no figure for it", name)
		return 0, false
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(list)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return time.Since(start), true
}
