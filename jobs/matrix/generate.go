package matrix

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
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
		data[i] = randomValue(source)
	}
	return mat.NewDense(rows, cols, data), nil
}

func randomValue(source *rand.PCG) float64 { return float64(source.Uint64()>>11) * 0x1p-53 }

// randomBlock returns rows [r0, r1) and columns [c0, c1) of Random(rows,
// cols, seed), bit for bit, without making the rest: a tile of a product
// needs only a band of each factor. The generator jumps ahead to each
// row's first value (see pcgAdvance) instead of drawing the values before
// it.
func randomBlock(rows, cols int, seed uint64, r0, r1, c0, c1 int) (*mat.Dense, error) {
	if err := checkDims(rows, cols); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	if err := checkBlock(rows, cols, r0, r1, c0, c1); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	out := mat.NewDense(r1-r0, c1-c0, nil)
	raw := out.RawMatrix()
	source := rand.NewPCG(seed, 0)
	at := uint64(0) // values drawn so far
	for i := r0; i < r1; i++ {
		first := uint64(i)*uint64(cols) + uint64(c0)
		pcgAdvance(source, first-at)
		row := raw.Data[(i-r0)*raw.Stride : (i-r0)*raw.Stride+c1-c0]
		for j := range row {
			row[j] = randomValue(source)
		}
		at = first + uint64(c1-c0)
	}
	return out, nil
}

// The constants of math/rand/v2's PCG: each step sets its 128-bit state to
// state·pcgMul + pcgInc (mod 2¹²⁸).
const (
	pcgMulHi = 2549297995355413924
	pcgMulLo = 4865540595714422341
	pcgIncHi = 6364136223846793005
	pcgIncLo = 1442695040888963407
)

// pcgAdvance moves source n steps ahead, as n calls of its Uint64 would, in
// O(log n) steps: a linear congruential generator's n-th step is again
// affine, and its coefficients square up like a power (F. Brown, "Random
// number generation with arbitrary strides", 1994). The state is read and
// written through the generator's binary form, which math/rand/v2 defines
// as "pcg:" and the state's high and low words, big-endian.
func pcgAdvance(source *rand.PCG, n uint64) {
	if n == 0 {
		return
	}
	state, _ := source.MarshalBinary() // cannot fail
	hi, lo := binary.BigEndian.Uint64(state[4:]), binary.BigEndian.Uint64(state[12:])
	accMulHi, accMulLo := uint64(0), uint64(1)
	accIncHi, accIncLo := uint64(0), uint64(0)
	mulHi, mulLo := uint64(pcgMulHi), uint64(pcgMulLo)
	incHi, incLo := uint64(pcgIncHi), uint64(pcgIncLo)
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			accMulHi, accMulLo = mul128(accMulHi, accMulLo, mulHi, mulLo)
			accIncHi, accIncLo = mul128(accIncHi, accIncLo, mulHi, mulLo)
			accIncHi, accIncLo = add128(accIncHi, accIncLo, incHi, incLo)
		}
		// inc ← (mul + 1)·inc, mul ← mul²: the step applied twice.
		m1Hi, m1Lo := add128(mulHi, mulLo, 0, 1)
		incHi, incLo = mul128(m1Hi, m1Lo, incHi, incLo)
		mulHi, mulLo = mul128(mulHi, mulLo, mulHi, mulLo)
	}
	hi, lo = mul128(accMulHi, accMulLo, hi, lo)
	hi, lo = add128(hi, lo, accIncHi, accIncLo)
	binary.BigEndian.PutUint64(state[4:], hi)
	binary.BigEndian.PutUint64(state[12:], lo)
	if err := source.UnmarshalBinary(state); err != nil {
		panic(err) // the form MarshalBinary just made
	}
}

// mul128 returns the low 128 bits of the product of two 128-bit numbers.
func mul128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(aLo, bLo)
	hi += aHi*bLo + aLo*bHi
	return hi, lo
}

// add128 returns the sum of two 128-bit numbers, modulo 2¹²⁸.
func add128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	lo, carry := bits.Add64(aLo, bLo, 0)
	hi, _ = bits.Add64(aHi, bHi, carry)
	return hi, lo
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

// identityBlock returns rows [r0, r1) and columns [c0, c1) of Identity(n).
func identityBlock(n, r0, r1, c0, c1 int) (*mat.Dense, error) {
	if err := checkDims(n, n); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := checkBlock(n, n, r0, r1, c0, c1); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	out := mat.NewDense(r1-r0, c1-c0, nil)
	for i := max(r0, c0); i < min(r1, c1); i++ {
		out.Set(i-r0, i-c0, 1)
	}
	return out, nil
}

// checkBlock rejects a block that is empty or not inside a rows×cols
// matrix.
func checkBlock(rows, cols, r0, r1, c0, c1 int) error {
	if r0 < 0 || r0 >= r1 || r1 > rows || c0 < 0 || c0 >= c1 || c1 > cols {
		return fmt.Errorf("%w: rows [%d, %d) and columns [%d, %d) are not a block of a %d×%d matrix", ErrShape, r0, r1, c0, c1, rows, cols)
	}
	return nil
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
