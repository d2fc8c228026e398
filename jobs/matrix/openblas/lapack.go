//go:build (linux || darwin) && (amd64 || arm64)

package openblas

import (
	"fmt"
	"math"
	"strings"

	"github.com/ebitengine/purego"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
)

// lapackFunctions are the Fortran LAPACK routines bound from OpenBLAS,
// which bundles LAPACK. Fortran passes every argument by reference; each
// CHARACTER argument adds a hidden length argument at the end (gfortran's
// convention, harmless for routines OpenBLAS writes in C). Integers are
// 32-bit: LAPACK is not used with a 64-bit-integer OpenBLAS.
type lapackFunctions struct {
	dgesdd func(jobz *byte, m, n *int32, a []float64, lda *int32, s, u []float64, ldu *int32, vt []float64, ldvt *int32, work []float64, lwork *int32, iwork []int32, info *int32, jobzLen uintptr)
	dsyevd func(jobz, uplo *byte, n *int32, a []float64, lda *int32, w, work []float64, lwork *int32, iwork []int32, liwork, info *int32, jobzLen, uploLen uintptr)
	dgeev  func(jobvl, jobvr *byte, n *int32, a []float64, lda *int32, wr, wi, vl []float64, ldvl *int32, vr []float64, ldvr *int32, work []float64, lwork, info *int32, jobvlLen, jobvrLen uintptr)
}

// bindLAPACK binds the LAPACK routines, or reports why they cannot be used.
func bindLAPACK(lib *library) (*lapackFunctions, error) {
	if strings.Contains(lib.getConfig(), "USE64BITINT") {
		return nil, fmt.Errorf("openblas: %s uses 64-bit integers; its LAPACK is not used", lib.path)
	}
	fns := &lapackFunctions{}
	for _, sym := range []struct {
		name string
		fn   any
	}{
		{"dgesdd_", &fns.dgesdd},
		{"dsyevd_", &fns.dsyevd},
		{"dgeev_", &fns.dgeev},
	} {
		addr, err := purego.Dlsym(lib.handle, sym.name)
		if err != nil || addr == 0 {
			return nil, fmt.Errorf("openblas: %s has no LAPACK routine %s", lib.path, sym.name)
		}
		purego.RegisterFunc(sym.fn, addr)
	}
	return fns, nil
}

// LAPACK is a [lapack.Float64] that runs the singular value decomposition
// (Dgesvd, as LAPACK's divide-and-conquer dgesdd), the symmetric eigen
// decomposition (Dsyev, as dsyevd) and the general eigen decomposition
// (Dgeev) in OpenBLAS's bundled LAPACK, the routines NumPy uses, and
// everything else in gonum's native code, which it embeds. gonum's own
// versions of these three are 6 to 50 times slower (their rotations run in
// Go, not in the BLAS).
//
// Install it with lapack64.Use. Calls that these overrides do not cover
// (a zero dimension, different jobs for U and Vᵀ, overwriting A with
// singular vectors, left eigenvectors) and calls with invalid arguments run
// gonum's code, which panics with its own messages.
//
// Results agree with gonum's to rounding, but singular vectors and
// eigenvectors may differ from gonum's by their sign (or, for complex
// eigenvectors, a unit factor), as they are unique only up to it.
type LAPACK struct {
	lapackgonum.Implementation
	fns *lapackFunctions
}

var _ lapack.Float64 = (*LAPACK)(nil)

// LAPACK returns OpenBLAS's LAPACK as a gonum lapack.Float64, or an error
// if the library lacks the routines or uses 64-bit integers.
func (impl *Implementation) LAPACK() (*LAPACK, error) {
	if impl.lapack == nil {
		return nil, impl.lapackErr
	}
	return impl.lapack, nil
}

// fortranInts converts dimensions for a call, reporting false if one does
// not fit a Fortran INTEGER.
func fortranInts(values ...int) ([]int32, bool) {
	out := make([]int32, len(values))
	for i, v := range values {
		if v < 0 || v > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(v)
	}
	return out, true
}

// workspace returns work[:lwork] if it holds need elements, else a new
// slice: callers size work by a query, but may pass less.
func workspace(work []float64, lwork, need int) []float64 {
	if lwork >= need && len(work) >= lwork {
		return work[:lwork]
	}
	return make([]float64, need)
}

func checkInfo(routine string, info int32) {
	if info < 0 {
		// The arguments were checked before the call.
		panic(fmt.Sprintf("openblas: %s rejected argument %d", routine, -info))
	}
}

// Dgesvd computes the singular value decomposition of the m×n row-major
// matrix a; see [lapackgonum.Implementation.Dgesvd]. It returns false if
// the decomposition did not converge.
func (impl *LAPACK) Dgesvd(jobU, jobVT lapack.SVDJob, m, n int, a []float64, lda int, s, u []float64, ldu int, vt []float64, ldvt int, work []float64, lwork int) (ok bool) {
	if !impl.svdArgsOK(jobU, jobVT, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork) {
		return impl.Implementation.Dgesvd(jobU, jobVT, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork)
	}
	p := min(m, n)
	// Row-major A (m×n) is column-major Aᵀ (n×m). With Aᵀ = U'·Σ·V'ᵀ,
	// A = V'·Σ·U'ᵀ: LAPACK's U' (n×p column-major) is our Vᵀ (p×n
	// row-major) and its V'ᵀ (p×m column-major) our U (m×p row-major), in
	// the same memory. So call dgesdd on Aᵀ with the roles of u and vt
	// swapped.
	dims, _ := fortranInts(n, m, lda, max(1, ldvt), max(1, ldu))
	mT, nT, ldaT, lduT, ldvtT := dims[0], dims[1], dims[2], dims[3], dims[4]
	jobz := byte(jobU)
	if jobz == byte(lapack.SVDNone) {
		u, vt = make([]float64, 1), make([]float64, 1)
	}
	iwork := make([]int32, 8*p)
	var info int32
	query := []float64{0}
	lw := int32(-1)
	impl.fns.dgesdd(&jobz, &mT, &nT, a, &ldaT, s, vt, &lduT, u, &ldvtT, query, &lw, iwork, &info, 1)
	checkInfo("dgesdd", info)
	need := int(query[0])
	if lwork == -1 {
		// Report the larger of dgesdd's need and gonum's, in case a later
		// call with other arguments falls back to gonum.
		impl.Implementation.Dgesvd(jobU, jobVT, m, n, a, lda, s, u, ldu, vt, ldvt, work, -1)
		work[0] = max(work[0], float64(need))
		return true
	}
	work = workspace(work, lwork, need)
	lw = int32(len(work))
	impl.fns.dgesdd(&jobz, &mT, &nT, a, &ldaT, s, vt, &lduT, u, &ldvtT, work, &lw, iwork, &info, 1)
	checkInfo("dgesdd", info)
	return info == 0
}

func (impl *LAPACK) svdArgsOK(jobU, jobVT lapack.SVDJob, m, n int, a []float64, lda int, s, u []float64, ldu int, vt []float64, ldvt int, work []float64, lwork int) bool {
	p := min(m, n)
	if jobU != jobVT || m <= 0 || n <= 0 || len(s) < p || !fitsMatrix(m, n, lda, len(a)) || (lwork < 1 && lwork != -1) || len(work) < max(1, lwork) {
		return false
	}
	if _, ok := fortranInts(m, n, lda, ldu, ldvt, 8*p); !ok {
		return false
	}
	switch jobU {
	case lapack.SVDNone:
		return true
	case lapack.SVDStore:
		return fitsMatrix(m, p, ldu, len(u)) && fitsMatrix(p, n, ldvt, len(vt))
	case lapack.SVDAll:
		return fitsMatrix(m, m, ldu, len(u)) && fitsMatrix(n, n, ldvt, len(vt))
	}
	return false // SVDOverwrite, or invalid: gonum's code
}

// Dsyev computes the eigenvalues, in ascending order, and optionally the
// eigenvectors of the n×n symmetric matrix a; see
// [lapackgonum.Implementation.Dsyev]. It returns false if the
// decomposition did not converge.
func (impl *LAPACK) Dsyev(jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) (ok bool) {
	if (jobz != lapack.EVCompute && jobz != lapack.EVNone) || (uplo != blas.Upper && uplo != blas.Lower) ||
		n <= 0 || !fitsMatrix(n, n, lda, len(a)) || len(w) < n || (lwork < 1 && lwork != -1) || len(work) < max(1, lwork) {
		return impl.Implementation.Dsyev(jobz, uplo, n, a, lda, w, work, lwork)
	}
	if _, fits := fortranInts(n, lda, 2*n*n+6*n+1); !fits {
		return impl.Implementation.Dsyev(jobz, uplo, n, a, lda, w, work, lwork)
	}
	job := byte(jobz)
	// The upper triangle of a row-major matrix is the lower triangle of
	// the same memory read column-major.
	triangle := byte('L')
	if uplo == blas.Lower {
		triangle = 'U'
	}
	n32, lda32 := int32(n), int32(lda)
	var info int32
	query, iquery := []float64{0}, []int32{0}
	lw, liw := int32(-1), int32(-1)
	impl.fns.dsyevd(&job, &triangle, &n32, a, &lda32, w, query, &lw, iquery, &liw, &info, 1, 1)
	checkInfo("dsyevd", info)
	need := int(query[0])
	if lwork == -1 {
		impl.Implementation.Dsyev(jobz, uplo, n, a, lda, w, work, -1)
		work[0] = max(work[0], float64(need))
		return true
	}
	work = workspace(work, lwork, need)
	iwork := make([]int32, iquery[0])
	lw, liw = int32(len(work)), iquery[0]
	impl.fns.dsyevd(&job, &triangle, &n32, a, &lda32, w, work, &lw, iwork, &liw, &info, 1, 1)
	checkInfo("dsyevd", info)
	if info != 0 {
		return false
	}
	if jobz == lapack.EVCompute {
		// dsyevd leaves the eigenvectors in the columns of a column-major
		// matrix, that is in the rows of ours: transpose.
		for i := range n {
			for j := i + 1; j < n; j++ {
				a[i*lda+j], a[j*lda+i] = a[j*lda+i], a[i*lda+j]
			}
		}
	}
	return true
}

// Dgeev computes the eigenvalues and optionally the right eigenvectors of
// the n×n general matrix a; see [lapackgonum.Implementation.Dgeev]. It
// returns 0, or the index of the first eigenvalue that converged if the
// computation failed. Unlike gonum's, it leaves a unchanged.
func (impl *LAPACK) Dgeev(jobvl lapack.LeftEVJob, jobvr lapack.RightEVJob, n int, a []float64, lda int, wr, wi []float64, vl []float64, ldvl int, vr []float64, ldvr int, work []float64, lwork int) (first int) {
	wantVectors := jobvr == lapack.RightEVCompute
	if jobvl != lapack.LeftEVNone || (!wantVectors && jobvr != lapack.RightEVNone) || n <= 0 ||
		!fitsMatrix(n, n, lda, len(a)) || len(wr) < n || len(wi) < n ||
		(wantVectors && !fitsMatrix(n, n, ldvr, len(vr))) || (lwork < 1 && lwork != -1) || len(work) < max(1, lwork) {
		return impl.Implementation.Dgeev(jobvl, jobvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, work, lwork)
	}
	if _, fits := fortranInts(n, n*n); !fits {
		return impl.Implementation.Dgeev(jobvl, jobvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, work, lwork)
	}
	left, right := byte(jobvl), byte(jobvr)
	n32, one := int32(n), int32(1)
	var info int32
	dummy := make([]float64, 1)
	query := []float64{0}
	lw := int32(-1)
	impl.fns.dgeev(&left, &right, &n32, dummy, &n32, wr, wi, dummy, &one, dummy, &n32, query, &lw, &info, 1, 1)
	checkInfo("dgeev", info)
	need := int(query[0])
	if lwork == -1 {
		impl.Implementation.Dgeev(jobvl, jobvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, work, -1)
		work[0] = max(work[0], float64(need))
		return 0
	}
	work = workspace(work, lwork, need)
	lw = int32(len(work))
	// Unlike a symmetric matrix, a general one must really be transposed
	// into column-major order, and its eigenvectors back.
	columnMajor := make([]float64, n*n)
	for i := range n {
		for j := range n {
			columnMajor[j*n+i] = a[i*lda+j]
		}
	}
	vectors := dummy
	if wantVectors {
		vectors = make([]float64, n*n)
	}
	impl.fns.dgeev(&left, &right, &n32, columnMajor, &n32, wr, wi, dummy, &one, vectors, &n32, work, &lw, &info, 1, 1)
	checkInfo("dgeev", info)
	if info == 0 && wantVectors {
		for i := range n {
			for j := range n {
				vr[i*ldvr+j] = vectors[j*n+i]
			}
		}
	}
	return int(info)
}
