package image

import (
	"bytes"
	"fmt"
	"image"
	"math/rand/v2"
	"slices"
	"testing"
)

// opaqueNoise is an opaque w×h image of random colours, each channel 0 or
// 255 half the time: the largest overshoots a filter can make, so both
// clamps of the rounding are exercised.
func opaqueNoise(w, h int, seed uint64) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		switch {
		case i%4 == 3:
			img.Pix[i] = 255
		case r.IntN(2) == 0:
			img.Pix[i] = uint8(r.IntN(2) * 255)
		default:
			img.Pix[i] = uint8(r.IntN(256))
		}
	}
	return img
}

// Resize takes resizeOpaque's path for opaque images, and gives exactly
// the bytes of the general path (resizeSeparable, in premultiplied alpha)
// at every size and filter: shrinks, enlargements, odd widths (a pixel
// pair split across packed words), one-pixel sides, and a shrink big
// enough for the box reduction first.
func TestResizeOpaqueSameBytes(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	if !photo.Opaque() {
		t.Fatal("photo.png is not opaque")
	}
	sizes := [][4]int{
		{375, 250, 256, 171}, // a 6 MP photo's 1/8 decode to a thumbnail
		{1, 1, 3, 2}, {7, 5, 100, 3}, {100, 99, 1, 1}, {33, 17, 32, 16},
		{64, 48, 7, 9}, {5, 300, 5, 31}, {301, 11, 1000, 11}, {1200, 40, 37, 5},
	}
	for _, filter := range []Resample{Lanczos3, CatmullRom, Bilinear} {
		for i, s := range sizes {
			src := opaqueNoise(s[0], s[1], uint64(i))
			check := func(name string, src *image.NRGBA, w, h int) {
				t.Helper()
				got, err := Resize(src, w, h, filter)
				if err != nil {
					t.Fatal(err)
				}
				want := generalResize(src, w, h, filter)
				if !bytes.Equal(got.Pix, want.Pix) {
					t.Errorf("%v %s %d×%d→%d×%d: %d of %d bytes differ from the general path",
						filter, name, src.Rect.Dx(), src.Rect.Dy(), w, h, countDiff(got.Pix, want.Pix), len(want.Pix))
				}
			}
			check("noise", src, s[2], s[3])
			check("photo", photo, s[2], s[3])
		}
	}
}

// generalResize is resample with the general (premultiplied, four
// channel) path forced; it also checks that resample would have taken
// the opaque path, so the comparison is not of a path with itself.
func generalResize(src *image.NRGBA, width, height int, filter Resample) *image.NRGBA {
	inW, inH := src.Rect.Dx(), src.Rect.Dy()
	extentW, extentH := float64(inW), float64(inH)
	if fx, fy := reduceFactors(inW, inH, width, height); fx > 1 || fy > 1 {
		src = reduceBox(src, fx, fy)
		extentW, extentH = float64(inW)/float64(fx), float64(inH)/float64(fy)
	}
	f, support := filter.kernel()
	wx := newWeights(src.Rect.Dx(), extentW, width, f, support)
	wy := newWeights(src.Rect.Dy(), extentH, height, f, support)
	if !opaqueExact(wx) || !opaqueExact(wy) || !opaqueFits(wx, wy) || !src.Opaque() {
		panic(fmt.Sprintf("%v %d×%d→%d×%d would not take the opaque path", filter, inW, inH, width, height))
	}
	dst := image.NewNRGBA(image.Rect(0, 0, width, height))
	resizeSeparable(dst, src, wx, wy)
	return dst
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// A worker resizing file after file of one size makes its weights once;
// the cached ones are newWeights' own.
func TestCachedWeights(t *testing.T) {
	a, _ := cachedWeights(375, 375, 256, Lanczos3)
	if b, _ := cachedWeights(375, 375, 256, Lanczos3); a != b {
		t.Error("the same weights were made twice")
	}
	if b, _ := cachedWeights(375, 375, 256, CatmullRom); a == b {
		t.Error("another filter's weights were reused")
	}
	if b, _ := cachedWeights(375, 374.5, 256, Lanczos3); a == b {
		t.Error("another extent's weights were reused")
	}
	f, support := Lanczos3.kernel()
	want := newWeights(375, 375, 256, f, support)
	if !slices.Equal(a.w, want.w) || !slices.Equal(a.start, want.start) || !slices.Equal(a.count, want.count) || a.maxAbsSum != want.maxAbsSum {
		t.Error("cached weights differ from newWeights'")
	}
}

// uniformTaps gives every output pixel the same number of taps, inside
// the source, with the same weighted sum of any row as the weights it
// was made from.
func TestUniformTaps(t *testing.T) {
	row := make([]int64, 1000)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range row {
		row[i] = int64(r.IntN(256))
	}
	sum := func(ws *weights, i int) int64 {
		var s int64
		for t, w := range ws.w[i*ws.stride : i*ws.stride+ws.count[i]] {
			s += int64(w) * row[ws.start[i]+t]
		}
		return s
	}
	for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear} {
		fn, support := f.kernel()
		for _, io := range [][2]int{{1, 5}, {9, 4}, {375, 256}, {256, 375}, {1000, 3}, {4, 4}} {
			ws := newWeights(io[0], float64(io[0]), io[1], fn, support)
			u := uniformTaps(ws, io[0])
			for i := range io[1] {
				if u.count[i] != u.stride || u.start[i] < 0 || u.start[i]+u.count[i] > io[0] {
					t.Fatalf("%v %d→%d pixel %d: taps %d from %d, stride %d", f, io[0], io[1], i, u.count[i], u.start[i], u.stride)
				}
				if a, b := sum(ws, i), sum(u, i); a != b {
					t.Errorf("%v %d→%d pixel %d: sum %d, want %d", f, io[0], io[1], i, b, a)
				}
			}
		}
	}
}
