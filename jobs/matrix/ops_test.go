package matrix

import (
	"errors"
	"math"
	"math/cmplx"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/mat"
)

func TestMultiply(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		tests := []struct {
			name string
			a, b mat.Matrix
			want *mat.Dense
		}{
			{"2x3 by 3x2", dense(2, 3, 1, 2, 3, 4, 5, 6), dense(3, 2, 7, 8, 9, 10, 11, 12), dense(2, 2, 58, 64, 139, 154)},
			{"row by column", dense(1, 3, 1, 2, 3), dense(3, 1, 4, 5, 6), dense(1, 1, 32)},
			{"column by row", dense(2, 1, 2, 3), dense(1, 2, 4, 5), dense(2, 2, 8, 10, 12, 15)},
			{"transposed view", dense(3, 2, 1, 4, 2, 5, 3, 6).T(), dense(3, 2, 7, 8, 9, 10, 11, 12), dense(2, 2, 58, 64, 139, 154)},
			{"identity", mustIdentity(t, 3), dense(3, 2, 1, 2, 3, 4, 5, 6), dense(3, 2, 1, 2, 3, 4, 5, 6)},
		}
		for _, tt := range tests {
			got, err := Multiply(tt.a, tt.b)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			assertEqualBits(t, tt.name, got, tt.want) // small integers: exact
		}
		// A product past gonum's block size (64) and OpenBLAS's unroll.
		a, _ := Random(70, 65, 1)
		b, _ := Random(65, 80, 2)
		got, err := Multiply(a, b)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "70x65x80", got, naiveProduct(a, b), tolerance)

		_, err = Multiply(dense(3, 4, make([]float64, 12)...), dense(5, 2, make([]float64, 10)...))
		if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "A is 3×4, B is 5×2") {
			t.Fatalf("mismatched product: error = %v, want ErrShape with the dimensions", err)
		}
	})
}

// naiveProduct is the textbook triple loop, independent of any BLAS.
func naiveProduct(a, b mat.Matrix) *mat.Dense {
	m, k := a.Dims()
	_, n := b.Dims()
	c := mat.NewDense(m, n, nil)
	for i := range m {
		for j := range n {
			sum := 0.0
			for l := range k {
				sum += a.At(i, l) * b.At(l, j)
			}
			c.Set(i, j, sum)
		}
	}
	return c
}

func mustIdentity(t *testing.T, n int) *mat.Dense {
	m, err := Identity(n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wellConditioned returns a random n×n matrix made diagonally dominant.
func wellConditioned(t *testing.T, n int, seed uint64) *mat.Dense {
	a, err := Random(n, n, seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		a.Set(i, i, a.At(i, i)+float64(n))
	}
	return a
}

func TestInverse(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// A known inverse: [[4, 7], [2, 6]]⁻¹ = [[0.6, -0.7], [-0.2, 0.4]].
		inv, err := Inverse(dense(2, 2, 4, 7, 2, 6))
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "2x2", inv, dense(2, 2, 0.6, -0.7, -0.2, 0.4), 1e-15)

		for _, n := range []int{1, 5, 70, 200} {
			a := wellConditioned(t, n, uint64(n))
			inv, err := Inverse(a)
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			product, _ := Multiply(a, inv)
			assertClose(t, "A·inv(A)", product, mustIdentity(t, n), 1e-12)
		}
	})
}

func TestSolve(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// 2x + y = 5, x + 3y = 10 → x = 1, y = 3.
		x, err := Solve(dense(2, 2, 2, 1, 1, 3), dense(2, 1, 5, 10))
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "2x2", x, dense(2, 1, 1, 3), 1e-15)

		for _, size := range []struct{ n, rhs int }{{1, 1}, {8, 3}, {150, 1}, {150, 40}} {
			a := wellConditioned(t, size.n, 10+uint64(size.n))
			b, _ := Random(size.n, size.rhs, 99)
			x, err := Solve(a, b)
			if err != nil {
				t.Fatalf("n=%d: %v", size.n, err)
			}
			residual, _ := Multiply(a, x)
			assertClose(t, "A·x", residual, b, 1e-12)
		}
		vector := mat.NewVecDense(2, []float64{5, 10})
		if x, err = Solve(dense(2, 2, 2, 1, 1, 3), vector); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "vector b", x, dense(2, 1, 1, 3), 1e-15)
	})
}

func TestSolveAndInverseErrors(t *testing.T) {
	hilbert := func(n int) *mat.Dense {
		h := mat.NewDense(n, n, nil)
		for i := range n {
			for j := range n {
				h.Set(i, j, 1/float64(i+j+1))
			}
		}
		return h
	}
	tests := []struct {
		name    string
		a       mat.Matrix
		b       mat.Matrix
		wantIs  error
		wantMsg string
		ill     bool // result returned with an *IllConditionedError
	}{
		{"not square", dense(2, 3, 1, 2, 3, 4, 5, 6), dense(2, 1, 1, 1), ErrShape, "A is 2×3, want a square matrix", false},
		{"zero pivot", dense(2, 2, 1, 2, 2, 4), dense(2, 1, 1, 1), ErrSingular, "pivot", false},
		{"zero matrix", dense(2, 2, 0, 0, 0, 0), dense(2, 1, 1, 1), ErrSingular, "", false},
		{"singular to working precision", dense(3, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9), dense(3, 1, 1, 1, 1), ErrSingular, "working precision", false},
		{"NaN", dense(2, 2, 1, math.NaN(), 0, 1), dense(2, 1, 1, 1), ErrNotFinite, "A[0, 1] = NaN", false},
		{"ill-conditioned Hilbert 10", hilbert(10), dense(10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), nil, "ill-conditioned: condition number ≈ 3.54e+13 exceeds 1e+12; the result has about 2 correct digits", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for op, run := range map[string]func() (*mat.Dense, error){
				"solve":   func() (*mat.Dense, error) { return Solve(tt.a, tt.b) },
				"inverse": func() (*mat.Dense, error) { return Inverse(tt.a) },
			} {
				result, err := run()
				if err == nil {
					t.Fatalf("%s: no error", op)
				}
				if !strings.HasPrefix(err.Error(), op+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("%s: error %q, want it to start %q and contain %q", op, err, op+": ", tt.wantMsg)
				}
				var ill *IllConditionedError
				if tt.ill {
					if !errors.As(err, &ill) || result == nil {
						t.Errorf("%s: error %v and result %v, want a result with *IllConditionedError", op, err, result)
					}
					continue
				}
				if !errors.Is(err, tt.wantIs) || result != nil {
					t.Errorf("%s: error %v and result %v, want no result and %v", op, err, result, tt.wantIs)
				}
			}
		})
	}
	if _, err := Solve(dense(2, 2, 1, 0, 0, 1), dense(3, 1, 1, 1, 1)); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "B must have 2 rows") {
		t.Errorf("solve with a short B: error = %v", err)
	}
}

func TestSVD(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// diag(3, 2) has singular values 3, 2.
		svd, err := SVD(dense(2, 2, 0, 2, 3, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "values", mat.NewDense(1, 2, svd.Values), dense(1, 2, 3, 2), 1e-15)
		if svd.U != nil || svd.V != nil {
			t.Fatal("vectors computed though not asked for")
		}
		for _, shape := range []struct{ m, n int }{{1, 1}, {7, 4}, {4, 7}, {120, 90}} {
			a, _ := Random(shape.m, shape.n, 5)
			svd, err := SVD(a, true)
			if err != nil {
				t.Fatal(err)
			}
			p := min(shape.m, shape.n)
			if len(svd.Values) != p {
				t.Fatalf("%d values, want %d", len(svd.Values), p)
			}
			for i := 1; i < p; i++ {
				if svd.Values[i] > svd.Values[i-1] {
					t.Fatalf("values not descending: %v", svd.Values)
				}
			}
			var us, usvt mat.Dense
			us.Mul(svd.U, mat.NewDiagDense(p, svd.Values))
			usvt.Mul(&us, svd.V.T())
			assertClose(t, "U·S·Vᵀ", &usvt, a, 1e-12)
			var utu mat.Dense
			utu.Mul(svd.U.T(), svd.U)
			assertClose(t, "UᵀU", &utu, mustIdentity(t, p), 1e-12)
		}
	})
}

func TestEigen(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// Symmetric: [[2, 1], [1, 2]] has eigenvalues 1 and 3.
		eig, err := Eigen(dense(2, 2, 2, 1, 1, 2), true)
		if err != nil {
			t.Fatal(err)
		}
		if !eig.Symmetric || cmplx.Abs(eig.Values[0]-1) > 1e-15 || cmplx.Abs(eig.Values[1]-3) > 1e-15 {
			t.Fatalf("symmetric 2x2: %+v, want values 1, 3 ascending", eig)
		}
		// General: a rotation by 90° has eigenvalues ±i.
		eig, err = Eigen(dense(2, 2, 0, -1, 1, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		if eig.Symmetric || cmplx.Abs(eig.Values[0]-1i) > 1e-15 || cmplx.Abs(eig.Values[1]+1i) > 1e-15 {
			t.Fatalf("rotation: %+v, want values i, -i", eig)
		}
		assertClose(t, "values matrix", eig.ValuesMatrix(), dense(2, 2, 0, 1, 0, -1), 1e-15)

		g, _ := Random(60, 60, 3)
		var sym mat.Dense
		sym.Add(g, g.T())
		for _, a := range []*mat.Dense{&sym, g} {
			eig, err := Eigen(a, true)
			if err != nil {
				t.Fatal(err)
			}
			if eig.Symmetric != (a == &sym) {
				t.Fatalf("Symmetric = %v", eig.Symmetric)
			}
			assertEigenPairs(t, a, eig)
			values, err := Eigen(a, false)
			if err != nil || values.Vectors != nil {
				t.Fatalf("values only: %v, vectors %v", err, values.Vectors)
			}
		}
	})
	if _, err := Eigen(dense(1, 2, 1, 2), false); !errors.Is(err, ErrShape) {
		t.Errorf("non-square: error = %v", err)
	}
}

// assertEigenPairs checks A·v = λ·v for every pair, in complex arithmetic.
func assertEigenPairs(t *testing.T, a mat.Matrix, eig *EigenResult) {
	t.Helper()
	n, _ := a.Dims()
	scale := mat.Norm(a, 2)
	for j, lambda := range eig.Values {
		for i := range n {
			var av complex128
			for l := range n {
				av += complex(a.At(i, l), 0) * eig.Vectors.At(l, j)
			}
			if d := cmplx.Abs(av - lambda*eig.Vectors.At(i, j)); d > 1e-12*scale {
				t.Fatalf("(A·v - λ·v)[%d] = %g for λ_%d = %v", i, d, j, lambda)
			}
		}
	}
	if eig.Symmetric {
		re, im := eig.VectorParts()
		var vtv mat.Dense
		vtv.Mul(re.T(), re)
		assertClose(t, "VᵀV", &vtv, mustIdentity(t, n), 1e-12)
		if maxAbs(im) != 0 {
			t.Fatal("symmetric eigenvectors have an imaginary part")
		}
	}
}

func TestFactorizationsRejectNonFinite(t *testing.T) {
	a := dense(2, 2, 1, 2, math.Inf(1), 4)
	if _, err := SVD(a, false); !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "A[1, 0] = +Inf") {
		t.Errorf("svd: %v", err)
	}
	if _, err := Eigen(a, false); !errors.Is(err, ErrNotFinite) {
		t.Errorf("eigen: %v", err)
	}
	if _, err := Solve(dense(1, 1, 1), dense(1, 1, math.NaN())); !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "B[0, 0]") {
		t.Errorf("solve: %v", err)
	}
}

func TestGenerators(t *testing.T) {
	a, err := Random(3, 4, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Random(3, 4, 42)
	c, _ := Random(3, 4, 43)
	assertEqualBits(t, "same seed", a, b)
	if mat.Equal(a, c) {
		t.Fatal("different seeds gave the same matrix")
	}
	for _, v := range a.RawMatrix().Data {
		if v < 0 || v >= 1 {
			t.Fatalf("value %v outside [0, 1)", v)
		}
	}
	// The documented definition, fixed for every platform and Go release,
	// as testdata/make_fixtures.py computes it in Python: a change here
	// breaks the reproducibility of users' generated inputs.
	assertEqualBits(t, "seed 42", a, mustRead(t, "testdata/npy/random_3x4_seed42.npy"))
	for _, dims := range [][2]int{{0, 1}, {1, -1}, {math.MaxInt, 2}} {
		if _, err := Random(dims[0], dims[1], 1); !errors.Is(err, ErrShape) {
			t.Errorf("Random(%d, %d): error = %v, want ErrShape", dims[0], dims[1], err)
		}
	}
	if _, err := Identity(0); !errors.Is(err, ErrShape) {
		t.Errorf("Identity(0): error = %v", err)
	}
	assertEqualBits(t, "identity", mustIdentity(t, 2), dense(2, 2, 1, 0, 0, 1))
}

// TestConcurrentOperations runs operations from several goroutines at once,
// as a worker with GOMAXPROCS > 1 or an embedding program might: each
// result must equal the one computed alone, bit for bit.
func TestConcurrentOperations(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		a := wellConditioned(t, 90, 7)
		b, _ := Random(90, 40, 8)
		wantProduct, _ := Multiply(a, b)
		wantSolution, _ := Solve(a, b)
		wantSVD, _ := SVD(a, false)
		var group errgroup.Group
		for range 4 {
			group.Go(func() error {
				for range 5 {
					product, err := Multiply(a, b)
					if err != nil {
						return err
					}
					solution, err := Solve(a, b)
					if err != nil {
						return err
					}
					svd, err := SVD(a, false)
					if err != nil {
						return err
					}
					if !mat.Equal(product, wantProduct) || !mat.Equal(solution, wantSolution) || !slices.Equal(svd.Values, wantSVD.Values) {
						return errors.New("a concurrent result differs from the serial one")
					}
				}
				return nil
			})
		}
		if err := group.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}
