package pool_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
)

func benchPool(b *testing.B, cfg pool.Config) *pool.Pool {
	b.Helper()
	ctx := context.Background()
	p, err := pool.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(ctx) })
	return p
}

// BenchmarkApplyRoundTrip: one 16-byte Apply at a time; reports the median
// and the 99th percentile round trip.
func BenchmarkApplyRoundTrip(b *testing.B) {
	p := benchPool(b, pool.Config{Threads: threadsForBench()})
	ctx := context.Background()
	msg := []byte("0123456789abcdef")
	for range 1000 { // warm up
		pool.Apply(ctx, p, echo, msg)
	}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := pool.Apply(ctx, p, echo, msg); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkApplyAsync: tiny tasks queued as fast as possible, then awaited.
func BenchmarkApplyAsync(b *testing.B) {
	p := benchPool(b, pool.Config{Env: profileEnv()})
	// A context that can end, as most callers' can: the pool must watch it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 100_000
	rs := make([]*pool.AsyncResult[int], n)
	for b.Loop() {
		for i := range rs {
			rs[i] = pool.ApplyAsync(ctx, p, square, i)
		}
		for _, r := range rs {
			if _, err := r.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkMap: a million tiny items with automatic chunking.
func BenchmarkMap(b *testing.B) {
	p := benchPool(b, pool.Config{})
	ctx := context.Background()
	in := make([]int, 1_000_000)
	for i := range in {
		in[i] = i
	}
	for b.Loop() {
		if _, err := pool.Map(ctx, p, square, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkImapUnordered: tiny items one per message, a bounded window.
func BenchmarkImapUnordered(b *testing.B) {
	p := benchPool(b, pool.Config{})
	ctx := context.Background()
	const n = 200_000
	for b.Loop() {
		count := 0
		for _, err := range pool.ImapUnordered(ctx, p, square, seq(n), pool.Window(512)) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatalf("%d results, want %d", count, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkStart: a pool of one worker per core from New to ready, and Close.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	var start time.Duration
	for b.Loop() {
		t0 := time.Now()
		p, err := pool.New(ctx, pool.Config{})
		if err != nil {
			b.Fatal(err)
		}
		start += time.Since(t0)
		p.Close(ctx)
	}
	b.ReportMetric(float64(start.Microseconds())/1e3/float64(b.N), "start-ms")
}

// BenchmarkIdleRSS reports an idle worker's resident memory.
func BenchmarkIdleRSS(b *testing.B) {
	p := benchPool(b, pool.Config{Workers: 1})
	var rss uint64
	for b.Loop() {
		rss = p.Stats().PerWorker[0].RSS
	}
	b.ReportMetric(float64(rss)/(1<<20), "idle-RSS-MiB")
}

// BenchmarkLaunch compares the two ways of launching the same worker binary
// (this test binary, re-executed): plainly, and through go-plugin. It
// reports a one-worker pool's start-to-ready time and the idle worker's
// resident memory for each.
func BenchmarkLaunch(b *testing.B) {
	ctx := context.Background()
	for _, launch := range []struct {
		name string
		cfg  pool.Config
	}{
		{"plain", pool.Config{Workers: 1, Command: []string{os.Args[0]}, Env: []string{"PPOOL_WORKER=1"}}},
		{"go-plugin", pool.Config{Workers: 1, Command: []string{os.Args[0]}, Launcher: goplugin.Launcher{}, Env: []string{"PPOOL_TEST_PLUGIN=1"}}},
	} {
		b.Run(launch.name, func(b *testing.B) {
			var start time.Duration
			var rss uint64
			for b.Loop() {
				t0 := time.Now()
				p, err := pool.New(ctx, launch.cfg)
				if err != nil {
					b.Fatal(err)
				}
				start += time.Since(t0)
				if _, err := pool.Apply(ctx, p, square, 2); err != nil {
					b.Fatal(err)
				}
				rss += p.Stats().PerWorker[0].RSS
				p.Close(ctx)
			}
			b.ReportMetric(float64(start.Microseconds())/1e3/float64(b.N), "start-ms")
			b.ReportMetric(float64(rss)/(1<<20)/float64(b.N), "idle-RSS-MiB")
		})
	}
}

// profileEnv passes PPOOL_WORKER_CPUPROFILE on to the workers, if set.
func profileEnv() []string {
	if v := os.Getenv("PPOOL_WORKER_CPUPROFILE"); v != "" {
		return []string{"PPOOL_WORKER_CPUPROFILE=" + v}
	}
	return nil
}

func threadsForBench() int {
	n, _ := strconv.Atoi(os.Getenv("PPOOL_BENCH_THREADS"))
	return n
}

func seq(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}
