package matrix

import (
	"fmt"
	"math"
	"testing"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// tolerance is the agreement the package promises with NumPy on float64.
const tolerance = 1e-9

// forEachBackend runs test once per BLAS backend, installing each in
// blas64 for its duration. OpenBLAS is skipped where it is not installed.
// Tests that call it must not run in parallel: the backend is global.
func forEachBackend(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	forBackends(t, []string{BackendGonum, BackendOpenBLAS}, func(t *testing.T, _ string) { test(t) })
}

// productBackends are the backends a tiled product is checked on: the two
// real ones, and backendSizeDependent, which rounds small products
// differently from large ones as OpenBLAS's AVX-512 kernels do, so that
// the checks hold on any BLAS and not only on the kernel this machine runs.
var productBackends = []string{BackendGonum, BackendOpenBLAS, backendSizeDependent}

// forBackends runs test once for each of the named backends, installed as
// installBackend does, in a subtest of the backend's name.
func forBackends(t *testing.T, names []string, test func(t *testing.T, backend string)) {
	t.Helper()
	// Choose the process's backend first, so that the first operation of a
	// test does not choose it again over the one installed for the test.
	if err := CheckBackend(); err != nil {
		t.Fatal(err)
	}
	restore := saveBackend()
	t.Cleanup(restore)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			installBackend(t, name)
			test(t, name)
		})
	}
}

// saveBackend returns a function that reinstalls the backend the package
// chose (lapack64 has no getter to save what is installed).
func saveBackend() (restore func()) {
	return func() {
		if _, err := selectBackend(Backend()); err != nil {
			panic(err)
		}
	}
}

// installBackend installs a backend as selectBackend would, or skips the
// test if it is OpenBLAS and that is not installed.
func installBackend(tb testing.TB, name string) {
	switch name {
	case BackendGonum:
		useGonum()
		return
	case backendSizeDependent:
		blas64.Use(sizeDependentBLAS{})
		lapack64.Use(lapackgonum.Implementation{})
		return
	}
	impl, err := openblas.Load()
	if err != nil {
		tb.Skipf("OpenBLAS not installed (apt-get install libopenblas0-pthread): %v", err)
	}
	if _, err := impl.LAPACK(); err != nil {
		tb.Fatalf("OpenBLAS without its LAPACK: %v", err)
	}
	useOpenBLAS(impl)
}

// backendSizeDependent names a test BLAS whose rounding of a product depends
// on the product's size, as OpenBLAS's does on AVX-512: its SkylakeX and
// Cooperlake kernels send a product of at most 100³ multiply-adds to a
// small-matrix kernel and larger ones to the blocked one, and the two sum
// each element differently. A tile is a small product where the whole is
// a large one. This machine may not run those kernels; this BLAS makes the
// same difference everywhere.
const backendSizeDependent = "sizedependent"

// sizeDependentBLAS is gonum's BLAS, except that Dgemm sums each element of
// a product of at most 100³ multiply-adds with fused multiply-adds in
// reverse order, where gonum multiplies and adds separately in order.
type sizeDependentBLAS struct{ gonum.Implementation }

func (impl sizeDependentBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if tA != blas.NoTrans || tB != blas.NoTrans || m <= 0 || n <= 0 || k <= 0 || m*n*k > 100*100*100 {
		impl.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := range m {
		for j := range n {
			var sum float64
			for l := k - 1; l >= 0; l-- {
				sum = math.FMA(a[i*lda+l], b[l*ldb+j], sum)
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * sum
			} else {
				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
			}
		}
	}
}

// assertClose fails unless got and want have the same shape and every
// entry agrees within rtol relative to the larger of the entry's magnitude
// and the matrix's largest magnitude (so that entries near zero are judged
// against the scale of the result, as a norm-wise comparison would).
func assertClose(tb testing.TB, name string, got, want mat.Matrix, rtol float64) {
	tb.Helper()
	gr, gc := got.Dims()
	wr, wc := want.Dims()
	if gr != wr || gc != wc {
		tb.Fatalf("%s: got %d×%d, want %d×%d", name, gr, gc, wr, wc)
	}
	scale := mat.Norm(want, math.Inf(1)) / float64(wc) // a typical magnitude
	scale = max(scale, maxAbs(want))
	for i := range wr {
		for j := range wc {
			g, w := got.At(i, j), want.At(i, j)
			if math.IsNaN(w) && math.IsNaN(g) || g == w {
				continue
			}
			if math.Abs(g-w) > rtol*max(math.Abs(w), scale) || math.IsNaN(g) {
				tb.Fatalf("%s: [%d, %d] = %.17g, want %.17g (relative difference %.3g)\ngot:\n%v\nwant:\n%v",
					name, i, j, g, w, math.Abs(g-w)/max(math.Abs(w), scale), mat.Formatted(got), mat.Formatted(want))
			}
		}
	}
}

func maxAbs(m mat.Matrix) float64 {
	r, c := m.Dims()
	biggest := 0.0
	for i := range r {
		for j := range c {
			biggest = max(biggest, math.Abs(m.At(i, j)))
		}
	}
	return biggest
}

// assertEqualBits fails unless got and want are bitwise identical, except
// that any NaN matches any NaN: payloads differ between NumPy and Go.
func assertEqualBits(tb testing.TB, name string, got, want mat.Matrix) {
	tb.Helper()
	gr, gc := got.Dims()
	wr, wc := want.Dims()
	if gr != wr || gc != wc {
		tb.Fatalf("%s: got %d×%d, want %d×%d", name, gr, gc, wr, wc)
	}
	for i := range wr {
		for j := range wc {
			g, w := got.At(i, j), want.At(i, j)
			if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
				tb.Fatalf("%s: [%d, %d] = %.17g, want %.17g bit for bit", name, i, j, g, w)
			}
		}
	}
}

func dense(rows, cols int, data ...float64) *mat.Dense {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("dense: %d values for %d×%d", len(data), rows, cols))
	}
	return mat.NewDense(rows, cols, data)
}

func mustRead(tb testing.TB, path string) *mat.Dense {
	tb.Helper()
	m, err := Read(path)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// useForBench installs a backend for a benchmark and restores the previous
// one when it ends.
func useForBench(b *testing.B, name string) {
	b.Cleanup(saveBackend())
	installBackend(b, name)
}
