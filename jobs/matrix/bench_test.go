package matrix

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// BenchmarkMultiply measures Multiply of two n×n matrices on each backend,
// through the package's API. Run it with -cpu 1 to measure one core, as a
// worker process has: gonum spreads a product over GOMAXPROCS goroutines,
// OpenBLAS runs on one thread unless OPENBLAS_NUM_THREADS says otherwise.
//
//	go test -run '^$' -bench Multiply -cpu 1 ./jobs/matrix/
func BenchmarkMultiply(b *testing.B) {
	forEachBackendBench(b, func(b *testing.B) {
		for _, n := range []int{256, 1024} {
			b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
				x, _ := Random(n, n, 1)
				y, _ := Random(n, n, 2)
				for b.Loop() {
					if _, err := Multiply(x, y); err != nil {
						b.Fatal(err)
					}
				}
				flops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	})
}

// BenchmarkSolve measures Solve with n right-hand sides (the work of an
// inverse: 8/3·n³ flops for LU and the solves).
func BenchmarkSolve(b *testing.B) {
	forEachBackendBench(b, func(b *testing.B) {
		const n = 512
		x, _ := Random(n, n, 1)
		for i := range n {
			x.Set(i, i, x.At(i, i)+n)
		}
		for b.Loop() {
			if _, err := Solve(x, x); err != nil {
				b.Fatal(err)
			}
		}
		flops := 8.0 / 3 * n * n * n * float64(b.N)
		b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	})
}

func forEachBackendBench(b *testing.B, bench func(b *testing.B)) {
	if err := CheckBackend(); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{BackendGonum, BackendOpenBLAS} {
		b.Run(name, func(b *testing.B) {
			useForBench(b, name)
			bench(b)
		})
	}
}

// BenchmarkFactorizations measures the other operations at n = 512, in
// ms/op (compare with NumPy, which runs LAPACK itself in OpenBLAS).
func BenchmarkFactorizations(b *testing.B) {
	const n = 512
	a, _ := Random(n, n, 1)
	for i := range n {
		a.Set(i, i, a.At(i, i)+n)
	}
	var sym mat.Dense
	sym.Add(a, a.T())
	ops := []struct {
		name string
		run  func() error
	}{
		{"inverse", func() error { _, err := Inverse(a); return err }},
		{"svd", func() error { _, err := SVD(a, true); return err }},
		{"eigen-symmetric", func() error { _, err := Eigen(&sym, true); return err }},
		{"eigen-general", func() error { _, err := Eigen(a, true); return err }},
	}
	forEachBackendBench(b, func(b *testing.B) {
		for _, op := range ops {
			b.Run(op.name, func(b *testing.B) {
				for b.Loop() {
					if err := op.run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
			})
		}
	})
}
