package matrix

import (
	"cmp"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The tests in this file compare with results NumPy computed
// (testdata/make_fixtures.py) at the promised relative tolerance.

func fixture(t *testing.T, name string) *mat.Dense {
	t.Helper()
	return mustRead(t, "testdata/linalg/"+name+".npy")
}

func TestNumPyMultiply(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		got, err := Multiply(fixture(t, "mul_a"), fixture(t, "mul_b"))
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "a @ b", got, fixture(t, "mul_c"), tolerance)
		got, err = Multiply(fixture(t, "big_square"), fixture(t, "big_rhs"))
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "big a @ b", got, fixture(t, "big_product"), tolerance)
	})
}

func TestNumPyInverseAndSolve(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		square := fixture(t, "square")
		inv, err := Inverse(square)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "inv", inv, fixture(t, "inverse"), tolerance)
		x, err := Solve(square, fixture(t, "rhs"))
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "solve", x, fixture(t, "solve"), tolerance)

		big := fixture(t, "big_square")
		if inv, err = Inverse(big); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "big inv", inv, fixture(t, "big_inverse"), tolerance)
		if x, err = Solve(big, fixture(t, "big_rhs")); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "big solve", x, fixture(t, "big_solve"), tolerance)
	})
}

func TestNumPySVD(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		svd, err := SVD(fixture(t, "svd_a"), true)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "s", mat.NewDense(len(svd.Values), 1, svd.Values), fixture(t, "svd_s"), tolerance)
		// Singular vectors are unique up to a common sign per pair: align
		// each pair with NumPy's before comparing.
		wantU, wantVh := fixture(t, "svd_u"), fixture(t, "svd_vh")
		u, v := mat.DenseCopyOf(svd.U), mat.DenseCopyOf(svd.V)
		for j := range len(svd.Values) {
			if dotColumns(u, wantU, j) < 0 {
				negateColumn(u, j)
				negateColumn(v, j)
			}
		}
		assertClose(t, "u", u, wantU, tolerance)
		assertClose(t, "vh", v.T(), wantVh, tolerance)
	})
}

func TestNumPyEigen(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		eig, err := Eigen(fixture(t, "eigh_a"), true)
		if err != nil {
			t.Fatal(err)
		}
		if !eig.Symmetric {
			t.Fatal("(g + gᵀ)/2 not recognized as symmetric")
		}
		values := eig.ValuesMatrix()
		assertClose(t, "eigh w", values.Slice(0, values.RawMatrix().Rows, 0, 1), fixture(t, "eigh_w"), tolerance)
		re, _ := eig.VectorParts()
		wantV := fixture(t, "eigh_v")
		for j := range len(eig.Values) {
			if dotColumns(re, wantV, j) < 0 {
				negateColumn(re, j)
			}
		}
		assertClose(t, "eigh v", re, wantV, tolerance)

		eig, err = Eigen(fixture(t, "eig_a"), false)
		if err != nil {
			t.Fatal(err)
		}
		// LAPACK's order is not specified: compare sorted (real, imaginary).
		assertClose(t, "eig w", sortedRows(eig.ValuesMatrix()), sortedRows(fixture(t, "eig_w")), tolerance)
	})
}

func TestNumPyStats(t *testing.T) {
	raw, err := os.ReadFile("testdata/linalg/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var want Stats
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got := Summarize(fixture(t, "stats_a"), true)
	if got.Rows != want.Rows || got.Cols != want.Cols {
		t.Fatalf("dims %d×%d, want %d×%d", got.Rows, got.Cols, want.Rows, want.Cols)
	}
	row := func(s Stats) *mat.Dense {
		return dense(1, 7, s.Sum, s.Mean, s.Min, s.Max, s.NormFrobenius, s.Norm1, s.NormInf)
	}
	assertClose(t, "stats", row(got), row(want), tolerance)
	axis := func(a *AxisStats) *mat.Dense {
		n := len(a.Sum)
		return mat.NewDense(4, n, slices.Concat(a.Sum, a.Mean, a.Min, a.Max))
	}
	assertClose(t, "per row", axis(got.PerRow), axis(want.PerRow), tolerance)
	assertClose(t, "per col", axis(got.PerCol), axis(want.PerCol), tolerance)
}

func dotColumns(a, b mat.Matrix, j int) float64 {
	r, _ := a.Dims()
	sum := 0.0
	for i := range r {
		sum += a.At(i, j) * b.At(i, j)
	}
	return sum
}

func negateColumn(m *mat.Dense, j int) {
	r, _ := m.Dims()
	for i := range r {
		m.Set(i, j, -m.At(i, j))
	}
}

// sortedRows returns the rows of an n×2 matrix sorted by the first column,
// then the second, comparing values rounded so that rounding noise cannot
// swap a conjugate pair.
func sortedRows(m *mat.Dense) *mat.Dense {
	r, _ := m.Dims()
	rows := make([][2]float64, r)
	for i := range rows {
		rows[i] = [2]float64{m.At(i, 0), m.At(i, 1)}
	}
	round := func(v float64) float64 { return math.Round(v * 1e6) }
	slices.SortFunc(rows, func(a, b [2]float64) int {
		return cmp.Or(cmp.Compare(round(a[0]), round(b[0])), cmp.Compare(round(a[1]), round(b[1])))
	})
	out := mat.NewDense(r, 2, nil)
	for i, row := range rows {
		out.SetRow(i, row[:])
	}
	return out
}
