package dist_test

import (
	"context"
	"fmt"
	"path/filepath"
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
