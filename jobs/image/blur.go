package image

import (
	"fmt"
	"image"
	"math"
)

// MaxSigma is the largest Gaussian sigma GaussianBlur and Sharpen accept.
// The kernel reaches 3·MaxSigma pixels each way, so the cost per pixel
// grows with sigma; past this a blur is better done on a downscaled image.
const MaxSigma = 250

// GaussianBlur is a true Gaussian blur: a separable convolution with the
// kernel exp(-x²/2σ²) sampled at whole pixels out to radius ⌈3σ⌉,
// normalised to sum 1, with clamp-to-edge borders (rows and columns past the
// edge repeat the edge pixel). Images with transparent pixels are blurred in
// premultiplied alpha, so a transparent pixel's colour does not bleed.
//
// Pixel arithmetic is integer (16-bit fixed-point weights summing exactly
// to one), so the same input and sigma give the same bytes whole or in
// strips, and a flat area stays exactly flat.
type GaussianBlur struct {
	Sigma float64 // standard deviation in pixels, in (0, MaxSigma]
}

// Halo reports how many rows above and below an output row the blur reads.
func (g GaussianBlur) Halo() int { return gaussRadius(g.Sigma) }

// Apply returns the blurred image.
func (g GaussianBlur) Apply(src *image.NRGBA) (*image.NRGBA, error) {
	return applyWhole(g, src)
}

// ApplyStrip returns output rows [s.Y0, s.Y1) of the blurred full image; see
// Filter.
func (g GaussianBlur) ApplyStrip(src *image.NRGBA, s Strip) (*image.NRGBA, error) {
	return applyStrip(g, src, s)
}

// applyInPlace blurs img into itself: a whole-image task's output then
// needs no second image of the same size, and a worker's peak memory stays
// within twice the decoded image. The result is byte-identical to Apply's
// (see gaussKernel.rows for why overwriting rows is safe).
func (g GaussianBlur) applyInPlace(img *image.NRGBA) error {
	if img == nil {
		return errNilImage
	}
	if err := g.validate(); err != nil {
		return err
	}
	if w, h := img.Rect.Dx(), img.Rect.Dy(); w > 0 && h > 0 {
		newGaussKernel(g.Sigma).rows(img, img, 0, h, 0)
	}
	return nil
}

func (g GaussianBlur) validate() error { return validSigma(g.Sigma) }

func (g GaussianBlur) rows(dst, src *image.NRGBA, srcY0, height, y0 int) {
	newGaussKernel(g.Sigma).rows(dst, src, srcY0, height, y0)
}

func validSigma(sigma float64) error {
	if !(sigma > 0 && sigma <= MaxSigma) { // also rejects NaN
		return fmt.Errorf("sigma %v out of range (0, %d]", sigma, MaxSigma)
	}
	return nil
}

func gaussRadius(sigma float64) int {
	if validSigma(sigma) != nil {
		return 0
	}
	return int(math.Ceil(3 * sigma))
}

// The blur works on two channels per uint64, one in each 32-bit lane
// (R|B<<32 and G|A<<32), so one 64-bit multiply does the work of two.
// Each channel is carried as value·alpha, alpha as 255·alpha: 0 to 65025,
// premultiplied, and for an opaque pixel simply value·255 (8.8 fixed point,
// near enough), with no branch. Lanes never carry into each other because
// every weight is non-negative and the weights sum to 2^16, so a lane's sum
// is at most 65025·2^16 < 2^32 in both passes.
const (
	blurBits  = 16
	laneMask  = 0x0000ffff_0000ffff
	laneRound = (1 << (blurBits - 1)) * (1 | 1<<32)
)

// gaussKernel is the fixed-point half kernel: weight[0] is the centre tap
// and weight[i] applies at distance ±i.
type gaussKernel struct {
	radius int
	weight []uint64
}

func newGaussKernel(sigma float64) *gaussKernel {
	r := gaussRadius(sigma)
	f := make([]float64, r+1)
	sum := 0.0
	for i := range f {
		f[i] = math.Exp(-float64(i*i) / (2 * sigma * sigma))
		sum += f[i]
		if i > 0 {
			sum += f[i]
		}
	}
	// Round to integers whose full-kernel sum is exactly 2^blurBits, so a
	// flat region stays exactly flat. Rounding the running sum from the
	// tail inwards keeps every weight within one unit of exact, however
	// many taps there are; the centre takes what is left.
	w := make([]uint64, r+1)
	var exact float64
	var sides uint64
	for i := r; i >= 1; i-- {
		exact += f[i] / sum * (1 << blurBits)
		w[i] = uint64(math.Round(exact)) - sides
		sides += w[i]
	}
	w[0] = 1<<blurBits - 2*sides
	return &gaussKernel{radius: r, weight: w}
}

// rows blurs into dst, which holds output rows [y0, y0+dst height) of an
// image height rows tall; src holds rows [srcY0, srcY0+src height) of the
// input, which must cover every row the output reads.
//
// dst may be src itself (srcY0 = y0 = 0), blurring in place: output row y
// is written only after every input row it reads, y-r to y+r, has been
// filtered horizontally into the ring, and the rows the ring still has to
// read, y+r+1 and below, are not yet overwritten. The ring holds 2r+1
// rows, so none of the rows output row y reads is evicted before it.
func (k *gaussKernel) rows(dst, src *image.NRGBA, srcY0, height, y0 int) {
	w := src.Rect.Dx()
	r := k.radius
	// Rows already filtered horizontally, keyed by absolute row: output
	// row y reads rows y-r..y+r, so 2r+1 slots always suffice, and fewer
	// when src is shorter than that.
	slots := min(2*r+1, src.Rect.Dy())
	ring := make([][]uint64, slots)
	ringRow := make([]int, slots)
	for i := range ring {
		ring[i] = make([]uint64, 2*w)
		ringRow[i] = -1
	}
	padded := make([]uint64, 2*(w+2*r))
	filtered := func(y int) []uint64 {
		y = max(0, min(height-1, y))
		slot := y % slots
		if ringRow[slot] != y {
			k.horizontal(ring[slot], pixRow(src, y-srcY0), padded)
			ringRow[slot] = y
		}
		return ring[slot]
	}

	acc := make([]uint64, 2*w)
	taps := make([][]uint64, 2*r+1)
	for i := range dst.Rect.Dy() {
		y := y0 + i
		for t := -r; t <= r; t++ {
			taps[t+r] = filtered(y + t)
		}
		k.vertical(acc, taps)
		unspread(pixRow(dst, i), acc)
	}
}

// horizontal filters one row of 8-bit pixels into dst, two lanes per
// pixel. padded is scratch of 2·(width+2·radius) words.
func (k *gaussKernel) horizontal(dst []uint64, src []byte, padded []uint64) {
	r := k.radius
	w := len(src) / 4
	spread(padded[2*r:2*(r+w)], src)
	for i := range r {
		padded[2*i], padded[2*i+1] = padded[2*r], padded[2*r+1]
		j := 2 * (r + w + i)
		padded[j], padded[j+1] = padded[2*(r+w-1)], padded[2*(r+w-1)+1]
	}
	n := 2 * w
	sym(dst, padded[2*r:2*r+n], k.weight, func(t int) ([]uint64, []uint64) {
		return padded[2*(r-t) : 2*(r-t)+n], padded[2*(r+t) : 2*(r+t)+n]
	})
	for j, v := range dst {
		dst[j] = (v + laneRound) >> blurBits & laneMask
	}
}

// vertical sums the 2r+1 filtered rows in taps (centre at index r) into acc.
func (k *gaussKernel) vertical(acc []uint64, taps [][]uint64) {
	r := k.radius
	sym(acc, taps[r], k.weight, func(t int) ([]uint64, []uint64) {
		return taps[r-t], taps[r+t]
	})
}

// sym computes acc = w[0]·centre + Σ w[t]·(before(t) + after(t)), the
// symmetric convolution, adding the two mirrored taps before multiplying.
// Loops run over whole rows (no bounds checks inside, one multiply per
// pair of taps); two distances per pass halve the loads and stores of acc.
func sym(acc, centre []uint64, w []uint64, pair func(t int) (before, after []uint64)) {
	centre = centre[:len(acc)]
	w0 := w[0]
	for j, v := range centre {
		acc[j] = w0 * v
	}
	t := 1
	for ; t+1 < len(w); t += 2 {
		a1, b1 := pair(t)
		a2, b2 := pair(t + 1)
		a1, b1, a2, b2 = a1[:len(acc)], b1[:len(acc)], a2[:len(acc)], b2[:len(acc)]
		w1, w2 := w[t], w[t+1]
		for j := range acc {
			acc[j] += w1*(a1[j]+b1[j]) + w2*(a2[j]+b2[j])
		}
	}
	if t < len(w) {
		a, b := pair(t)
		a, b = a[:len(acc)], b[:len(acc)]
		wt := w[t]
		for j := range acc {
			acc[j] += wt * (a[j] + b[j])
		}
	}
}

// spread unpacks 8-bit NRGBA pixels into lane pairs R|B<<32, G|A<<32,
// premultiplied: value·alpha and 255·alpha.
func spread(dst []uint64, src []byte) {
	dst = dst[:len(src)/2]
	for i := 0; i+3 < len(src); i += 4 {
		r, g, b, a := uint64(src[i]), uint64(src[i+1]), uint64(src[i+2]), uint64(src[i+3])
		dst[i/2] = (r | b<<32) * a
		dst[i/2+1] = g*a | (255*a)<<32
	}
}

// unspread rounds the vertical sums in acc back to 8-bit NRGBA pixels.
func unspread(dst []byte, acc []uint64) {
	acc = acc[:len(dst)/2]
	for i := 0; i+3 < len(dst); i += 4 {
		rb := (acc[i/2] + laneRound) >> blurBits & laneMask
		ga := (acc[i/2+1] + laneRound) >> blurBits & laneMask
		r, g, b, a := rb&0xffff, ga&0xffff, rb>>32, ga>>32
		if a == 255*255 {
			r, g, b = (r+127)/255, (g+127)/255, (b+127)/255
			dst[i], dst[i+1], dst[i+2], dst[i+3] = uint8(r), uint8(g), uint8(b), 255
			continue
		}
		dst[i], dst[i+1], dst[i+2], dst[i+3] = unpremul(r, a), unpremul(g, a), unpremul(b, a), uint8((a+127)/255)
	}
}

// unpremul returns the 8-bit colour of premultiplied value v (value·alpha)
// with alpha as 255·alpha in a, rounded and clamped; 0 when fully
// transparent.
func unpremul(v, a uint64) uint8 {
	if a < 128 { // alpha rounds to 0
		return 0
	}
	return uint8(min(255, (255*v+a/2)/a))
}
