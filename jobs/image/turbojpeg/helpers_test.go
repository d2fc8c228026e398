package turbojpeg

import (
	"bytes"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// needLibrary skips a test when libjpeg-turbo is not loaded; TestFallback
// covers that case.
func needLibrary(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		t.Skip(why)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func fixture(name string) string { return filepath.Join("..", "testdata", name) }

func example(name string) string { return filepath.Join("..", "..", "..", "examples", "images", name) }

func readPNG(t testing.TB, path string) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func goEncode(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// toRGBA converts any image to *image.RGBA with origin (0, 0), the common
// form the comparisons use.
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return dst
}

func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return dst
}

// pixDiff compares two images' bytes, which must have the same type and
// size: the largest difference of one sample, and the mean.
func pixDiff(t testing.TB, a, b image.Image) (maxDiff int, mean float64) {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v and %v", a.Bounds(), b.Bounds())
	}
	pa, pb := pixOf(t, a), pixOf(t, b)
	if len(pa) != len(pb) {
		t.Fatalf("types differ: %T and %T", a, b)
	}
	var sum int
	for i := range pa {
		d := int(pa[i]) - int(pb[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxDiff = max(maxDiff, d)
	}
	return maxDiff, float64(sum) / float64(len(pa))
}

func pixOf(t testing.TB, img image.Image) []byte {
	switch m := img.(type) {
	case *image.Gray:
		return m.Pix
	case *image.RGBA:
		return m.Pix
	case *image.NRGBA:
		return m.Pix
	case *image.CMYK:
		return m.Pix
	}
	t.Fatalf("unexpected image type %T", img)
	return nil
}

// psnr compares the colours of two images of the same size, in dB.
func psnr(t testing.TB, a, b image.Image) float64 {
	t.Helper()
	ra, rb := toRGBA(a), toRGBA(b)
	if ra.Rect != rb.Rect {
		t.Fatalf("sizes differ: %v and %v", ra.Rect, rb.Rect)
	}
	var sse float64
	for i := range ra.Pix {
		if i%4 == 3 {
			continue
		}
		d := float64(ra.Pix[i]) - float64(rb.Pix[i])
		sse += d * d
	}
	mse := sse / float64(len(ra.Pix)/4*3)
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// photo makes a w×h picture with what makes photographs hard to compress:
// smooth gradients, sharp colour edges and fine noise.
func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r := 128 + 100*math.Sin(6*fx+3*fy)
			g := 128 + 100*math.Cos(5*fy-2*fx)
			b := 128 + 90*math.Sin(9*fx*fy+1)
			if (x/(w/7+1)+y/(h/5+1))%2 == 0 { // coloured tiles
				r, b = b, r
			}
			n := rng.Float64()*24 - 12
			i := img.PixOffset(x, y)
			img.Pix[i] = clamp(r + n)
			img.Pix[i+1] = clamp(g + n)
			img.Pix[i+2] = clamp(b + n)
			img.Pix[i+3] = 0xff
		}
	}
	return img
}

func clamp(v float64) uint8 { return uint8(min(max(math.Round(v), 0), 255)) }

var bigJPEG = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photo(3000, 2000), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// withoutAdobe removes the Adobe APP14 segment of a JPEG, which must
// directly follow SOI.
func withoutAdobe(t testing.TB, data []byte) []byte {
	t.Helper()
	if len(data) < 6 || data[2] != 0xff || data[3] != 0xee {
		t.Fatal("no APP14 segment after SOI")
	}
	n := int(data[4])<<8 | int(data[5])
	return append(append([]byte(nil), data[:2]...), data[4+n:]...)
}
