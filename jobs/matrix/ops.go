package matrix

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// Multiply returns the product a·b. It fails with [ErrShape] unless a has
// as many columns as b has rows.
func Multiply(a, b mat.Matrix) (*mat.Dense, error) {
	if err := useBackend("multiply"); err != nil {
		return nil, err
	}
	ar, ac := a.Dims()
	br, bc := b.Dims()
	if ac != br {
		return nil, fmt.Errorf("multiply: %w: A is %d×%d, B is %d×%d; A's columns must equal B's rows", ErrShape, ar, ac, br, bc)
	}
	c := mat.NewDense(ar, bc, nil)
	c.Mul(a, b)
	return c, nil
}

// Solve returns x such that a·x = b, for a square a and any number of
// right-hand sides (the columns of b), by LU factorization with partial
// pivoting, as numpy.linalg.solve.
//
// It fails with [ErrShape] if a is not square or b's rows differ from a's,
// with [ErrNotFinite] if a or b has a NaN or infinite entry, and with
// [ErrSingular] if a is singular. If a is ill-conditioned it returns x
// together with an [*IllConditionedError].
func Solve(a, b mat.Matrix) (*mat.Dense, error) {
	if err := useBackend("solve"); err != nil {
		return nil, err
	}
	n, nc := a.Dims()
	br, bc := b.Dims()
	if n != nc {
		return nil, fmt.Errorf("solve: %w: A is %d×%d, want a square matrix", ErrShape, n, nc)
	}
	if br != n {
		return nil, fmt.Errorf("solve: %w: A is %d×%d, B is %d×%d; B must have %d rows", ErrShape, n, nc, br, bc, n)
	}
	if err := checkFinite("solve", "B", b); err != nil {
		return nil, err
	}
	lu, err := factorLU("solve", a)
	if err != nil {
		return nil, err
	}
	x := mat.DenseCopyOf(b)
	lapack64.Getrs(blas.NoTrans, lu.factors, x.RawMatrix(), lu.pivots)
	return x, lu.conditionError("solve")
}

// Inverse returns the inverse of a square matrix, by LU factorization as
// numpy.linalg.inv.
//
// It fails with [ErrShape] if a is not square, with [ErrNotFinite] if a has
// a NaN or infinite entry, and with [ErrSingular] if a is singular. If a is
// ill-conditioned it returns the inverse together with an
// [*IllConditionedError].
func Inverse(a mat.Matrix) (*mat.Dense, error) {
	if err := useBackend("inverse"); err != nil {
		return nil, err
	}
	if r, c := a.Dims(); r != c {
		return nil, fmt.Errorf("inverse: %w: A is %d×%d, want a square matrix", ErrShape, r, c)
	}
	lu, err := factorLU("inverse", a)
	if err != nil {
		return nil, err
	}
	inv := lu.factors
	work := []float64{0}
	lapack64.Getri(inv, lu.pivots, work, -1) // workspace query
	work = make([]float64, int(work[0]))
	if !lapack64.Getri(inv, lu.pivots, work, len(work)) {
		// Unreachable: factorLU has rejected zero pivots.
		return nil, fmt.Errorf("inverse: %w", ErrSingular)
	}
	return mat.NewDense(inv.Rows, inv.Cols, inv.Data), lu.conditionError("inverse")
}

// luFactors is an LU factorization of a square matrix.
type luFactors struct {
	factors   blas64.General
	pivots    []int
	condition float64 // estimated 1-norm condition number
}

func factorLU(op string, a mat.Matrix) (*luFactors, error) {
	if err := checkFinite(op, "A", a); err != nil {
		return nil, err
	}
	n, _ := a.Dims()
	factors := mat.DenseCopyOf(a).RawMatrix()
	work := make([]float64, 4*n)
	norm := lapack64.Lange(lapack.MaxColumnSum, factors, work)
	pivots := make([]int, n)
	if !lapack64.Getrf(factors, pivots) {
		return nil, fmt.Errorf("%s: %w: a pivot of its LU factorization is exactly zero", op, ErrSingular)
	}
	rcond := lapack64.Gecon(lapack.MaxColumnSum, factors, norm, work, make([]int, n))
	condition := 1 / rcond
	if norm == 0 {
		condition = math.Inf(1)
	}
	if !(condition <= singularLimit) { // also NaN
		return nil, fmt.Errorf("%s: %w to working precision: condition number ≈ %.3g", op, ErrSingular, condition)
	}
	return &luFactors{factors: factors, pivots: pivots, condition: condition}, nil
}

// conditionError returns an *IllConditionedError if the factored matrix is
// ill-conditioned, else nil.
func (lu *luFactors) conditionError(op string) error {
	if lu.condition > ConditionLimit {
		return &IllConditionedError{Op: op, Condition: lu.condition}
	}
	return nil
}

// checkFinite fails with ErrNotFinite at the first NaN or infinite entry.
func checkFinite(op, name string, a mat.Matrix) error {
	r, c := a.Dims()
	raw, isRaw := a.(mat.RawMatrixer)
	for i := range r {
		var row []float64
		if isRaw { // a direct view: no At call per entry
			m := raw.RawMatrix()
			row = m.Data[i*m.Stride : i*m.Stride+c]
		} else {
			row = mat.Row(nil, i, a)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s: %w: %s[%d, %d] = %v", op, ErrNotFinite, name, i, j, v)
			}
		}
	}
	return nil
}

// SVDResult is a thin singular value decomposition A = U·diag(Values)·Vᵀ of
// an m×n matrix, with p = min(m, n).
type SVDResult struct {
	// Values are the p singular values, in descending order.
	Values []float64
	// U is m×p with orthonormal columns, the left singular vectors; nil
	// unless vectors were asked for.
	U *mat.Dense
	// V is n×p with orthonormal columns, the right singular vectors; nil
	// unless vectors were asked for. NumPy's svd returns its transpose,
	// vh = Vᵀ. Each pair of columns of U and V is unique only up to a
	// common sign (and within repeated singular values), so compare
	// vectors with another library's through U·diag(Values)·Vᵀ.
	V *mat.Dense
}

// SVD computes the singular value decomposition of a, with the singular
// vectors if vectors is true, like numpy.linalg.svd(a,
// full_matrices=False). It fails with [ErrNotFinite] if a has a NaN or
// infinite entry.
func SVD(a mat.Matrix, vectors bool) (*SVDResult, error) {
	if err := useBackend("svd"); err != nil {
		return nil, err
	}
	if err := checkFinite("svd", "A", a); err != nil {
		return nil, err
	}
	kind := mat.SVDNone
	if vectors {
		kind = mat.SVDThin
	}
	var svd mat.SVD
	if !svd.Factorize(a, kind) {
		return nil, errors.New("svd: the decomposition did not converge")
	}
	result := &SVDResult{Values: svd.Values(nil)}
	if vectors {
		result.U, result.V = new(mat.Dense), new(mat.Dense)
		svd.UTo(result.U)
		svd.VTo(result.V)
	}
	return result, nil
}

// EigenResult holds the eigenvalues and, if asked for, the right
// eigenvectors of a square matrix: A·v_j = λ_j·v_j with v_j the j-th column
// of Vectors.
type EigenResult struct {
	// Symmetric reports that A was exactly symmetric, so the symmetric
	// algorithm ran (as numpy.linalg.eigh): the values are real, in
	// ascending order, and the vectors are real and orthonormal.
	// Otherwise the general algorithm ran (as numpy.linalg.eig, LAPACK
	// dgeev, in gonum's port or OpenBLAS's original): values are unsorted,
	// in the order dgeev finds them, complex conjugate pairs adjacent with
	// the positive imaginary part first, and each vector has unit
	// Euclidean norm.
	Symmetric bool
	// Values are the n eigenvalues; their imaginary parts are zero when
	// Symmetric.
	Values []complex128
	// Vectors is n×n, column j the eigenvector of Values[j]; nil unless
	// vectors were asked for. Eigenvectors are unique only up to a factor
	// (a sign for real ones), so compare them with another library's
	// through A·v = λ·v.
	Vectors *mat.CDense
}

// Eigen computes the eigenvalues of a square matrix, and its right
// eigenvectors if vectors is true. A matrix that equals its transpose
// exactly takes the symmetric algorithm; see [EigenResult]. It fails with
// [ErrShape] if a is not square and [ErrNotFinite] if a has a NaN or
// infinite entry.
func Eigen(a mat.Matrix, vectors bool) (*EigenResult, error) {
	if err := useBackend("eigen"); err != nil {
		return nil, err
	}
	n, c := a.Dims()
	if n != c {
		return nil, fmt.Errorf("eigen: %w: A is %d×%d, want a square matrix", ErrShape, n, c)
	}
	if err := checkFinite("eigen", "A", a); err != nil {
		return nil, err
	}
	if sym, ok := asSymmetric(a); ok {
		var eig mat.EigenSym
		if !eig.Factorize(sym, vectors) {
			return nil, errors.New("eigen: the symmetric decomposition did not converge")
		}
		values := eig.Values(nil)
		result := &EigenResult{Symmetric: true, Values: make([]complex128, n)}
		for i, v := range values {
			result.Values[i] = complex(v, 0)
		}
		if vectors {
			var real mat.Dense
			eig.VectorsTo(&real)
			result.Vectors = mat.NewCDense(n, n, nil)
			for i := range n {
				for j := range n {
					result.Vectors.Set(i, j, complex(real.At(i, j), 0))
				}
			}
		}
		return result, nil
	}
	kind := mat.EigenNone
	if vectors {
		kind = mat.EigenRight
	}
	var eig mat.Eigen
	if !eig.Factorize(a, kind) {
		return nil, errors.New("eigen: the decomposition did not converge")
	}
	result := &EigenResult{Values: eig.Values(nil)}
	if vectors {
		result.Vectors = new(mat.CDense)
		eig.VectorsTo(result.Vectors)
	}
	return result, nil
}

// asSymmetric returns a as a mat.Symmetric if it equals its transpose
// exactly.
func asSymmetric(a mat.Matrix) (mat.Symmetric, bool) {
	n, _ := a.Dims()
	for i := range n {
		for j := range i {
			if a.At(i, j) != a.At(j, i) {
				return nil, false
			}
		}
	}
	sym := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			sym.SetSym(i, j, a.At(i, j))
		}
	}
	return sym, true
}

// ValuesMatrix returns the eigenvalues as an n×2 matrix whose row j is
// (real part, imaginary part) of λ_j: the layout in which eigenvalues are
// written to .npy and .csv files, which hold real numbers only.
func (e *EigenResult) ValuesMatrix() *mat.Dense {
	m := mat.NewDense(len(e.Values), 2, nil)
	for i, v := range e.Values {
		m.Set(i, 0, real(v))
		m.Set(i, 1, imag(v))
	}
	return m
}

// VectorParts returns the real and imaginary parts of the eigenvectors as
// two n×n matrices, the layout in which they are written to files, or nil,
// nil if vectors were not computed. The imaginary part is all zeros when
// Symmetric.
func (e *EigenResult) VectorParts() (re, im *mat.Dense) {
	if e.Vectors == nil {
		return nil, nil
	}
	r, c := e.Vectors.Dims()
	re, im = mat.NewDense(r, c, nil), mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			v := e.Vectors.At(i, j)
			re.Set(i, j, real(v))
			im.Set(i, j, imag(v))
		}
	}
	return re, im
}
