package matrix

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Tile is a block of the product C = A·B: rows [Row0, Row1) and columns
// [Col0, Col1) of C. It is computed from the same rows of A (a row band)
// and the same columns of B (a column band).
type Tile struct {
	Row0, Row1 int
	Col0, Col1 int
}

// Rows returns the number of rows of the tile.
func (t Tile) Rows() int { return t.Row1 - t.Row0 }

// Cols returns the number of columns of the tile.
func (t Tile) Cols() int { return t.Col1 - t.Col0 }

func (t Tile) String() string {
	return fmt.Sprintf("rows [%d, %d) cols [%d, %d)", t.Row0, t.Row1, t.Col0, t.Col1)
}

// PlanTiles splits the m×n product of an m×k and a k×n matrix into tiles
// of at most tileSize×tileSize, row by row of tiles, the last row and
// column of tiles smaller when tileSize does not divide m or n. The plan
// depends on nothing else, in particular not on the number of workers, so
// results and resume hashes do not either.
//
// The inner dimension k is never split: each element of a tile is one
// whole dot product of a row of a and a column of b. So, on one backend:
//
//   - The same tile computes to the same bits every time (a BLAS runs the
//     same code for the same call on the same machine and settings), and
//     [Assemble] only copies: an assembled product is the same whichever
//     worker computed which tile, in which order, and however often.
//   - Each element agrees with the direct product a·b's within
//     2·γ_k·(|A|·|B|)_ij, where γ_k = k·u/(1 - k·u) and u = 2⁻⁵³ (about
//     2.2·10⁻¹⁶·k times the sum of the magnitudes of the k products),
//     barring underflow: both sum the same k products, perhaps in another
//     order or with fused multiply-adds, and any such sum is within
//     γ_k·Σ|a_il·b_lj| of the exact one. For factors without negative
//     entries that is 2·γ_k relative.
//   - With gonum and *mat.Dense factors (not their transposes), it is bit
//     for bit, for any tile
//     size: gonum adds each element's k products one at a time in order,
//     whatever the product's shape. OpenBLAS promises no such thing: its
//     kernels choose how to sum by the size of the product (on AVX-512 a
//     product of at most 100³ multiply-adds runs a separate small-matrix
//     kernel; the Haswell kernel computes rows and columns past its 4×8
//     unroll grid with other code), so a tile can round differently from
//     the same elements of the whole product.
//
// k is checked, and it sets each tile's cost: a tile reads tileSize×k of A
// and k×tileSize of B.
func PlanTiles(m, k, n, tileSize int) ([]Tile, error) {
	if m <= 0 || k <= 0 || n <= 0 {
		return nil, fmt.Errorf("plan tiles: %w: %d×%d by %d×%d; dimensions must be positive", ErrShape, m, k, k, n)
	}
	if tileSize <= 0 {
		return nil, fmt.Errorf("plan tiles: tile size %d must be positive", tileSize)
	}
	var tiles []Tile
	for r := 0; r < m; r += tileSize {
		for c := 0; c < n; c += tileSize {
			tiles = append(tiles, Tile{Row0: r, Row1: min(r+tileSize, m), Col0: c, Col1: min(c+tileSize, n)})
		}
	}
	return tiles, nil
}

// MultiplyTile computes one tile of a·b: the product of a's rows
// [Row0, Row1) and b's columns [Col0, Col1), a t.Rows()×t.Cols() matrix.
// a and b are the whole factors; only the two bands are read.
func MultiplyTile(a, b mat.Matrix, t Tile) (*mat.Dense, error) {
	ar, ac := a.Dims()
	br, bc := b.Dims()
	if ac != br {
		return nil, fmt.Errorf("multiply tile: %w: A is %d×%d, B is %d×%d; A's columns must equal B's rows", ErrShape, ar, ac, br, bc)
	}
	if t.Row0 < 0 || t.Row0 >= t.Row1 || t.Row1 > ar || t.Col0 < 0 || t.Col0 >= t.Col1 || t.Col1 > bc {
		return nil, fmt.Errorf("multiply tile: %w: tile %v is outside the %d×%d product", ErrShape, t, ar, bc)
	}
	return multiplyBands(band(a, t.Row0, t.Row1, 0, ac), band(b, 0, br, t.Col0, t.Col1))
}

// multiplyBands multiplies a row band of A by a column band of B, each
// copied into a matrix of its own first (the row band, a view of all of
// A's columns, is one already), so that the BLAS sees the same call
// whether the bands were cut from the whole factors or read alone from
// their files ([ReadRows], [ReadColumns]): a tile's bits do not depend on
// how its bands were obtained.
func multiplyBands(rows, cols mat.Matrix) (*mat.Dense, error) {
	return Multiply(compact(rows), compact(cols))
}

// compact returns m as a *mat.Dense whose rows are adjacent in memory,
// copying it unless it is one.
func compact(m mat.Matrix) *mat.Dense {
	if d, ok := m.(*mat.Dense); ok {
		if raw := d.RawMatrix(); raw.Stride == raw.Cols {
			return d
		}
	}
	return mat.DenseCopyOf(m)
}

// band returns rows [r0, r1) and columns [c0, c1) of m, as a view when m
// can be sliced without copying.
func band(m mat.Matrix, r0, r1, c0, c1 int) mat.Matrix {
	if s, ok := m.(interface {
		Slice(i, k, j, l int) mat.Matrix
	}); ok {
		return s.Slice(r0, r1, c0, c1)
	}
	out := mat.NewDense(r1-r0, c1-c0, nil)
	for i := r0; i < r1; i++ {
		for j := c0; j < c1; j++ {
			out.Set(i-r0, j-c0, m.At(i, j))
		}
	}
	return out
}

// Assemble places the blocks computed by [MultiplyTile] into the m×n
// product; blocks[i] belongs to tiles[i]. The tiles must cover the product
// exactly once, as the tiles of a [PlanTiles] plan do, and each block must
// have its tile's dimensions.
func Assemble(m, n int, tiles []Tile, blocks []*mat.Dense) (*mat.Dense, error) {
	if len(tiles) != len(blocks) {
		return nil, fmt.Errorf("assemble: %d tiles but %d blocks", len(tiles), len(blocks))
	}
	asm, err := NewAssembler(m, n)
	if err != nil {
		return nil, err
	}
	for i, t := range tiles {
		if err := asm.Add(i, t, blocks[i]); err != nil {
			return nil, err
		}
	}
	return asm.Result()
}

// An Assembler puts the blocks of a product together one at a time, as
// [Assemble] does, so that a caller holds the product and one block, not
// every block besides the product.
type Assembler struct {
	m, n    int
	covered []uint64 // one bit per element: 1/64 of the product's size
	c       *mat.Dense
}

// NewAssembler returns an Assembler for an m×n product.
func NewAssembler(m, n int) (*Assembler, error) {
	if err := checkDims(m, n); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	return &Assembler{m: m, n: n, covered: make([]uint64, (m*n+63)/64), c: mat.NewDense(m, n, nil)}, nil
}

// Add places block, the i-th of the plan, where its tile t says. It fails
// if the tile is outside the product, overlaps one added before, or has
// another shape than the block.
func (asm *Assembler) Add(i int, t Tile, block *mat.Dense) error {
	m, n := asm.m, asm.n
	if t.Row0 < 0 || t.Row0 >= t.Row1 || t.Row1 > m || t.Col0 < 0 || t.Col0 >= t.Col1 || t.Col1 > n {
		return fmt.Errorf("assemble: tile %d (%v) is outside the %d×%d product", i, t, m, n)
	}
	if block == nil {
		return fmt.Errorf("assemble: block %d of tile %v is missing", i, t)
	}
	if r, cols := block.Dims(); r != t.Rows() || cols != t.Cols() {
		return fmt.Errorf("assemble: %w: block %d is %d×%d, its tile %v is %d×%d", ErrShape, i, r, cols, t, t.Rows(), t.Cols())
	}
	for row := t.Row0; row < t.Row1; row++ {
		for col := t.Col0; col < t.Col1; col++ {
			bit := row*n + col
			if asm.covered[bit/64]&(1<<(bit%64)) != 0 {
				return fmt.Errorf("assemble: tile %d (%v) overlaps an earlier tile at [%d, %d]", i, t, row, col)
			}
			asm.covered[bit/64] |= 1 << (bit % 64)
		}
	}
	asm.c.Slice(t.Row0, t.Row1, t.Col0, t.Col1).(*mat.Dense).Copy(block)
	return nil
}

// Result returns the product, or an error naming an element that no block
// covers.
func (asm *Assembler) Result() (*mat.Dense, error) {
	m, n := asm.m, asm.n
	for word, bits := range asm.covered {
		full := ^uint64(0)
		if word == len(asm.covered)-1 && (m*n)%64 != 0 {
			full = 1<<((m*n)%64) - 1
		}
		if bits != full {
			missing := word*64 + firstZeroBit(bits)
			return nil, fmt.Errorf("assemble: no tile covers element [%d, %d]", missing/n, missing%n)
		}
	}
	return asm.c, nil
}

func firstZeroBit(bits uint64) int {
	for i := range 64 {
		if bits&(1<<i) == 0 {
			return i
		}
	}
	return 64
}
