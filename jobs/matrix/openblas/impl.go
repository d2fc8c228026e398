//go:build (linux || darwin) && (amd64 || arm64)

package openblas

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is a [blas.Float64] that runs the level 3 routines in
// OpenBLAS and everything else in gonum's native code, which it embeds.
// Get one from [Load]; the zero value is not usable.
type Implementation struct {
	gonum.Implementation
	lib *library

	lapack    *LAPACK // nil if the library's LAPACK cannot be used
	lapackErr error
}

var _ blas.Float64 = (*Implementation)(nil)

// Path reports the file or name Load opened.
func (impl *Implementation) Path() string { return impl.lib.path }

// Config reports OpenBLAS's build configuration, e.g.
// "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
func (impl *Implementation) Config() string { return impl.lib.getConfig() }

// Core reports the CPU kernel OpenBLAS chose at load time, e.g. "Haswell".
func (impl *Implementation) Core() string { return impl.lib.getCorename() }

// Threads reports how many threads OpenBLAS uses per call.
func (impl *Implementation) Threads() int { return int(impl.lib.getNumThreads()) }

// CBLAS enumerations (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
	cblasUpper    = 121
	cblasLower    = 122
	cblasNonUnit  = 131
	cblasUnit     = 132
	cblasLeft     = 141
	cblasRight    = 142
)

// The converters return 0 for a value gonum rejects; the caller then hands
// the call to gonum, which panics with its own message.

func cblasTranspose(t blas.Transpose) int {
	switch t {
	case blas.NoTrans:
		return cblasNoTrans
	case blas.Trans, blas.ConjTrans: // the same for real matrices
		return cblasTrans
	}
	return 0
}

func cblasUplo(ul blas.Uplo) int {
	switch ul {
	case blas.Upper:
		return cblasUpper
	case blas.Lower:
		return cblasLower
	}
	return 0
}

func cblasDiag(d blas.Diag) int {
	switch d {
	case blas.NonUnit:
		return cblasNonUnit
	case blas.Unit:
		return cblasUnit
	}
	return 0
}

func cblasSide(s blas.Side) int {
	switch s {
	case blas.Left:
		return cblasLeft
	case blas.Right:
		return cblasRight
	}
	return 0
}

// fitsMatrix reports whether a rows×cols row-major matrix with leading
// dimension ld fits in a slice of length n and every value fits a C int
// (OpenBLAS's default 32-bit blasint). rows and cols must be positive.
func fitsMatrix(rows, cols, ld, n int) bool {
	if rows <= 0 || cols <= 0 || ld < cols || !fitsInt32(rows, cols, ld) {
		return false
	}
	// (rows-1)*ld+cols <= n, written so that it cannot overflow.
	return n >= cols && rows-1 <= (n-cols)/ld
}

func fitsInt32(values ...int) bool {
	for _, v := range values {
		if v < 0 || v > math.MaxInt32 {
			return false
		}
	}
	return true
}

// Dgemm computes C = alpha * op(A) * op(B) + beta * C in OpenBLAS; see
// [gonum.Implementation.Dgemm] for the arguments.
func (impl *Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	ta, tb := cblasTranspose(tA), cblasTranspose(tB)
	aRows, aCols := m, k
	if ta == cblasTrans {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if tb == cblasTrans {
		bRows, bCols = n, k
	}
	if ta == 0 || tb == 0 || !fitsMatrix(aRows, aCols, lda, len(a)) || !fitsMatrix(bRows, bCols, ldb, len(b)) || !fitsMatrix(m, n, ldc, len(c)) {
		impl.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	impl.lib.dgemm(cblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dtrsm solves op(A) * X = alpha * B or X * op(A) = alpha * B for X,
// overwriting B, in OpenBLAS; see [gonum.Implementation.Dtrsm].
func (impl *Implementation) Dtrsm(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	if !impl.triangularArgsOK(s, ul, tA, d, m, n, a, lda, b, ldb) {
		impl.Implementation.Dtrsm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		return
	}
	impl.lib.dtrsm(cblasRowMajor, cblasSide(s), cblasUplo(ul), cblasTranspose(tA), cblasDiag(d), m, n, alpha, a, lda, b, ldb)
}

// Dtrmm computes B = alpha * op(A) * B or B = alpha * B * op(A) for a
// triangular A in OpenBLAS; see [gonum.Implementation.Dtrmm].
func (impl *Implementation) Dtrmm(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	if !impl.triangularArgsOK(s, ul, tA, d, m, n, a, lda, b, ldb) {
		impl.Implementation.Dtrmm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		return
	}
	impl.lib.dtrmm(cblasRowMajor, cblasSide(s), cblasUplo(ul), cblasTranspose(tA), cblasDiag(d), m, n, alpha, a, lda, b, ldb)
}

func (impl *Implementation) triangularArgsOK(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, a []float64, lda int, b []float64, ldb int) bool {
	if cblasSide(s) == 0 || cblasUplo(ul) == 0 || cblasTranspose(tA) == 0 || cblasDiag(d) == 0 {
		return false
	}
	order := m // A is m×m on the left, n×n on the right
	if s == blas.Right {
		order = n
	}
	return fitsMatrix(order, order, lda, len(a)) && fitsMatrix(m, n, ldb, len(b))
}

// Dsyrk computes the symmetric rank-k update C = alpha * A * Aᵀ + beta * C
// or C = alpha * Aᵀ * A + beta * C in OpenBLAS; see
// [gonum.Implementation.Dsyrk].
func (impl *Implementation) Dsyrk(ul blas.Uplo, tA blas.Transpose, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	aRows, aCols := n, k
	if tA != blas.NoTrans {
		aRows, aCols = k, n
	}
	if cblasUplo(ul) == 0 || cblasTranspose(tA) == 0 || !fitsMatrix(aRows, aCols, lda, len(a)) || !fitsMatrix(n, n, ldc, len(c)) {
		impl.Implementation.Dsyrk(ul, tA, n, k, alpha, a, lda, beta, c, ldc)
		return
	}
	impl.lib.dsyrk(cblasRowMajor, cblasUplo(ul), cblasTranspose(tA), n, k, alpha, a, lda, beta, c, ldc)
}

// Dsyr2k computes the symmetric rank-2k update
// C = alpha * (A * Bᵀ + B * Aᵀ) + beta * C or its transposed form in
// OpenBLAS; see [gonum.Implementation.Dsyr2k].
func (impl *Implementation) Dsyr2k(ul blas.Uplo, tA blas.Transpose, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	rows, cols := n, k
	if tA != blas.NoTrans {
		rows, cols = k, n
	}
	if cblasUplo(ul) == 0 || cblasTranspose(tA) == 0 || !fitsMatrix(rows, cols, lda, len(a)) || !fitsMatrix(rows, cols, ldb, len(b)) || !fitsMatrix(n, n, ldc, len(c)) {
		impl.Implementation.Dsyr2k(ul, tA, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	impl.lib.dsyr2k(cblasRowMajor, cblasUplo(ul), cblasTranspose(tA), n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
