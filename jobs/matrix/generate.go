package matrix

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Random returns a rows×cols matrix of values uniform in [0, 1), the same
// for the same seed on every platform, Go release and run.
//
// The generator is PCG-DXSM as [rand.NewPCG](seed, 0) defines it; the
// matrix is filled in row-major order, each value from one 64-bit output x
// as float64(x>>11) / 2⁵³. That definition is fixed here, independent of
// how math/rand/v2 maps integers to floats, so other languages can
// reproduce the values.
func Random(rows, cols int, seed uint64) (*mat.Dense, error) {
	if err := checkDims(rows, cols); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	source := rand.NewPCG(seed, 0)
	data := make([]float64, rows*cols)
	for i := range data {
		data[i] = float64(source.Uint64()>>11) * 0x1p-53
	}
	return mat.NewDense(rows, cols, data), nil
}

// Identity returns the n×n identity matrix.
func Identity(n int) (*mat.Dense, error) {
	if err := checkDims(n, n); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	m := mat.NewDense(n, n, nil)
	for i := range n {
		m.Set(i, i, 1)
	}
	return m, nil
}

// checkDims rejects dimensions that are not positive or whose matrix could
// not be allocated at all, so that callers get an error, not a panic.
func checkDims(rows, cols int) error {
	if rows <= 0 || cols <= 0 {
		return fmt.Errorf("%w: %d×%d; both dimensions must be positive", ErrShape, rows, cols)
	}
	if rows > math.MaxInt/8/cols {
		return fmt.Errorf("%w: %d×%d is too large", ErrShape, rows, cols)
	}
	return nil
}
