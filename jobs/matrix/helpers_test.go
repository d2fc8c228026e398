package matrix

import (
	"fmt"
	"math"
	"testing"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/mat"
)

// tolerance is the agreement the package promises with NumPy on float64.
const tolerance = 1e-9

// forEachBackend runs test once per BLAS backend, installing each in
// blas64 for its duration. OpenBLAS is skipped where it is not installed.
// Tests that call it must not run in parallel: the backend is global.
func forEachBackend(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	if err := CheckBackend(); err != nil {
		t.Fatal(err)
	}
	restore := saveBackend()
	t.Cleanup(restore)
	for _, name := range []string{BackendGonum, BackendOpenBLAS} {
		t.Run(name, func(t *testing.T) {
			installBackend(t, name)
			test(t)
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
	if name == BackendGonum {
		useGonum()
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
