package image

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// makePhoto draws a deterministic photo-like test image: smooth gradients,
// shapes with hard edges, fine detail and mild noise. The fixtures in
// testdata were made from makePhoto(256, 192, 1) and friends; see
// fixtures_test.go and testdata/gen.sh.
func makePhoto(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	fw, fh := float64(w), float64(h)
	for y := range h {
		for x := range w {
			u, v := float64(x)/fw, float64(y)/fh
			// Sky-to-ground gradient with a slow horizontal colour shift.
			r := 60 + 150*v + 30*math.Sin(3*u)
			g := 90 + 100*(1-v) + 40*math.Cos(2*u+v)
			b := 200 - 120*v + 20*math.Sin(5*u*v)
			// A sun: a hard-edged disc.
			if dx, dy := u-0.7, v-0.3; dx*dx+dy*dy*(fh*fh)/(fw*fw) < 0.012 {
				r, g, b = 250, 230, 120
			}
			// A house: a rectangle with a darker window grid.
			if u > 0.15 && u < 0.45 && v > 0.5 && v < 0.85 {
				r, g, b = 170, 60, 40
				if int(u*60)%4 == 1 && int(v*50)%5 == 2 {
					r, g, b = 20, 30, 60
				}
			}
			// A diagonal pole, one to two pixels wide, anti-aliasing free.
			if d := math.Abs((u - 0.55) - 0.5*(v-0.4)); d < 0.006 && v > 0.4 {
				r, g, b = 15, 15, 15
			}
			// Fine stripes: grass texture near the bottom.
			if v > 0.9 && (x+y/3)%3 == 0 {
				g += 40
			}
			n := rng.NormFloat64() * 3
			img.SetNRGBA(x, y, color.NRGBA{clamp8(r + n), clamp8(g + n), clamp8(b + n), 255})
		}
	}
	return img
}

func clamp8(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}

// psnr compares the colour channels (RGB, alpha ignored) of two images of
// the same size, in dB; +Inf when identical.
func psnr(t testing.TB, a, b *image.NRGBA) float64 {
	t.Helper()
	if a.Rect.Size() != b.Rect.Size() {
		t.Fatalf("psnr: sizes differ: %v vs %v", a.Rect.Size(), b.Rect.Size())
	}
	var se float64
	n := 0
	for y := range a.Rect.Dy() {
		ra, rb := pixRow(a, y), pixRow(b, y)
		for i := range ra {
			if i%4 == 3 {
				continue
			}
			d := float64(ra[i]) - float64(rb[i])
			se += d * d
			n++
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

// refGaussian is the float64 reference: a Gaussian sampled out to radius
// ⌈4σ⌉ (more than the ⌈3σ⌉ under test), normalised, clamp-to-edge, both
// passes in float64, rounded once. Opaque images only.
func refGaussian(src *image.NRGBA, sigma float64) *image.NRGBA {
	r := int(math.Ceil(4 * sigma))
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	tmp := make([]float64, w*h*4)
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := 0.0
				for i, kv := range k {
					xx := max(0, min(w-1, x+i-r))
					s += kv * float64(src.Pix[src.PixOffset(xx, y)+c])
				}
				tmp[(y*w+x)*4+c] = s
			}
		}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := 0.0
				for i, kv := range k {
					yy := max(0, min(h-1, y+i-r))
					s += kv * tmp[(yy*w+x)*4+c]
				}
				dst.Pix[dst.PixOffset(x, y)+c] = clamp8(s)
			}
		}
	}
	return dst
}

func testdata(name string) string { return filepath.Join("testdata", name) }

// mustLoad loads a testdata file or stops the test.
func mustLoad(t testing.TB, name string) *image.NRGBA {
	t.Helper()
	img, err := Load(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func equalPix(a, b *image.NRGBA) bool {
	if a.Rect.Size() != b.Rect.Size() {
		return false
	}
	for y := range a.Rect.Dy() {
		if string(pixRow(a, y)) != string(pixRow(b, y)) {
			return false
		}
	}
	return true
}
