package image

import (
	"fmt"
	"image"
	"math"
)

// Grayscale converts to Rec. 601 luma, exactly as Pillow's convert("L"):
// L = (19595·R + 38470·G + 7471·B + 2^15) >> 16, on the stored (straight)
// colour. The result stays in the working format, R = G = B = L with alpha
// kept, so it chains with every other operation; Save writes an opaque grey
// image as a one-channel file. Its Halo is 0.
type Grayscale struct{}

// Halo is 0: each output pixel depends on its input pixel only.
func (Grayscale) Halo() int { return 0 }

// Apply returns the greyscale image.
func (g Grayscale) Apply(src *image.NRGBA) (*image.NRGBA, error) { return applyWhole(g, src) }

// ApplyStrip returns output rows [s.Y0, s.Y1); see Filter.
func (g Grayscale) ApplyStrip(src *image.NRGBA, s Strip) (*image.NRGBA, error) {
	return applyStrip(g, src, s)
}

func (Grayscale) validate() error { return nil }

func (Grayscale) rows(dst, src *image.NRGBA, srcY0, height, y0 int) {
	for i := range dst.Rect.Dy() {
		d, s := pixRow(dst, i), pixRow(src, y0+i-srcY0)
		for x := 0; x+3 < len(d) && x+3 < len(s); x += 4 {
			l := luma(s[x], s[x+1], s[x+2])
			d[x], d[x+1], d[x+2], d[x+3] = l, l, l, s[x+3]
		}
	}
}

// luma is Rec. 601 luma in Pillow's fixed point.
func luma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
}

// Edges is the Sobel gradient magnitude of the luma (as Grayscale computes
// it), sqrt(Gx² + Gy²) rounded and clamped to 0–255, with clamp-to-edge
// borders. Alpha is ignored and the result is an opaque grey image.
type Edges struct{}

// Halo is 1: the Sobel operator is 3×3.
func (Edges) Halo() int { return 1 }

// Apply returns the edge image.
func (e Edges) Apply(src *image.NRGBA) (*image.NRGBA, error) { return applyWhole(e, src) }

// ApplyStrip returns output rows [s.Y0, s.Y1); see Filter.
func (e Edges) ApplyStrip(src *image.NRGBA, s Strip) (*image.NRGBA, error) {
	return applyStrip(e, src, s)
}

func (Edges) validate() error { return nil }

func (Edges) rows(dst, src *image.NRGBA, srcY0, height, y0 int) {
	w := src.Rect.Dx()
	// Luma of rows y-1, y, y+1, each padded by one clamped pixel either
	// side so the inner loop needs no edge cases.
	lumaRow := func(buf []int32, y int) {
		s := pixRow(src, max(0, min(height-1, y))-srcY0)
		for x := range w {
			buf[x+1] = int32(luma(s[4*x], s[4*x+1], s[4*x+2]))
		}
		buf[0], buf[w+1] = buf[1], buf[w]
	}
	up, mid, down := make([]int32, w+2), make([]int32, w+2), make([]int32, w+2)
	lumaRow(mid, y0-1) // becomes up below
	lumaRow(down, y0)
	for i := range dst.Rect.Dy() {
		up, mid, down = mid, down, up
		lumaRow(down, y0+i+1)
		d := pixRow(dst, i)
		for x := range w {
			gx := up[x+2] + 2*mid[x+2] + down[x+2] - up[x] - 2*mid[x] - down[x]
			gy := down[x] + 2*down[x+1] + down[x+2] - up[x] - 2*up[x+1] - up[x+2]
			m := uint8(255)
			if s := gx*gx + gy*gy; s < 255*255 {
				// math.Sqrt is correctly rounded (IEEE 754), so this is
				// the same on every machine.
				m = uint8(math.Sqrt(float64(s)) + 0.5)
			}
			d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = m, m, m, 0xff
		}
	}
}

// Sharpen is an unsharp mask built on GaussianBlur, like Pillow's
// UnsharpMask: for each colour channel, with d = original − blurred, the
// output is original + Amount·d where |d| ≥ Threshold, else the original.
// Alpha is kept.
type Sharpen struct {
	Sigma     float64 // of the blur, in (0, MaxSigma]
	Amount    float64 // strength, 0 to 10: 1 adds the whole difference (Pillow's percent=100)
	Threshold int     // smallest |d| that is sharpened, 0 to 255
}

// Halo is the blur's: ⌈3·Sigma⌉.
func (s Sharpen) Halo() int { return gaussRadius(s.Sigma) }

// Apply returns the sharpened image.
func (s Sharpen) Apply(src *image.NRGBA) (*image.NRGBA, error) { return applyWhole(s, src) }

// ApplyStrip returns output rows [st.Y0, st.Y1); see Filter.
func (s Sharpen) ApplyStrip(src *image.NRGBA, st Strip) (*image.NRGBA, error) {
	return applyStrip(s, src, st)
}

func (s Sharpen) validate() error {
	if err := validSigma(s.Sigma); err != nil {
		return err
	}
	if !(s.Amount >= 0 && s.Amount <= 10) {
		return fmt.Errorf("sharpen amount %v out of range [0, 10]", s.Amount)
	}
	if s.Threshold < 0 || s.Threshold > 255 {
		return fmt.Errorf("sharpen threshold %d out of range [0, 255]", s.Threshold)
	}
	return nil
}

func (s Sharpen) rows(dst, src *image.NRGBA, srcY0, height, y0 int) {
	newGaussKernel(s.Sigma).rows(dst, src, srcY0, height, y0) // dst = blurred
	amount := int32(math.Round(s.Amount * 256))               // 8-bit fixed point
	threshold := int32(s.Threshold)
	for i := range dst.Rect.Dy() {
		d, o := pixRow(dst, i), pixRow(src, y0+i-srcY0)
		for x := 0; x+3 < len(d) && x+3 < len(o); x += 4 {
			for c := x; c < x+3; c++ {
				diff := int32(o[c]) - int32(d[c])
				v := int32(o[c])
				if diff >= threshold || -diff >= threshold {
					v += (diff*amount + 128) >> 8
				}
				d[c] = uint8(max(0, min(255, v)))
			}
			d[x+3] = o[x+3]
		}
	}
}
