package dist_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// The embedded server's start, to ready for connections, with JetStream
// on a fresh store (target ≤ 100 ms).
func BenchmarkServerStart(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		store := b.TempDir()
		start := time.Now()
		s, err := dist.StartServer(dist.ServerConfig{Listen: "127.0.0.1:0", StoreDir: store})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		s.Shutdown()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
}

// A local pool of 2 workers, start to ready: the figure to read
// BenchmarkServerStart against (a run on agents starts no pool of its
// own, but talks to a server that must be up).
func BenchmarkLocalPoolStart(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		p, err := pool.New(context.Background(), pool.Config{Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		p.Close(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
}

// Tiny tasks through the work queue and one agent of 2 workers in this
// process: publish, pull one per free worker, run on the pool, publish
// the result, DoubleAck, read the result.
func BenchmarkTasksThroughStream(b *testing.B) {
	s := startServer(b, dist.ServerConfig{})
	nc, js := connect(b, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{}); err != nil {
		b.Fatal(err)
	}
	a, err := dist.NewAgent(ctx, nc, dist.AgentConfig{Name: "bench", Workers: 2, CacheDir: b.TempDir(), PullWait: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() { stop(); <-done }()
	results, err := js.OrderedConsumer(ctx, dist.ResultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	iter, err := results.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer iter.Stop()
	// Warm up: the pool's workers start, the first pulls are made.
	for i := range 20 {
		if err := dist.PublishTask(ctx, js, sleepTask(fmt.Sprint("warm", i), 0, false), ""); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 {
		if _, err := iter.Next(); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	start := time.Now()
	for b.Loop() {
		for range 100 {
			data, err := dist.EncodeTask(sleepTask(fmt.Sprint("t", n), 0, false))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishAsync(dist.TaskSubject, data); err != nil {
				b.Fatal(err)
			}
			n++
		}
		<-js.PublishAsyncComplete()
		for range 100 {
			if _, err := iter.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tasks/s")
}

// The same tiny task on a local pool of 2 workers, two callers at once:
// the figure to read BenchmarkTasksThroughStream against.
func BenchmarkLocalPoolTask(b *testing.B) {
	p, err := pool.New(context.Background(), pool.Config{Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	dir := b.TempDir()
	task := func(i int) jobs.Task {
		t := sleepTask(fmt.Sprint("t", i), 0, false).Task
		t.Output = filepath.Join(dir, fmt.Sprint("t", i%64, ".txt"))
		return t
	}
	fn := workerproc.Remote[jobs.Task, jobs.Outcome]("jobs.task")
	if _, err := pool.Apply(context.Background(), p, fn, task(0)); err != nil {
		b.Fatal(err) // and the workers are up
	}
	start := time.Now()
	var n atomic.Int64
	b.SetParallelism(1) // GOMAXPROCS callers: 2 here, one per worker
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pool.Apply(context.Background(), p, fn, task(int(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "tasks/s")
}

// Tiny tasks (test.sleep of 0 ms: write a line) through `ppool run`'s
// runner, on a local pool of 2 workers and on 2 agent processes of 1
// worker each through the work queue: tasks/s end to end, results file
// and journal included, the two figures side by side.
func BenchmarkRunTinyTasks(b *testing.B) {
	const n = 2000
	yaml := fmt.Sprintf("jobs:\n  - name: tiny\n    kind: test.sleep\n    count: %d\n", n)
	run := func(b *testing.B, opts func(dir string) jobs.Options) {
		var total time.Duration
		for b.Loop() {
			b.StopTimer()
			plan, dir := planOf(b, yaml)
			o := opts(dir)
			o.Journal = filepath.Join(dir, "journal.jsonl")
			b.StartTimer()
			start := time.Now()
			sum, err := jobs.Run(context.Background(), plan, o)
			total += time.Since(start)
			if err != nil || sum.OK != n {
				b.Fatalf("%+v, %v", sum, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "tasks/s")
	}
	b.Run("local", func(b *testing.B) {
		run(b, func(string) jobs.Options { return jobs.Options{Workers: 2} })
	})
	b.Run("nats", func(b *testing.B) {
		s := startServer(b, dist.ServerConfig{})
		startAgent(b, s.URL(), "a1", 1)
		startAgent(b, s.URL(), "a2", 1)
		nc, _ := connect(b, dist.ConnOptions{URL: s.URL()})
		run(b, func(dir string) jobs.Options {
			ex, err := dist.NewExecutor(context.Background(), nc, dist.RunConfig{RunID: dist.RunID(filepath.Join(dir, "journal.jsonl"))})
			if err != nil {
				b.Fatal(err)
			}
			for ex.Slots() < 2 { // both agents registered
				time.Sleep(10 * time.Millisecond)
			}
			return jobs.Options{Executor: ex}
		})
	})
}

// Tiny tasks (test.sleep of 0 ms: write a line, no input files) through
// the Executor alone, without the jobs runner: Submit to Completion, the
// output written in place, on 2 agent processes of 1 and of 2 workers
// each, with as many tasks out at once as the agents have workers (what
// the runner allows). This is the figure for the work queue itself; the
// runner's own cost per task (journal, results file, progress) comes on
// top in BenchmarkRunTinyTasks.
func BenchmarkExecutorTinyTasks(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("2x%dw", workers), func(b *testing.B) {
			plan, dir := planOf(b, "jobs:\n  - name: tiny\n    kind: test.sleep\n")
			pj := plan.Jobs[0]
			s := startServer(b, dist.ServerConfig{})
			startAgent(b, s.URL(), "a1", workers)
			startAgent(b, s.URL(), "a2", workers)
			nc, _ := connect(b, dist.ConnOptions{URL: s.URL()})
			ctx := context.Background()
			ex, err := dist.NewExecutor(ctx, nc, dist.RunConfig{RunID: "tiny"})
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close(ctx)
			for ex.Slots() < 2*workers { // both agents registered
				time.Sleep(10 * time.Millisecond)
			}
			if err := ex.Prepare(ctx, pj); err != nil {
				b.Fatal(err)
			}
			slots := make(chan struct{}, ex.Slots())
			var failed atomic.Pointer[error]
			i := 0
			submit := func() {
				slots <- struct{}{}
				t := *pj.Tasks[0]
				t.Name = fmt.Sprint("t", i) // a task's ID is its content
				// A new file each time, as in a run: replacing one costs
				// ext4 a flush of the file's data.
				t.Output = filepath.Join(dir, fmt.Sprint("t", i, ".txt"))
				i++
				ex.Submit(pj, &t, func(c jobs.Completion) {
					if c.Err != nil {
						failed.CompareAndSwap(nil, &c.Err)
					}
					<-slots
				})
			}
			for range 200 { // the agents' workers are up and warm
				submit()
			}
			for range cap(slots) {
				slots <- struct{}{}
			}
			for range cap(slots) {
				<-slots
			}
			start := time.Now()
			for b.Loop() {
				submit()
			}
			for range cap(slots) { // every task completed
				slots <- struct{}{}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
		})
	}
}

// percentile returns the q-quantile (0..1) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// One tiny task at a time (test.sleep of 0 ms: write a line), from
// submission to its completion with the output in place: on a local pool
// of 2 workers (pool.Apply of the jobs runner's task function), and
// through the work queue to 2 agent processes of 1 worker each (the
// Executor that `ppool run --nats` uses). Reports the round trip's p50 and
// p99 (targets through the queue: ≤ 400 µs and ≤ 2 ms), and for the queue
// where the time goes: the median wait from the server storing the task
// to an agent starting it (queue-µs) and the median run time on the
// agent's worker (worker-µs).
func BenchmarkRoundTrip(b *testing.B) {
	plan, dir := planOf(b, "jobs:\n  - name: rt\n    kind: test.sleep\n")
	pj := plan.Jobs[0]
	// Tasks differ by name: a task's ID is its content, and the server
	// drops a task whose ID it saw within its deduplication window.
	task := func(i int) *jobs.Task {
		t := *pj.Tasks[0]
		t.Name = fmt.Sprint("t", i)
		t.Output = filepath.Join(dir, fmt.Sprint("t", i%64, ".txt"))
		return &t
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(micros(percentile(lat, 0.5)), "p50-µs")
		b.ReportMetric(micros(percentile(lat, 0.99)), "p99-µs")
	}
	b.Run("local", func(b *testing.B) {
		p, err := pool.New(context.Background(), pool.Config{Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(context.Background())
		fn := workerproc.Remote[jobs.Task, jobs.Outcome]("jobs.task")
		var lat []time.Duration
		i := 0
		for ; i < 20; i++ { // the workers are up and warm
			if _, err := pool.Apply(context.Background(), p, fn, *task(i)); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			start := time.Now()
			if _, err := pool.Apply(context.Background(), p, fn, *task(i)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		report(b, lat)
	})
	b.Run("nats", func(b *testing.B) {
		s := startServer(b, dist.ServerConfig{})
		startAgent(b, s.URL(), "a1", 1)
		startAgent(b, s.URL(), "a2", 1)
		nc, js := connect(b, dist.ConnOptions{URL: s.URL()})
		ctx := context.Background()
		const run = "roundtrip"
		ex, err := dist.NewExecutor(ctx, nc, dist.RunConfig{RunID: run})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close(ctx)
		for ex.Slots() < 2 { // both agents registered
			time.Sleep(10 * time.Millisecond)
		}
		if err := ex.Prepare(ctx, pj); err != nil {
			b.Fatal(err)
		}
		// The results as stored, read beside the run: when the server
		// stored each, and the agent's own timings, split the round trip.
		cons, err := js.OrderedConsumer(ctx, dist.ResultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{dist.ResultSubject + "." + run}})
		if err != nil {
			b.Fatal(err)
		}
		stored, err := cons.Messages()
		if err != nil {
			b.Fatal(err)
		}
		defer stored.Stop()
		done := make(chan jobs.Completion, 1)
		type split struct{ total, toAgent, agent, worker, publish, collect time.Duration }
		roundTrip := func(i int) split {
			start := time.Now()
			ex.Submit(pj, task(i), func(c jobs.Completion) { done <- c })
			c := <-done
			end := time.Now()
			if c.Err != nil {
				b.Fatal(c.Err)
			}
			msg, err := stored.Next()
			if err != nil {
				b.Fatal(err)
			}
			meta, err := msg.Metadata()
			if err != nil {
				b.Fatal(err)
			}
			r, err := dist.DecodeResult(msg.Data())
			if err != nil {
				b.Fatal(err)
			}
			return split{
				total: end.Sub(start), toAgent: r.QueueWait, agent: r.RunTime, worker: r.Duration,
				publish: meta.Timestamp.Sub(start) - r.QueueWait - r.RunTime,
				collect: end.Sub(meta.Timestamp),
			}
		}
		i := 0
		for ; i < 20; i++ { // both agents' workers are up, their pulls waiting
			roundTrip(i)
		}
		var lat, toAgent, agent, worker, publish, collect []time.Duration
		for b.Loop() {
			s := roundTrip(i)
			lat, toAgent, agent, worker = append(lat, s.total), append(toAgent, s.toAgent), append(agent, s.agent), append(worker, s.worker)
			publish, collect = append(publish, s.publish), append(collect, s.collect)
			i++
		}
		report(b, lat)
		for _, m := range []struct {
			d    []time.Duration
			unit string
		}{
			// The task published and stored, and the result published
			// and stored: the two publications' round trips.
			{publish, "publish-µs"},
			// From the task stored to an agent starting it: the pull's
			// delivery.
			{toAgent, "to-agent-µs"},
			// The agent's part: decoding, the pool's round trip, reading
			// the output; worker-µs of it in the worker.
			{agent, "agent-µs"},
			{worker, "worker-µs"},
			// From the result stored to the run's completion: delivery,
			// decoding, writing the output.
			{collect, "collect-µs"},
		} {
			slices.Sort(m.d)
			b.ReportMetric(micros(percentile(m.d, 0.5)), m.unit)
		}
	})
}

// writePNGs writes n PNG photographs' stand-ins of w×h pixels (smooth
// gradients with texture, so that they neither compress to nothing nor
// cost the encoder its worst case) into dir.
func writePNGs(b *testing.B, dir string, n, w, h int) {
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				o := img.PixOffset(x, y)
				img.Pix[o] = uint8(x*255/w + i*13)
				img.Pix[o+1] = uint8(y*255/h + (x*y)%17)
				img.Pix[o+2] = uint8((x ^ y) + i)
				img.Pix[o+3] = 255
			}
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("photo-%s%02d.png", filepath.Base(dir), i)))
		if err != nil {
			b.Fatal(err)
		}
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(f, img); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// The blur job (σ 2) on 8 PNGs of 2048×1536, read to written through the
// jobs runner: on 1 agent of 1 worker and on 2 agents of 1 worker each
// (speedup target ≥ 1.8×), and beside them the same job on a local pool
// of 1 worker and of 2, and the ceiling: two runs of half the files each
// on one-worker pools at once, what two independent processes get from
// this machine now. Each round runs them one after the other; inputs
// travel through the Object Store on first use (an agent keeps them in
// its cache after that, as a run of several jobs would).
func BenchmarkBlurSpeedup(b *testing.B) {
	const files = 8
	images := b.TempDir()
	for _, half := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(images, half), 0o755); err != nil {
			b.Fatal(err)
		}
		writePNGs(b, filepath.Join(images, half), files/2, 2048, 1536)
	}
	yamlOf := func(glob string) string {
		return fmt.Sprintf("jobs:\n  - name: blur\n    kind: image.blur\n    inputs: %s\n    params: {sigma: 2}\n    output: out/{stem}.png\n", filepath.Join(images, glob))
	}
	run := func(b *testing.B, yaml string, want int, opts func(dir string) jobs.Options) time.Duration {
		plan, dir := planOf(b, yaml)
		o := opts(dir)
		o.Journal = filepath.Join(dir, "journal.jsonl")
		start := time.Now()
		sum, err := jobs.Run(context.Background(), plan, o)
		wall := time.Since(start)
		if err != nil || sum.OK != want {
			b.Errorf("%+v, %v", sum, err)
		}
		return wall
	}
	once := func(b *testing.B, opts func(dir string) jobs.Options) time.Duration {
		return run(b, yamlOf("*/*.png"), files, opts)
	}
	oneWorker := func(string) jobs.Options { return jobs.Options{Workers: 1} }
	onAgents := func(b *testing.B, agents int) func(dir string) jobs.Options {
		s := startServer(b, dist.ServerConfig{})
		for i := range agents {
			startAgent(b, s.URL(), fmt.Sprint("a", i), 1)
		}
		nc, _ := connect(b, dist.ConnOptions{URL: s.URL()})
		return func(dir string) jobs.Options {
			ex, err := dist.NewExecutor(context.Background(), nc, dist.RunConfig{RunID: dist.RunID(filepath.Join(dir, "journal.jsonl"))})
			if err != nil {
				b.Fatal(err)
			}
			for ex.Slots() < agents {
				time.Sleep(10 * time.Millisecond)
			}
			return jobs.Options{Executor: ex}
		}
	}
	one, two := onAgents(b, 1), onAgents(b, 2)
	var local1, local2, halves, nats1, nats2 time.Duration
	for b.Loop() {
		local1 += once(b, oneWorker)
		local2 += once(b, func(string) jobs.Options { return jobs.Options{Workers: 2} })
		start := time.Now()
		var wg sync.WaitGroup
		for _, half := range []string{"a", "b"} {
			wg.Go(func() { run(b, yamlOf(half+"/*.png"), files/2, oneWorker) })
		}
		wg.Wait()
		halves += time.Since(start)
		nats1 += once(b, one)
		nats2 += once(b, two)
	}
	n := float64(b.N)
	b.ReportMetric(local1.Seconds()/n, "local-1w-s")
	b.ReportMetric(local2.Seconds()/n, "local-2w-s")
	b.ReportMetric(nats1.Seconds()/n, "nats-1a-s")
	b.ReportMetric(nats2.Seconds()/n, "nats-2a-s")
	b.ReportMetric(local1.Seconds()/local2.Seconds(), "local-speedup")
	b.ReportMetric(local1.Seconds()/halves.Seconds(), "ceiling")
	b.ReportMetric(nats1.Seconds()/nats2.Seconds(), "nats-speedup")
	b.ReportMetric(nats2.Seconds()/local2.Seconds(), "nats-2a÷local-2w")
}

// 8 MiB blobs through the Object Store, as a run's input reaches an agent
// (and an output comes back): stored from a file (putFile), then fetched
// to another, hash checked and renamed into place (getFile). Reports MB/s
// of blob moved, put and get together (target ≥ 200 MB/s), and each
// alone.
func BenchmarkObjectStore(b *testing.B) {
	const size = 8 << 20
	s := startServer(b, dist.ServerConfig{})
	_, js := connect(b, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	obs, err := dist.FileBucketForTest(ctx, js, true)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	src, dst := filepath.Join(dir, "blob"), filepath.Join(dir, "fetched")
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	var put, get time.Duration
	for b.Loop() {
		// A fresh blob each time: content-addressed, one already stored
		// would not be stored again.
		b.StopTimer()
		rng.Read(data)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		b.StartTimer()
		t0 := time.Now()
		if err := dist.PutFileForTest(ctx, obs, src, hash); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := dist.GetFileForTest(ctx, obs, hash, dst); err != nil {
			b.Fatal(err)
		}
		put, get = put+t1.Sub(t0), get+time.Since(t1)
		b.StopTimer()
		if err := obs.Delete(ctx, hash); err != nil { // keep the store small
			b.Fatal(err)
		}
		b.StartTimer()
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/(put+get).Seconds(), "MB/s")
	b.ReportMetric(mb/put.Seconds(), "put-MB/s")
	b.ReportMetric(mb/get.Seconds(), "get-MB/s")
}
