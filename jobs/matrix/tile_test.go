package matrix

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/mat"
)

func TestPlanTiles(t *testing.T) {
	tests := []struct {
		m, k, n, size int
		want          []Tile
	}{
		{1, 1, 1, 5, []Tile{{0, 1, 0, 1}}},
		{4, 3, 4, 2, []Tile{{0, 2, 0, 2}, {0, 2, 2, 4}, {2, 4, 0, 2}, {2, 4, 2, 4}}},
		{5, 9, 3, 2, []Tile{{0, 2, 0, 2}, {0, 2, 2, 3}, {2, 4, 0, 2}, {2, 4, 2, 3}, {4, 5, 0, 2}, {4, 5, 2, 3}}},
		{3, 2, 7, 100, []Tile{{0, 3, 0, 7}}},
	}
	for _, tt := range tests {
		got, err := PlanTiles(tt.m, tt.k, tt.n, tt.size)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("PlanTiles(%d, %d, %d, %d) = %v, want %v", tt.m, tt.k, tt.n, tt.size, got, tt.want)
		}
	}
	for _, bad := range [][4]int{{0, 1, 1, 1}, {1, 0, 1, 1}, {1, 1, -1, 1}, {1, 1, 1, 0}} {
		if _, err := PlanTiles(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("PlanTiles%v: no error", bad)
		}
	}
}

// TestTiledProduct checks what PlanTiles promises of an assembled product:
// the same bits when its tiles are computed again, in another order and
// concurrently, as other workers or a resumed run would; agreement with
// the direct product within the rounding bound of a dot product, on every
// backend; and, on gonum, the direct product's bits.
//
// gonum adds each element's k products one by one in order, with the same
// code whatever the product's shape, so any tile size is bitwise equal.
// OpenBLAS gives no such promise: its kernels choose how to sum by the
// product's size, so a tile boundary moves elements between differently
// rounding code. Its Haswell kernel computes the edge rows and columns
// past its 4×8 unroll grid with other code (odd tile sizes differ here by up
// to 1e-11 relative to an element that is the small result of
// cancellation); its AVX-512 kernels send every product of at most 100³
// multiply-adds to a small-matrix kernel, so a 64×257×1 tile of a
// 130×257×129 product differs in the last bit. backendSizeDependent does
// the latter on any machine.
func TestTiledProduct(t *testing.T) {
	forBackends(t, productBackends, func(t *testing.T, backend string) {
		for _, size := range []struct{ m, k, n, tile int }{
			{1, 1, 1, 1},
			{7, 5, 3, 2},
			{130, 257, 129, 64},
			{200, 513, 151, 128},
			{100, 300, 90, 37},
			{151, 1000, 149, 50},
		} {
			name := fmt.Sprintf("%dx%dx%d/tile%d", size.m, size.k, size.n, size.tile)
			a, _ := Random(size.m, size.k, 1)
			b, _ := Random(size.k, size.n, 2)
			// Entries of both signs, as cancellation makes order show.
			a.Apply(func(_, _ int, v float64) float64 { return 2*v - 1 }, a)
			direct, err := Multiply(a, b)
			if err != nil {
				t.Fatal(err)
			}
			tiles, err := PlanTiles(size.m, size.k, size.n, size.tile)
			if err != nil {
				t.Fatal(err)
			}
			assembled := multiplyTiled(t, a, b, tiles, false)
			assertEqualBits(t, name+"/again", multiplyTiled(t, a, b, tiles, true), assembled)
			assertWithinDotProductBound(t, name, assembled, direct, a, b)
			if backend == BackendGonum {
				assertEqualBits(t, name, assembled, direct)
			}
		}
	})
}

// multiplyTiled computes a·b tile by tile and assembles it: in the plan's
// order, or, with scrambled, in reverse order on concurrent goroutines.
func multiplyTiled(t *testing.T, a, b *mat.Dense, tiles []Tile, scrambled bool) *mat.Dense {
	t.Helper()
	blocks := make([]*mat.Dense, len(tiles))
	var group errgroup.Group
	for i := range tiles {
		if scrambled {
			i = len(tiles) - 1 - i
		}
		compute := func() (err error) {
			blocks[i], err = MultiplyTile(a, b, tiles[i])
			return err
		}
		if scrambled {
			group.Go(compute)
		} else if err := compute(); err != nil {
			t.Fatal(err)
		}
	}
	if err := group.Wait(); err != nil {
		t.Fatal(err)
	}
	m, _ := a.Dims()
	_, n := b.Dims()
	c, err := Assemble(m, n, tiles, blocks)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertWithinDotProductBound checks that x and y, two computations of the
// product a·b, agree as PlanTiles promises: |x - y| <= 2·γ_k·(|A|·|B|)
// element by element, γ_k = k·u/(1 - k·u), u = 2⁻⁵³. Each element of each
// is a dot product of length k summed in some order, with or without fused
// multiply-adds: each of its k terms goes through at most k roundings, so
// it is within γ_k·Σ|a_il·b_lj| of the exact value (Higham, Accuracy and
// Stability of Numerical Algorithms, §3.1), and the two are within twice
// that of each other.
//
// The test computes |A|·|B| in floating point. For k·u <= 0.01, 2·γ_k is at
// most 2.021·k·u; the computed sum of k non-negative terms is at least
// (1 - u)^k >= 0.99 times the exact one; so 2.05·k·u times the computed
// |A|·|B| bounds 2·γ_k·(|A|·|B|), the last rounding included.
func assertWithinDotProductBound(t *testing.T, name string, x, y, a, b *mat.Dense) {
	t.Helper()
	const u = 0x1p-53
	_, k := a.Dims()
	if float64(k)*u > 0.01 {
		t.Fatalf("%s: k = %d is too large for the bound's simplification", name, k)
	}
	var absA, absB, absProduct mat.Dense
	absA.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, a)
	absB.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, b)
	absProduct.Mul(&absA, &absB)
	r, c := x.Dims()
	for i := range r {
		for j := range c {
			limit := 2.05 * float64(k) * u * absProduct.At(i, j)
			if d := math.Abs(x.At(i, j) - y.At(i, j)); d > limit {
				t.Fatalf("%s: [%d, %d] = %.17g and %.17g differ by %g, beyond the bound %g", name, i, j, x.At(i, j), y.At(i, j), d, limit)
			}
		}
	}
}

func TestMultiplyTileBands(t *testing.T) {
	a := dense(3, 2, 1, 2, 3, 4, 5, 6)
	b := dense(2, 3, 1, 0, 2, 0, 1, 3)
	for _, operands := range []struct {
		name string
		a, b mat.Matrix
	}{
		{"dense views", a, b},
		{"copied bands", plainMatrix{a}, plainMatrix{b}}, // no Slice method
	} {
		block, err := MultiplyTile(operands.a, operands.b, Tile{Row0: 1, Row1: 3, Col0: 1, Col1: 3})
		if err != nil {
			t.Fatal(err)
		}
		assertEqualBits(t, operands.name, block, dense(2, 2, 4, 18, 6, 28))
	}
	for _, tile := range []Tile{{0, 4, 0, 1}, {1, 1, 0, 1}, {0, 1, -1, 1}, {0, 1, 2, 4}} {
		if _, err := MultiplyTile(a, b, tile); err == nil || !strings.Contains(err.Error(), "outside the 3×3 product") {
			t.Errorf("tile %v: error = %v", tile, err)
		}
	}
}

// plainMatrix hides every method of a matrix but those of mat.Matrix.
type plainMatrix struct{ mat.Matrix }

func TestAssembleErrors(t *testing.T) {
	block := func(r, c int) *mat.Dense { return mat.NewDense(r, c, nil) }
	tests := []struct {
		name   string
		tiles  []Tile
		blocks []*mat.Dense
		want   string
	}{
		{"gap", []Tile{{0, 2, 0, 2}, {0, 2, 2, 4}, {2, 4, 0, 2}}, []*mat.Dense{block(2, 2), block(2, 2), block(2, 2)}, "no tile covers element [2, 2]"},
		{"overlap", []Tile{{0, 4, 0, 4}, {1, 2, 1, 2}}, []*mat.Dense{block(4, 4), block(1, 1)}, "overlaps an earlier tile at [1, 1]"},
		{"outside", []Tile{{0, 5, 0, 4}}, []*mat.Dense{block(5, 4)}, "outside the 4×4 product"},
		{"wrong block", []Tile{{0, 4, 0, 4}}, []*mat.Dense{block(4, 3)}, "block 0 is 4×3, its tile rows [0, 4) cols [0, 4) is 4×4"},
		{"missing block", []Tile{{0, 4, 0, 4}}, []*mat.Dense{nil}, "block 0 of tile rows [0, 4) cols [0, 4) is missing"},
		{"count", []Tile{{0, 4, 0, 4}}, nil, "1 tiles but 0 blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Assemble(4, 4, tt.tiles, tt.blocks)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
