package matrix

import (
	"fmt"
	"math"
	"strings"
	"testing"

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

// TestTiledProduct checks that assembling the tiles gives the direct
// product bit for bit, on each backend, for tile sizes that are multiples
// of 64; and, with OpenBLAS, within the rounding error bound of a dot
// product for other tile sizes.
//
// Each element of C is one dot product over the whole of k, so only the
// order and the kind of its floating-point operations can differ. gonum
// adds k in blocks of 64, in order, with the same code for every element:
// any tile size is bitwise equal. OpenBLAS splits k at the same points for
// every call with the same k, but computes the edge rows and columns of a
// product (those past the last multiple of its kernel's unroll factors,
// 4×8 for the Haswell kernel that runs here) with other code, which fuses
// multiply-adds differently. A tile boundary that is not a multiple of the
// unroll factors turns interior elements into edge elements; on this
// machine multiples of 4 stay bitwise equal, odd sizes differ by up to 1e-11
// relative to the element (where it is the small result of cancellation).
// Multiples of 64 are a multiple of every OpenBLAS kernel's unroll factors.
func TestTiledProduct(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
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
			blocks := make([]*mat.Dense, len(tiles))
			for i, tile := range tiles {
				if blocks[i], err = MultiplyTile(a, b, tile); err != nil {
					t.Fatal(err)
				}
			}
			assembled, err := Assemble(size.m, size.n, tiles, blocks)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(t.Name(), BackendGonum) || size.tile%64 == 0 || size.tile >= max(size.m, size.n) {
				assertEqualBits(t, name, assembled, direct)
				continue
			}
			assertWithinDotProductBound(t, name, assembled, direct, a, b)
		}
	})
}

// assertWithinDotProductBound checks |x - y| <= 2·k·ε·(|A|·|B|) element by
// element: each of two dot products of length k, computed in any order, is
// within k·ε·Σ|a_il·b_lj| of the exact value.
func assertWithinDotProductBound(t *testing.T, name string, x, y, a, b *mat.Dense) {
	t.Helper()
	var absA, absB, bound mat.Dense
	absA.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, a)
	absB.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, b)
	bound.Mul(&absA, &absB)
	_, k := a.Dims()
	r, c := x.Dims()
	for i := range r {
		for j := range c {
			if d := math.Abs(x.At(i, j) - y.At(i, j)); d > 2*float64(k)*0x1p-53*bound.At(i, j) {
				t.Fatalf("%s: [%d, %d] differs by %g, beyond the bound %g", name, i, j, d, 2*float64(k)*0x1p-53*bound.At(i, j))
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
