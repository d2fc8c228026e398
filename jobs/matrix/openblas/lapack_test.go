package openblas_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

func loadLAPACK(tb testing.TB) *openblas.LAPACK {
	tb.Helper()
	impl, err := load(tb).LAPACK()
	if err != nil {
		tb.Fatalf("OpenBLAS is loaded but its LAPACK is not: %v", err)
	}
	return impl
}

// queryAndRun calls a LAPACK routine the way gonum's mat package does: a
// workspace query, then the call with the workspace it asked for.
func queryAndRun(run func(work []float64, lwork int)) {
	work := []float64{0}
	run(work, -1)
	work = make([]float64, int(work[0]))
	run(work, len(work))
}

// TestDgesvdMatchesGonum compares singular values with gonum's and checks
// that the vectors reconstruct A, for tall, wide and square matrices with
// padded rows, for each job both routines share.
func TestDgesvdMatchesGonum(t *testing.T) {
	impl := loadLAPACK(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, size := range []struct{ m, n, pad int }{{1, 1, 0}, {9, 4, 2}, {4, 9, 0}, {30, 30, 1}, {120, 70, 3}} {
		for _, job := range []lapack.SVDJob{lapack.SVDNone, lapack.SVDStore, lapack.SVDAll} {
			name := fmt.Sprintf("%dx%d/pad%d/%c", size.m, size.n, size.pad, job)
			m, n, p := size.m, size.n, min(size.m, size.n)
			lda := n + size.pad
			a := randomSlice(rng, (m-1)*lda+n)
			uCols, vtRows := p, p
			if job == lapack.SVDAll {
				uCols, vtRows = m, n
			}
			ldu, ldvt := uCols+size.pad, n+size.pad
			var u, vt []float64
			if job != lapack.SVDNone {
				u, vt = make([]float64, (m-1)*ldu+uCols), make([]float64, (vtRows-1)*ldvt+n)
			} else {
				ldu, ldvt = 1, 1
			}

			want := make([]float64, p)
			aCopy := slices.Clone(a)
			queryAndRun(func(work []float64, lwork int) {
				lapackgonum.Implementation{}.Dgesvd(lapack.SVDNone, lapack.SVDNone, m, n, aCopy, lda, want, nil, 1, nil, 1, work, lwork)
			})
			s := make([]float64, p)
			aCopy = slices.Clone(a)
			ok := true
			queryAndRun(func(work []float64, lwork int) {
				ok = impl.Dgesvd(job, job, m, n, aCopy, lda, s, u, ldu, vt, ldvt, work, lwork)
			})
			if !ok {
				t.Fatalf("%s: did not converge", name)
			}
			closeEnough(t, name+"/values", s, want, 1e-13)
			if job == lapack.SVDNone {
				continue
			}
			// A = U[:, :p] · diag(s) · Vᵀ[:p, :].
			uMat := mat.NewDense(m, uCols, nil)
			uMat.SetRawMatrix(blas64.General{Rows: m, Cols: uCols, Stride: ldu, Data: u})
			vtMat := mat.NewDense(vtRows, n, nil)
			vtMat.SetRawMatrix(blas64.General{Rows: vtRows, Cols: n, Stride: ldvt, Data: vt})
			var us, usvt mat.Dense
			us.Mul(uMat.Slice(0, m, 0, p), mat.NewDiagDense(p, s))
			usvt.Mul(&us, vtMat.Slice(0, p, 0, n))
			aMat := mat.NewDense(m, n, nil)
			aMat.SetRawMatrix(blas64.General{Rows: m, Cols: n, Stride: lda, Data: a})
			if !mat.EqualApprox(&usvt, aMat, 1e-12) {
				t.Fatalf("%s: U·S·Vᵀ differs from A", name)
			}
		}
	}
}

func TestDsyevMatchesGonum(t *testing.T) {
	impl := loadLAPACK(t)
	rng := rand.New(rand.NewPCG(13, 14))
	for _, size := range []struct{ n, pad int }{{1, 0}, {5, 2}, {64, 0}, {101, 1}} {
		for _, uplo := range []blas.Uplo{blas.Upper, blas.Lower} {
			for _, jobz := range []lapack.EVJob{lapack.EVNone, lapack.EVCompute} {
				name := fmt.Sprintf("n%d/pad%d/%c%c", size.n, size.pad, uplo, jobz)
				n, lda := size.n, size.n+size.pad
				// A symmetric matrix; the other triangle holds junk that
				// must be ignored.
				sym := mat.NewSymDense(n, nil)
				a := randomSlice(rng, (n-1)*lda+n)
				for i := range n {
					for j := i; j < n; j++ {
						if uplo == blas.Upper {
							sym.SetSym(i, j, a[i*lda+j])
						} else {
							sym.SetSym(i, j, a[j*lda+i])
						}
					}
				}
				want := make([]float64, n)
				aCopy := slices.Clone(a)
				queryAndRun(func(work []float64, lwork int) {
					lapackgonum.Implementation{}.Dsyev(lapack.EVNone, uplo, n, aCopy, lda, want, work, lwork)
				})
				w := make([]float64, n)
				ok := true
				queryAndRun(func(work []float64, lwork int) {
					ok = impl.Dsyev(jobz, uplo, n, a, lda, w, work, lwork)
				})
				if !ok {
					t.Fatalf("%s: did not converge", name)
				}
				closeEnough(t, name+"/values", w, want, 1e-13)
				if jobz == lapack.EVNone {
					continue
				}
				for j := range n { // A·v_j = w_j·v_j, v_j in column j
					for i := range n {
						var av float64
						for l := range n {
							av += sym.At(i, l) * a[l*lda+j]
						}
						if d := math.Abs(av - w[j]*a[i*lda+j]); d > 1e-12*float64(n) {
							t.Fatalf("%s: (A·v - λ·v)[%d] = %g for λ_%d", name, i, d, j)
						}
					}
				}
			}
		}
	}
}

func TestDgeevMatchesGonum(t *testing.T) {
	impl := loadLAPACK(t)
	rng := rand.New(rand.NewPCG(15, 16))
	for _, size := range []struct{ n, pad int }{{1, 0}, {2, 1}, {7, 0}, {60, 2}} {
		for _, jobvr := range []lapack.RightEVJob{lapack.RightEVNone, lapack.RightEVCompute} {
			name := fmt.Sprintf("n%d/pad%d/%c", size.n, size.pad, jobvr)
			n, lda := size.n, size.n+size.pad
			a := randomSlice(rng, (n-1)*lda+n)
			wantRe, wantIm := make([]float64, n), make([]float64, n)
			aCopy := slices.Clone(a)
			queryAndRun(func(work []float64, lwork int) {
				lapackgonum.Implementation{}.Dgeev(lapack.LeftEVNone, lapack.RightEVNone, n, aCopy, lda, wantRe, wantIm, nil, 1, nil, 1, work, lwork)
			})
			wr, wi := make([]float64, n), make([]float64, n)
			ldvr := n + size.pad
			vr := make([]float64, (n-1)*ldvr+n)
			first := -1
			aCopy = slices.Clone(a)
			queryAndRun(func(work []float64, lwork int) {
				first = impl.Dgeev(lapack.LeftEVNone, jobvr, n, aCopy, lda, wr, wi, nil, 1, vr, ldvr, work, lwork)
			})
			if first != 0 {
				t.Fatalf("%s: first = %d", name, first)
			}
			got, want := sortedComplex(wr, wi), sortedComplex(wantRe, wantIm)
			for i := range got {
				if d := math.Hypot(real(got[i]-want[i]), imag(got[i]-want[i])); d > 1e-12*float64(n) {
					t.Fatalf("%s: eigenvalue %v, gonum has %v", name, got[i], want[i])
				}
			}
			if jobvr == lapack.RightEVNone {
				continue
			}
			// LAPACK's packing: a real λ_j has vector column j; a complex
			// pair λ_j, λ_j+1 = conj has vectors col j ± i·col j+1.
			for j := 0; j < n; j++ {
				lambda := complex(wr[j], wi[j])
				v := make([]complex128, n)
				for i := range n {
					switch {
					case wi[j] == 0:
						v[i] = complex(vr[i*ldvr+j], 0)
					case wi[j] > 0:
						v[i] = complex(vr[i*ldvr+j], vr[i*ldvr+j+1])
					default:
						v[i] = complex(vr[i*ldvr+j-1], -vr[i*ldvr+j])
					}
				}
				for i := range n {
					var av complex128
					for l := range n {
						av += complex(a[i*lda+l], 0) * v[l]
					}
					if d := av - lambda*v[i]; math.Hypot(real(d), imag(d)) > 1e-12*float64(n) {
						t.Fatalf("%s: (A·v - λ·v)[%d] = %v for λ_%d = %v", name, i, d, j, lambda)
					}
				}
			}
		}
	}
}

func sortedComplex(re, im []float64) []complex128 {
	out := make([]complex128, len(re))
	for i := range re {
		out[i] = complex(re[i], im[i])
	}
	slices.SortFunc(out, func(a, b complex128) int {
		if c := math.Round(real(a)*1e8) - math.Round(real(b)*1e8); c != 0 {
			return int(math.Copysign(1, c))
		}
		if imag(a) < imag(b) {
			return -1
		}
		if imag(a) > imag(b) {
			return 1
		}
		return 0
	})
	return out
}

// TestLAPACKFallsBackToGonum checks calls the overrides leave to gonum:
// invalid arguments panic with gonum's message, and jobs OpenBLAS is not
// used for still work.
func TestLAPACKFallsBackToGonum(t *testing.T) {
	impl := loadLAPACK(t)
	a := []float64{4, 1, 1, 3}
	s := make([]float64, 2)
	work := make([]float64, 100)
	panics := []struct {
		name string
		call func(lapack.Float64)
	}{
		{"svd short a", func(f lapack.Float64) {
			f.Dgesvd(lapack.SVDNone, lapack.SVDNone, 2, 2, a[:3], 2, s, nil, 1, nil, 1, work, len(work))
		}},
		{"svd bad job", func(f lapack.Float64) {
			f.Dgesvd('X', 'X', 2, 2, slices.Clone(a), 2, s, nil, 1, nil, 1, work, len(work))
		}},
		{"syev short w", func(f lapack.Float64) {
			f.Dsyev(lapack.EVNone, blas.Upper, 2, slices.Clone(a), 2, s[:1], work, len(work))
		}},
		{"geev short vr", func(f lapack.Float64) {
			f.Dgeev(lapack.LeftEVNone, lapack.RightEVCompute, 2, slices.Clone(a), 2, s, s, nil, 1, make([]float64, 3), 2, work, len(work))
		}},
	}
	for _, tt := range panics {
		want := panicOf(func() { tt.call(lapackgonum.Implementation{}) })
		if want == nil {
			t.Fatalf("%s: gonum did not panic; the case is wrong", tt.name)
		}
		if got := panicOf(func() { tt.call(impl) }); got != want {
			t.Errorf("%s: panic %v, want gonum's %v", tt.name, got, want)
		}
	}
	// Different jobs for U and Vᵀ: gonum's code, same values.
	if !impl.Dgesvd(lapack.SVDAll, lapack.SVDNone, 2, 2, slices.Clone(a), 2, s, make([]float64, 4), 2, nil, 1, work, len(work)) {
		t.Fatal("Dgesvd with mixed jobs failed")
	}
	want := []float64{(7 + math.Sqrt(5)) / 2, (7 - math.Sqrt(5)) / 2} // a is symmetric positive definite
	closeEnough(t, "mixed jobs values", s, want, 1e-14)
	// A workspace smaller than the query asked for still works.
	if !impl.Dgesvd(lapack.SVDStore, lapack.SVDStore, 2, 2, slices.Clone(a), 2, s, make([]float64, 4), 2, make([]float64, 4), 2, work[:5], 5) {
		t.Fatal("Dgesvd with a small workspace failed")
	}
	closeEnough(t, "small workspace values", s, want, 1e-14)
}
