package image

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

// Tiles of any shape, rendered separately and pasted, give exactly the
// whole image.
func TestMandelbrotTilesAreByteIdentical(t *testing.T) {
	for _, m := range []Mandelbrot{
		{Width: 240, Height: 160, Center: -0.5, Span: 3, MaxIter: 100},
		{Width: 97, Height: 61, Center: complex(-0.7436447860, 0.1318252536), Span: 3e-6, MaxIter: 700},
	} {
		whole, err := m.Render(image.Rect(0, 0, m.Width, m.Height))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []image.Point{{m.Width, 1}, {m.Width, 7}, {16, 16}, {13, 50}, {1, 1}} {
			if testing.Short() && size == (image.Point{1, 1}) {
				continue
			}
			got := image.NewNRGBA(whole.Rect)
			for y := 0; y < m.Height; y += size.Y {
				for x := 0; x < m.Width; x += size.X {
					tile := image.Rect(x, y, x+size.X, y+size.Y).Intersect(whole.Rect)
					part, err := m.Render(tile)
					if err != nil {
						t.Fatal(err)
					}
					Paste(got, part, tile.Min)
				}
			}
			if !equalPix(got, whole) {
				t.Errorf("%+v: tiles of %v differ from the whole image", m, size)
			}
		}
	}
}

func TestMandelbrotPixels(t *testing.T) {
	m := Mandelbrot{Width: 4, Height: 2, Center: 0, Span: 8, MaxIter: 50}
	img, err := m.Render(image.Rect(0, 0, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	// Two-unit pixels centred on ±1±1i and ±3±1i: all outside the set.
	for y := range 2 {
		for x := range 4 {
			if c := img.NRGBAAt(x, y); c.A != 255 || c == (color.NRGBA{0, 0, 0, 255}) {
				t.Errorf("(%d,%d) = %v, want an opaque palette colour", x, y, c)
			}
		}
	}
	// The origin, in the set: black.
	one := Mandelbrot{Width: 1, Height: 1, Center: 0, Span: 1e-3, MaxIter: 1000}
	img, err = one.Render(image.Rect(0, 0, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if c := img.NRGBAAt(0, 0); c != (color.NRGBA{0, 0, 0, 255}) {
		t.Errorf("origin = %v, want black", c)
	}
	// The smooth count moves continuously through the palette.
	if c := paletteAt(0); c != [3]uint8{66, 30, 15} {
		t.Errorf("paletteAt(0) = %v", c)
	}
	if c := paletteAt(0.5); c != [3]uint8{46, 19, 21} {
		t.Errorf("paletteAt(0.5) = %v", c)
	}
	for _, mu := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -3} {
		if c := paletteAt(mu); c != [3]uint8{66, 30, 15} {
			t.Errorf("paletteAt(%v) = %v", mu, c)
		}
	}
}

func TestMandelbrotErrors(t *testing.T) {
	ok := Mandelbrot{Width: 10, Height: 10, Span: 3, MaxIter: 10}
	full := image.Rect(0, 0, 10, 10)
	for _, tc := range []struct {
		m    Mandelbrot
		tile image.Rectangle
		msg  string
	}{
		{Mandelbrot{Width: 0, Height: 10, Span: 3, MaxIter: 10}, full, "image size 0×10 out of range"},
		{Mandelbrot{Width: 30001, Height: 1, Span: 3, MaxIter: 10}, full, "out of range"},
		{Mandelbrot{Width: 10, Height: 10, Span: 0, MaxIter: 10}, full, "span 0 must be positive"},
		{Mandelbrot{Width: 10, Height: 10, Span: math.NaN(), MaxIter: 10}, full, "span NaN"},
		{Mandelbrot{Width: 10, Height: 10, Span: 3, MaxIter: 0}, full, "max iterations 0"},
		{Mandelbrot{Width: 10, Height: 10, Span: 3, MaxIter: 10, Center: complex(math.Inf(1), 0)}, full, "centre"},
		{ok, image.Rect(5, 5, 11, 6), "tile (5,5)-(11,6) not inside the 10×10 image"},
		{ok, image.Rect(5, 5, 5, 6), "not inside"},
		{ok, image.Rect(-1, 0, 3, 3), "not inside"},
	} {
		if _, err := tc.m.Render(tc.tile); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v %v: error %v, want %q", tc.m, tc.tile, err, tc.msg)
		}
	}
	// Absurd but valid windows render without panicking.
	for _, span := range []float64{1e-300, 1e300, math.MaxFloat64} {
		m := Mandelbrot{Width: 3, Height: 3, Center: complex(1e300, -1e300), Span: span, MaxIter: 5}
		if _, err := m.Render(image.Rect(0, 0, 3, 3)); err != nil {
			t.Errorf("span %v: %v", span, err)
		}
	}
}

func BenchmarkMandelbrot(b *testing.B) {
	m := Mandelbrot{Width: 512, Height: 512, Center: -0.5, Span: 3, MaxIter: 256}
	for b.Loop() {
		if _, err := m.Render(image.Rect(0, 0, 512, 512)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(512*512/1e6*float64(b.N)/b.Elapsed().Seconds(), "MP/s")
}
