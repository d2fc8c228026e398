package openblas_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// load returns OpenBLAS or skips the test: the pure-Go build must pass on
// machines without it.
func load(tb testing.TB) *openblas.Implementation {
	tb.Helper()
	impl, err := openblas.Load()
	if err != nil {
		tb.Skipf("OpenBLAS not installed (apt-get install libopenblas0-pthread): %v", err)
	}
	return impl
}

func randomSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()*2 - 1
	}
	return s
}

// sumTolerance is how far two sums of k products of entries in [-1, 1],
// added in different orders, may differ relative to max(1, |sum|).
func sumTolerance(k int) float64 { return float64(k+1) * 4 * 0x1p-52 }

// closeEnough compares two results of the same BLAS operation computed in a
// different order, relative to max(1, |want|).
func closeEnough(tb testing.TB, name string, got, want []float64, tol float64) {
	tb.Helper()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*math.Max(1, math.Abs(want[i])) || math.IsNaN(got[i]) != math.IsNaN(want[i]) {
			tb.Fatalf("%s: element %d = %v, gonum has %v (diff %g)", name, i, got[i], want[i], d)
		}
	}
}

func TestLoad(t *testing.T) {
	impl := load(t)
	// scripts/blas-kernels.sh reads the kernel from this line.
	t.Logf("path %s, config %q, core %s, threads %d", impl.Path(), impl.Config(), impl.Core(), impl.Threads())
	again, err := openblas.Load()
	if err != nil || again != impl {
		t.Fatalf("second Load = %p, %v; want the same implementation %p", again, err, impl)
	}
	if impl.Threads() < 1 {
		t.Fatalf("Threads() = %d", impl.Threads())
	}
}

func TestDgemmMatchesGonum(t *testing.T) {
	impl := load(t)
	rng := rand.New(rand.NewPCG(1, 2))
	transposes := []blas.Transpose{blas.NoTrans, blas.Trans, blas.ConjTrans}
	for _, size := range []struct{ m, n, k, pad int }{
		{1, 1, 1, 0}, {3, 5, 7, 0}, {17, 9, 33, 3}, {64, 65, 66, 1}, {130, 70, 90, 0},
	} {
		for _, tA := range transposes {
			for _, tB := range transposes {
				name := fmt.Sprintf("%dx%dx%d/pad%d/%c%c", size.m, size.n, size.k, size.pad, tA, tB)
				aRows, aCols := size.m, size.k
				if tA != blas.NoTrans {
					aRows, aCols = aCols, aRows
				}
				bRows, bCols := size.k, size.n
				if tB != blas.NoTrans {
					bRows, bCols = bCols, bRows
				}
				lda, ldb, ldc := aCols+size.pad, bCols+size.pad, size.n+size.pad
				a := randomSlice(rng, (aRows-1)*lda+aCols)
				b := randomSlice(rng, (bRows-1)*ldb+bCols)
				c := randomSlice(rng, (size.m-1)*ldc+size.n)
				want := append([]float64(nil), c...)
				gonum.Implementation{}.Dgemm(tA, tB, size.m, size.n, size.k, 0.5, a, lda, b, ldb, -1.5, want, ldc)
				impl.Dgemm(tA, tB, size.m, size.n, size.k, 0.5, a, lda, b, ldb, -1.5, c, ldc)
				closeEnough(t, name, c, want, sumTolerance(size.k))
			}
		}
	}
}

func TestTriangularMatchesGonum(t *testing.T) {
	impl := load(t)
	rng := rand.New(rand.NewPCG(3, 4))
	type routine func(blas.Float64, blas.Side, blas.Uplo, blas.Transpose, blas.Diag, int, int, float64, []float64, int, []float64, int)
	routines := []struct {
		name string
		run  routine
	}{
		{"Dtrsm", func(f blas.Float64, s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
			f.Dtrsm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		}},
		{"Dtrmm", func(f blas.Float64, s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
			f.Dtrmm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		}},
	}
	for _, routine := range routines {
		for _, size := range []struct{ m, n, pad int }{{1, 1, 0}, {5, 3, 2}, {40, 70, 0}, {90, 33, 1}} {
			for _, s := range []blas.Side{blas.Left, blas.Right} {
				for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
					for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
						for _, d := range []blas.Diag{blas.NonUnit, blas.Unit} {
							order := size.m
							if s == blas.Right {
								order = size.n
							}
							lda, ldb := order+size.pad, size.n+size.pad
							a := randomSlice(rng, (order-1)*lda+order)
							// A well-conditioned triangle, so that both
							// solves agree closely: small off-diagonal
							// entries, a diagonal near 1.
							for i := range a {
								a[i] /= float64(order)
							}
							for i := range order {
								a[i*lda+i] = 1 + rng.Float64()
							}
							b := randomSlice(rng, (size.m-1)*ldb+size.n)
							want := append([]float64(nil), b...)
							routine.run(gonum.Implementation{}, s, ul, tA, d, size.m, size.n, 2, a, lda, want, ldb)
							routine.run(impl, s, ul, tA, d, size.m, size.n, 2, a, lda, b, ldb)
							closeEnough(t, fmt.Sprintf("%s/%dx%d/%c%c%c%c", routine.name, size.m, size.n, s, ul, tA, d), b, want, sumTolerance(order))
						}
					}
				}
			}
		}
	}
}

func TestSymmetricRankKMatchesGonum(t *testing.T) {
	impl := load(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []struct{ n, k, pad int }{{1, 1, 0}, {7, 3, 1}, {50, 80, 0}, {81, 20, 2}} {
		for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
			for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				rows, cols := size.n, size.k
				if tA == blas.Trans {
					rows, cols = cols, rows
				}
				lda, ldc := cols+size.pad, size.n+size.pad
				a := randomSlice(rng, (rows-1)*lda+cols)
				b := randomSlice(rng, (rows-1)*lda+cols)
				c := randomSlice(rng, (size.n-1)*ldc+size.n)
				name := fmt.Sprintf("%dx%d/%c%c", size.n, size.k, ul, tA)

				want := append([]float64(nil), c...)
				got := append([]float64(nil), c...)
				gonum.Implementation{}.Dsyrk(ul, tA, size.n, size.k, 0.7, a, lda, 0.3, want, ldc)
				impl.Dsyrk(ul, tA, size.n, size.k, 0.7, a, lda, 0.3, got, ldc)
				closeEnough(t, "Dsyrk/"+name, got, want, sumTolerance(size.k))

				want = append(want[:0], c...)
				got = append(got[:0], c...)
				gonum.Implementation{}.Dsyr2k(ul, tA, size.n, size.k, 0.7, a, lda, b, lda, 0.3, want, ldc)
				impl.Dsyr2k(ul, tA, size.n, size.k, 0.7, a, lda, b, lda, 0.3, got, ldc)
				closeEnough(t, "Dsyr2k/"+name, got, want, sumTolerance(2*size.k))
			}
		}
	}
}

// TestInvalidArgumentsPanicLikeGonum checks that arguments OpenBLAS must not
// see (short slices, bad leading dimensions, bad enumerations) never reach
// it: gonum's checks panic first, with gonum's message.
func TestInvalidArgumentsPanicLikeGonum(t *testing.T) {
	impl := load(t)
	a := make([]float64, 9)
	b := make([]float64, 9)
	c := make([]float64, 9)
	tests := []struct {
		name string
		call func(blas.Float64)
	}{
		{"short A", func(f blas.Float64) { f.Dgemm(blas.NoTrans, blas.NoTrans, 3, 3, 3, 1, a[:8], 3, b, 3, 0, c, 3) }},
		{"short C", func(f blas.Float64) { f.Dgemm(blas.NoTrans, blas.NoTrans, 3, 3, 3, 1, a, 3, b, 3, 0, c[:2], 3) }},
		{"bad lda", func(f blas.Float64) { f.Dgemm(blas.NoTrans, blas.NoTrans, 3, 3, 3, 1, a, 2, b, 3, 0, c, 3) }},
		{"bad transpose", func(f blas.Float64) { f.Dgemm('X', blas.NoTrans, 3, 3, 3, 1, a, 3, b, 3, 0, c, 3) }},
		{"negative m", func(f blas.Float64) { f.Dgemm(blas.NoTrans, blas.NoTrans, -1, 3, 3, 1, a, 3, b, 3, 0, c, 3) }},
		{"trsm short B", func(f blas.Float64) {
			f.Dtrsm(blas.Left, blas.Upper, blas.NoTrans, blas.NonUnit, 3, 3, 1, a, 3, b[:7], 3)
		}},
		{"trmm bad side", func(f blas.Float64) { f.Dtrmm('X', blas.Upper, blas.NoTrans, blas.NonUnit, 3, 3, 1, a, 3, b, 3) }},
		{"syrk short C", func(f blas.Float64) { f.Dsyrk(blas.Upper, blas.NoTrans, 3, 3, 1, a, 3, 0, c[:5], 3) }},
		{"syr2k bad uplo", func(f blas.Float64) { f.Dsyr2k('X', blas.NoTrans, 3, 3, 1, a, 3, b, 3, 0, c, 3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := panicOf(func() { tt.call(gonum.Implementation{}) })
			if want == nil {
				t.Fatal("gonum did not panic; the case is wrong")
			}
			if got := panicOf(func() { tt.call(impl) }); got != want {
				t.Fatalf("panic %v, want gonum's %v", got, want)
			}
		})
	}
}

func panicOf(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// TestZeroSizes checks the quick returns: gonum handles them, and C is
// scaled by beta when k is zero.
func TestZeroSizes(t *testing.T) {
	impl := load(t)
	c := []float64{1, 2, 3, 4}
	impl.Dgemm(blas.NoTrans, blas.NoTrans, 2, 2, 0, 1, []float64{9}, 1, nil, 2, 2, c, 2)
	if want := []float64{2, 4, 6, 8}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("k=0: C = %v, want %v", c, want)
	}
	impl.Dgemm(blas.NoTrans, blas.NoTrans, 0, 2, 2, 1, nil, 2, c, 2, 0, nil, 2)
}

// BenchmarkDgemm measures C = A*B for square float64 matrices on one
// thread per backend: run it with -cpu 1 so gonum, which spreads Dgemm over
// GOMAXPROCS goroutines, is measured on one core as OpenBLAS is.
func BenchmarkDgemm(b *testing.B) {
	backends := []struct {
		name string
		impl func(testing.TB) blas.Float64
	}{
		{"gonum", func(testing.TB) blas.Float64 { return gonum.Implementation{} }},
		{"openblas", func(tb testing.TB) blas.Float64 { return load(tb) }},
	}
	for _, backend := range backends {
		for _, n := range []int{64, 256, 1024} {
			b.Run(fmt.Sprintf("%s/n=%d", backend.name, n), func(b *testing.B) {
				impl := backend.impl(b)
				rng := rand.New(rand.NewPCG(7, 8))
				x, y, z := randomSlice(rng, n*n), randomSlice(rng, n*n), make([]float64, n*n)
				for b.Loop() {
					impl.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, x, n, y, n, 0, z, n)
				}
				flops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}

// BenchmarkCallOverhead measures the fixed cost of one call into OpenBLAS
// through purego, on a 1×1×1 product.
func BenchmarkCallOverhead(b *testing.B) {
	impl := load(b)
	x, y, z := []float64{2}, []float64{3}, []float64{0}
	for b.Loop() {
		impl.Dgemm(blas.NoTrans, blas.NoTrans, 1, 1, 1, 1, x, 1, y, 1, 0, z, 1)
	}
}
