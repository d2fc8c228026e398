package image

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

// Grayscale is Pillow's convert("L") exactly.
func TestGrayscaleMatchesPillow(t *testing.T) {
	got, err := Grayscale{}.Apply(mustLoad(t, "photo.png"))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustLoad(t, "pillow_gray.png"); !equalPix(got, want) {
		t.Errorf("differs from Pillow's convert(\"L\"): PSNR %.2f dB", psnr(t, got, want))
	}
}

func TestGrayscaleKeepsAlpha(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	src.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 10})
	src.SetNRGBA(1, 0, color.NRGBA{0, 0, 255, 255})
	got, err := Grayscale{}.Apply(src)
	if err != nil {
		t.Fatal(err)
	}
	// 19595·255/65536 = 76.2, 7471·255/65536 = 29.07
	want := []uint8{76, 76, 76, 10, 29, 29, 29, 255}
	if string(got.Pix) != string(want) {
		t.Errorf("got %v, want %v", got.Pix, want)
	}
}

// refSobel is a plain float Sobel magnitude on Rec. 601 luma.
func refSobel(src *image.NRGBA) *image.NRGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	l := func(x, y int) float64 {
		c := src.NRGBAAt(max(0, min(w-1, x)), max(0, min(h-1, y)))
		return float64(luma(c.R, c.G, c.B))
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			gx := l(x+1, y-1) + 2*l(x+1, y) + l(x+1, y+1) - l(x-1, y-1) - 2*l(x-1, y) - l(x-1, y+1)
			gy := l(x-1, y+1) + 2*l(x, y+1) + l(x+1, y+1) - l(x-1, y-1) - 2*l(x, y-1) - l(x+1, y-1)
			m := clamp8(math.Hypot(gx, gy))
			dst.SetNRGBA(x, y, color.NRGBA{m, m, m, 255})
		}
	}
	return dst
}

func TestEdges(t *testing.T) {
	// A vertical step of 40 grey levels: |Gx| = 4·40 either side of it,
	// 0 elsewhere.
	step := image.NewNRGBA(image.Rect(0, 0, 6, 3))
	for y := range 3 {
		for x := range 6 {
			v := uint8(100)
			if x >= 3 {
				v = 140
			}
			step.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	got, err := Edges{}.Apply(step)
	if err != nil {
		t.Fatal(err)
	}
	for x, want := range []uint8{0, 0, 160, 160, 0, 0} {
		for y := range 3 {
			if c := got.NRGBAAt(x, y); c != (color.NRGBA{want, want, want, 255}) {
				t.Errorf("(%d,%d) = %v, want %d", x, y, c, want)
			}
		}
	}

	for _, name := range []string{"photo.png", "rgba.png", "orient3.png"} {
		src := mustLoad(t, name)
		got, err := Edges{}.Apply(src)
		if err != nil {
			t.Fatal(err)
		}
		if want := refSobel(src); !equalPix(got, want) {
			t.Errorf("%s: differs from the float Sobel: PSNR %.2f dB", name, psnr(t, got, want))
		}
	}
}

func TestSharpen(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	flat := image.NewNRGBA(image.Rect(0, 0, 20, 10))
	for i := range flat.Pix {
		flat.Pix[i] = 77
	}
	for _, tc := range []struct {
		name string
		s    Sharpen
		src  *image.NRGBA
	}{
		{"flat", Sharpen{Sigma: 2, Amount: 5}, flat},
		{"amount 0", Sharpen{Sigma: 2, Amount: 0}, photo},
		{"threshold 255", Sharpen{Sigma: 1, Amount: 3, Threshold: 255}, photo},
	} {
		got, err := tc.s.Apply(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		if !equalPix(got, tc.src) {
			t.Errorf("%s: image changed", tc.name)
		}
	}

	// Against the unsharp-mask rule in float64 on the same blur.
	for _, s := range []Sharpen{{Sigma: 2, Amount: 1}, {Sigma: 1, Amount: 2.5, Threshold: 6}} {
		got, err := s.Apply(photo)
		if err != nil {
			t.Fatal(err)
		}
		blurred, err := GaussianBlur{Sigma: s.Sigma}.Apply(photo)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Pix {
			o, b := float64(photo.Pix[i]), float64(blurred.Pix[i])
			want := o
			if d := o - b; i%4 != 3 && math.Abs(d) >= float64(s.Threshold) {
				want = math.Max(0, math.Min(255, o+s.Amount*d))
			}
			if math.Abs(float64(got.Pix[i])-want) > 1 {
				t.Fatalf("%+v: byte %d = %d, want %.1f", s, i, got.Pix[i], want)
			}
		}
	}
}

func TestFilterParamErrors(t *testing.T) {
	img := mustLoad(t, "small.png")
	for _, tc := range []struct {
		f   Filter
		msg string
	}{
		{GaussianBlur{}, "sigma 0 out of range"},
		{GaussianBlur{Sigma: -1}, "sigma -1 out of range"},
		{GaussianBlur{Sigma: math.NaN()}, "sigma NaN out of range"},
		{GaussianBlur{Sigma: 251}, "sigma 251 out of range (0, 250]"},
		{Sharpen{Sigma: 0, Amount: 1}, "sigma 0 out of range"},
		{Sharpen{Sigma: 1, Amount: -1}, "amount -1 out of range"},
		{Sharpen{Sigma: 1, Amount: math.Inf(1)}, "amount +Inf out of range"},
		{Sharpen{Sigma: 1, Amount: 1, Threshold: 256}, "threshold 256 out of range"},
	} {
		if _, err := tc.f.Apply(img); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%#v: error %v, want %q", tc.f, err, tc.msg)
		}
		if _, err := tc.f.ApplyStrip(img, Strip{Y0: 0, Y1: 48, Height: 48}); err == nil {
			t.Errorf("%#v: ApplyStrip: no error", tc.f)
		}
	}
	if _, err := (Edges{}).Apply(nil); err == nil {
		t.Error("Apply(nil): no error")
	}
}

func BenchmarkEdges(b *testing.B) {
	src := makePhoto(2048, 1536, 1)
	for b.Loop() {
		if _, err := (Edges{}).Apply(src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2048*1536/1e6*float64(b.N)/b.Elapsed().Seconds(), "MP/s")
}

func BenchmarkSharpen(b *testing.B) {
	src := makePhoto(2048, 1536, 1)
	for b.Loop() {
		if _, err := (Sharpen{Sigma: 2, Amount: 1}).Apply(src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2048*1536/1e6*float64(b.N)/b.Elapsed().Seconds(), "MP/s")
}
