package fastpng

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// photo makes a w×h opaque image like a blurred photograph: smooth
// gradients with sensor noise (as jobs/bench_test.go writeImages draws
// them), then a 5×5 box blur, so rows are as predictable as the output
// of a blur job.
func photo(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 42))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	fx, fy := 0.002+0.001*float64(seed), 0.003
	for y := range h {
		for x := range w {
			v := math.Sin(float64(x)*fx) * math.Cos(float64(y)*fy)
			t := 20 * math.Sin(float64(x*y)*0.0001)
			img.SetNRGBA(x, y, color.NRGBA{
				R: clamp(128 + 100*v + t + 8*rng.NormFloat64()),
				G: clamp(128 + 80*math.Sin(float64(y)*0.004+float64(seed)) + 8*rng.NormFloat64()),
				B: clamp(128 - 100*v + 8*rng.NormFloat64()),
				A: 255,
			})
		}
	}
	return boxBlur(img, 2)
}

func clamp(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

// boxBlur averages each channel over a (2r+1)² square, edges clamped.
func boxBlur(src *image.NRGBA, r int) *image.NRGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	tmp := image.NewNRGBA(src.Rect)
	dst := image.NewNRGBA(src.Rect)
	n := 2*r + 1
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := 0
				for k := -r; k <= r; k++ {
					xx := min(max(x+k, 0), w-1)
					s += int(src.Pix[y*src.Stride+4*xx+c])
				}
				tmp.Pix[y*tmp.Stride+4*x+c] = uint8((s + n/2) / n)
			}
		}
	}
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := 0
				for k := -r; k <= r; k++ {
					yy := min(max(y+k, 0), h-1)
					s += int(tmp.Pix[yy*tmp.Stride+4*x+c])
				}
				dst.Pix[y*dst.Stride+4*x+c] = uint8((s + n/2) / n)
			}
		}
	}
	return dst
}

// TestPaethPredict: paethPredict is the predictor of the PNG specification.
func TestPaethPredict(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			for c := 0; c < 256; c += 3 {
				if g, w := uint8(paethPredict(a, b, c)), paeth(uint8(a), uint8(b), uint8(c)); g != w {
					t.Fatalf("paethPredict(%d, %d, %d) = %d, want %d", a, b, c, g, w)
				}
			}
		}
	}
}

// paeth is the Paeth predictor as the PNG specification writes it: whichever of
// left (a), above (b) and upper left (c) is nearest a+b-c.
func paeth(a, b, c uint8) uint8 {
	pc := int(c)
	pa := int(b) - pc
	pb := int(a) - pc
	pc = absInt(pa + pb)
	pa = absInt(pa)
	pb = absInt(pb)
	if pa <= pb && pa <= pc {
		return a
	} else if pb <= pc {
		return b
	}
	return c
}

func absInt(x int) int {
	m := x >> 63
	return (x ^ m) - m
}
