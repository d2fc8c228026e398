package dist_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// The Python that has Debian's python3-distributed (Dask), when installed.
const daskPython = "/usr/bin/python3"

// What BenchmarkDask measures on each side, the same for both.
const (
	daskStarts     = 3    // cluster starts, the median reported
	daskTinyTasks  = 2000 // tiny tasks in one batch
	daskRoundTrips = 500  // single tasks, one at a time
	daskBlurRounds = 3    // timed blur runs per cluster, after an untimed one
	daskBlurFiles  = 8    // PNGs of 2048×1536, blurred with σ 2: BenchmarkBlurSpeedup's job
)

// daskFigures is what testdata/dask_bench.py prints.
type daskFigures struct {
	StartS      float64 `json:"start_s"`
	TasksPerS   float64 `json:"tasks_per_s"`
	RTP50ms     float64 `json:"rt_p50_ms"`
	RTP99ms     float64 `json:"rt_p99_ms"`
	Blur1wS     float64 `json:"blur_1w_s"`
	Blur2wS     float64 `json:"blur_2w_s"`
	BlurSpeedup float64 `json:"blur_speedup"`
	Version     string  `json:"version"`
}

// Dask's distributed scheduler beside ppool's multi-machine mode, in one
// run, so that both sides see the same machine at the same minutes: phase
// by phase, Dask's figures from testdata/dask_bench.py (a LocalCluster of
// 2 worker processes of 1 thread, defaults otherwise), then ppool's
// through an embedded server and 2 agent processes of 1 worker each:
//
//   - start: Dask's LocalCluster and Client until both workers are ready;
//     ppool's server started and both agents' processes started, their
//     pools up and registered (the server alone: ppool-server-ms);
//   - tiny tasks/s: Dask's client.map of a no-op, gathered; ppool's
//     test.sleep of 0 ms (write a line) through jobs.Run as `ppool run
//     --nats` does, results file and journal included;
//   - one task's round trip p50 and p99, one at a time: Dask's
//     submit().result() of a no-op; ppool's Executor.Submit to its
//     completion, the output in place;
//   - the blur job of BenchmarkBlurSpeedup (8 PNGs of 2048×1536, σ 2) on 1
//     worker and on 2: Dask's tasks blur with Pillow and read and write by
//     path; ppool's image.blur moves inputs and outputs through the Object
//     Store (inputs cached by the agents after the untimed first run).
//
// Skipped where Dask is not installed. Timings are figures, not tests.
func BenchmarkDask(b *testing.B) {
	// Pillow too: Dask's side of the blur job needs it.
	if out, err := exec.Command(daskPython, "-c", "import distributed, PIL").CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		b.Skipf("Dask is not installed: %s -c 'import distributed, PIL': %v %s (Debian: apt install python3-distributed python3-pil)", daskPython, err, lines[len(lines)-1])
	}
	images := b.TempDir()
	writePNGs(b, images, daskBlurFiles, 2048, 1536)
	loadStart := loadAverage(b)
	var d daskFigures
	var p ppoolFigures
	for b.Loop() {
		// Phase by phase, Dask's then ppool's: on a shared machine, the
		// two figures to read side by side come from the same minute.
		var di daskFigures
		var pi ppoolFigures
		runDaskScript(b, &di, "start", images)
		pi.start, pi.server = ppoolStarts(b)
		runDaskScript(b, &di, "tasks", images)
		pi.tasksPerS, pi.p50, pi.p99 = ppoolTasks(b)
		runDaskScript(b, &di, "blur", images)
		pi.blur1, pi.blur2 = ppoolBlur(b, images)
		d.StartS += di.StartS
		d.TasksPerS += di.TasksPerS
		d.RTP50ms += di.RTP50ms
		d.RTP99ms += di.RTP99ms
		d.Blur1wS += di.Blur1wS
		d.Blur2wS += di.Blur2wS
		p.add(pi)
		b.Logf("Dask %s: %+v", di.Version, di)
		b.Logf("ppool: %+v", pi)
	}
	n := float64(b.N)
	b.ReportMetric(loadStart, "load-start")
	b.ReportMetric(loadAverage(b), "load-end")
	for _, m := range []struct {
		v    float64
		unit string
	}{
		{d.StartS / n, "dask-start-s"},
		{p.start.Seconds() / n, "ppool-start-s"},
		{float64(p.server.Microseconds()) / 1e3 / n, "ppool-server-ms"},
		{d.TasksPerS / n, "dask-tasks/s"},
		{p.tasksPerS / n, "ppool-tasks/s"},
		{d.RTP50ms / n, "dask-p50-ms"},
		{float64(p.p50.Microseconds()) / 1e3 / n, "ppool-p50-ms"},
		{d.RTP99ms / n, "dask-p99-ms"},
		{float64(p.p99.Microseconds()) / 1e3 / n, "ppool-p99-ms"},
		{d.Blur1wS / n, "dask-blur-1w-s"},
		{d.Blur2wS / n, "dask-blur-2w-s"},
		{d.Blur1wS / d.Blur2wS, "dask-speedup"},
		{p.blur1.Seconds() / n, "ppool-blur-1a-s"},
		{p.blur2.Seconds() / n, "ppool-blur-2a-s"},
		{p.blur1.Seconds() / p.blur2.Seconds(), "ppool-speedup"},
	} {
		b.ReportMetric(m.v, m.unit)
	}
}

// loadAverage is the machine's load average over the last minute.
func loadAverage(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	load, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		b.Fatalf("/proc/loadavg: %v", err)
	}
	return load
}

// runDaskScript runs one phase of testdata/dask_bench.py into d, in a
// process group of its own, and ends the group after it: the cluster's
// nannies and workers are its children, and none may outlive the
// benchmark, even if the script fails.
func runDaskScript(b *testing.B, d *daskFigures, phase, images string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, daskPython, "testdata/dask_bench.py", "--phases", phase,
		"--images", images, "--out", b.TempDir(), "--sigma", "2",
		"--tasks", strconv.Itoa(daskTinyTasks), "--roundtrips", strconv.Itoa(daskRoundTrips),
		"--starts", strconv.Itoa(daskStarts), "--rounds", strconv.Itoa(daskBlurRounds))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	err := cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group; none is an answer too (ESRCH)
	if err != nil {
		b.Fatalf("testdata/dask_bench.py --phases %s: %v\nstderr:\n%s", phase, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), d); err != nil {
		b.Fatalf("testdata/dask_bench.py --phases %s printed %q: %v\nstderr:\n%s", phase, stdout.String(), err, stderr.String())
	}
}

// ppoolFigures are ppool's side of BenchmarkDask.
type ppoolFigures struct {
	start, server time.Duration // median of daskStarts
	tasksPerS     float64
	p50, p99      time.Duration
	blur1, blur2  time.Duration // mean of daskBlurRounds
}

func (p *ppoolFigures) add(q ppoolFigures) {
	p.start += q.start
	p.server += q.server
	p.tasksPerS += q.tasksPerS
	p.p50 += q.p50
	p.p99 += q.p99
	p.blur1 += q.blur1
	p.blur2 += q.blur2
}

// ppoolStarts starts a server and 2 agents daskStarts times, and returns
// the medians of the time to every agent registered and of the server's
// own start.
func ppoolStarts(b *testing.B) (cluster, server time.Duration) {
	var starts, servers []time.Duration
	for range daskStarts {
		c := startCluster(b, 2)
		starts, servers = append(starts, c.start), append(servers, c.server)
		c.stop(b)
	}
	slices.Sort(starts)
	slices.Sort(servers)
	return starts[len(starts)/2], servers[len(servers)/2]
}

// ppoolTasks runs daskTinyTasks tiny tasks through jobs.Run on a server
// and 2 agents, then daskRoundTrips one at a time.
func ppoolTasks(b *testing.B) (tasksPerS float64, p50, p99 time.Duration) {
	c := startCluster(b, 2)
	defer c.stop(b)
	wall := c.run(b, fmt.Sprintf("jobs:\n  - name: tiny\n    kind: test.sleep\n    count: %d\n", daskTinyTasks), daskTinyTasks)
	p50, p99 = c.roundTrips(b, daskRoundTrips)
	return float64(daskTinyTasks) / wall.Seconds(), p50, p99
}

// ppoolBlur runs the blur job on 1 agent and on 2, each on a server of its
// own: an untimed run each, then daskBlurRounds rounds of one run on each,
// taking turns (as BenchmarkBlurSpeedup and the Dask script do: load that
// comes and goes falls on both alike). Returns the means.
func ppoolBlur(b *testing.B, images string) (one, two time.Duration) {
	blur := fmt.Sprintf("jobs:\n  - name: blur\n    kind: image.blur\n    inputs: %s\n    params: {sigma: 2}\n    output: out/{stem}.png\n", filepath.Join(images, "*.png"))
	c1 := startCluster(b, 1)
	defer c1.stop(b)
	c2 := startCluster(b, 2)
	defer c2.stop(b)
	c1.run(b, blur, daskBlurFiles) // inputs into the agents' caches, workers warm
	c2.run(b, blur, daskBlurFiles)
	for range daskBlurRounds {
		one += c1.run(b, blur, daskBlurFiles)
		two += c2.run(b, blur, daskBlurFiles)
	}
	return one / daskBlurRounds, two / daskBlurRounds
}

// ppoolCluster is an embedded server and agent processes of 1 worker each,
// ppool's counterpart of a Dask LocalCluster.
type ppoolCluster struct {
	s      *dist.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	agents []*agentProc
	start  time.Duration // to every agent registered
	server time.Duration // to the server ready for connections
}

// startCluster starts a server and agents and waits until every agent has
// registered, which it does once its pool is up.
func startCluster(b *testing.B, agents int) *ppoolCluster {
	t0 := time.Now()
	s, err := dist.StartServer(dist.ServerConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	c := &ppoolCluster{s: s, server: time.Since(t0)}
	for i := range agents {
		c.agents = append(c.agents, startAgent(b, s.URL(), fmt.Sprint("a", i), 1))
	}
	if c.nc, err = dist.Connect(dist.ConnOptions{URL: s.URL()}); err != nil {
		c.stop(b)
		b.Fatal(err)
	}
	if c.js, err = jetstream.New(c.nc); err != nil {
		c.stop(b)
		b.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		live, err := dist.ListAgents(context.Background(), c.js)
		if err != nil {
			c.stop(b)
			b.Fatal(err)
		}
		if len(live) == agents {
			break
		}
		if time.Now().After(deadline) {
			c.stop(b)
			b.Fatalf("%d of %d agents registered within %v", len(live), agents, waitTimeout)
		}
		// A poll, in a benchmark: a millisecond at most added to a start
		// of hundreds.
		time.Sleep(time.Millisecond)
	}
	c.start = time.Since(t0)
	return c
}

// stop ends the agents (SIGTERM, as `ppool agent` is stopped; killed if
// they do not exit), then the connection and the server.
func (c *ppoolCluster) stop(b *testing.B) {
	for _, a := range c.agents {
		a.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, a := range c.agents {
		select {
		case <-a.exited:
		case <-time.After(waitTimeout):
			a.cmd.Process.Kill()
			<-a.exited
			b.Errorf("agent %s did not exit within %v of SIGTERM", a.name, waitTimeout)
		}
	}
	if c.nc != nil {
		c.nc.Close()
	}
	c.s.Shutdown()
}

// executor is a run's executor on the cluster, once it sees every agent.
func (c *ppoolCluster) executor(b *testing.B, runID string) *dist.Executor {
	ex, err := dist.NewExecutor(context.Background(), c.nc, dist.RunConfig{RunID: runID})
	if err != nil {
		b.Fatal(err)
	}
	if ex.Slots() < len(c.agents) { // NewExecutor read the registry, where all are
		b.Fatalf("the run sees %d workers of %d", ex.Slots(), len(c.agents))
	}
	return ex
}

// run runs a jobs file through jobs.Run on the cluster, as `ppool run
// --nats` does, and returns its wall time.
func (c *ppoolCluster) run(b *testing.B, yaml string, want int) time.Duration {
	plan, dir := planOf(b, yaml)
	journal := filepath.Join(dir, "journal.jsonl")
	o := jobs.Options{Executor: c.executor(b, dist.RunID(journal)), Journal: journal}
	start := time.Now()
	sum, err := jobs.Run(context.Background(), plan, o)
	wall := time.Since(start)
	if err != nil || sum.OK != want {
		b.Fatalf("%+v, %v", sum, err)
	}
	return wall
}

// roundTrips submits n tiny tasks one at a time (after 20 to warm up) and
// returns the round trip's p50 and p99.
func (c *ppoolCluster) roundTrips(b *testing.B, n int) (p50, p99 time.Duration) {
	plan, dir := planOf(b, "jobs:\n  - name: rt\n    kind: test.sleep\n")
	pj := plan.Jobs[0]
	ctx := context.Background()
	ex := c.executor(b, dist.RunID(filepath.Join(dir, "journal.jsonl")))
	defer ex.Close(ctx)
	if err := ex.Prepare(ctx, pj); err != nil {
		b.Fatal(err)
	}
	done := make(chan jobs.Completion, 1)
	once := func(i int) time.Duration {
		// Tasks differ by name: the server drops a task whose ID (its
		// content) it saw within its deduplication window.
		t := *pj.Tasks[0]
		t.Name = fmt.Sprint("t", i)
		t.Output = filepath.Join(dir, fmt.Sprint("t", i%64, ".txt"))
		start := time.Now()
		ex.Submit(pj, &t, func(c jobs.Completion) { done <- c })
		if c := <-done; c.Err != nil {
			b.Fatal(c.Err)
		}
		return time.Since(start)
	}
	for i := range 20 {
		once(i)
	}
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = once(20 + i)
	}
	slices.Sort(lat)
	return percentile(lat, 0.5), percentile(lat, 0.99)
}
