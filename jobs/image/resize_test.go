package image

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

// The Pillow references are made by testdata/gen.sh.
func TestResizeMatchesPillow(t *testing.T) {
	for _, tc := range []struct {
		in, ref string
		filter  Resample
		minPSNR float64
	}{
		// Target 35 dB. The filters measure 54–58 dB (Pillow rounds to 8
		// bits between its passes); the bound sits below that.
		{"photo.png", "pillow_lanczos_down.png", Lanczos3, 50},
		{"photo.png", "pillow_bicubic_down.png", CatmullRom, 50},
		{"photo.png", "pillow_bilinear_down.png", Bilinear, 50},
		{"small.png", "pillow_lanczos_up.png", Lanczos3, 50},
		{"small.png", "pillow_bicubic_up.png", CatmullRom, 50},
		// Pillow steps through the source in 16.16 fixed point, which
		// lands a few output pixels on the neighbouring source pixel
		// where the exact position is a whole number: 43 dB.
		{"photo.png", "pillow_nearest_down.png", Nearest, 35},
	} {
		ref := mustLoad(t, tc.ref)
		got, err := Resize(mustLoad(t, tc.in), ref.Rect.Dx(), ref.Rect.Dy(), tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		p := psnr(t, got, ref)
		t.Logf("%s: PSNR %.2f dB", tc.ref, p)
		if p < tc.minPSNR {
			t.Errorf("%s: PSNR %.2f dB, want >= %v", tc.ref, p, tc.minPSNR)
		}
	}
}

// Pillow resizes RGBA in premultiplied alpha, as Resize does; compare the
// premultiplied colours (what a viewer composites), since the colour of a
// nearly transparent pixel is not well defined.
func TestResizeTransparentMatchesPillow(t *testing.T) {
	ref := mustLoad(t, "pillow_lanczos_rgba.png")
	got, err := Resize(mustLoad(t, "rgba.png"), ref.Rect.Dx(), ref.Rect.Dy(), Lanczos3)
	if err != nil {
		t.Fatal(err)
	}
	p := psnr(t, premultiplied(got), premultiplied(ref))
	t.Logf("PSNR %.2f dB (premultiplied)", p)
	if p < 50 { // measured 55
		t.Errorf("PSNR %.2f dB, want >= 50", p)
	}
	var maxAlphaDiff int
	for i := 3; i < len(got.Pix); i += 4 {
		maxAlphaDiff = max(maxAlphaDiff, abs(int(got.Pix[i])-int(ref.Pix[i])))
	}
	if maxAlphaDiff > 2 {
		t.Errorf("alpha differs by up to %d", maxAlphaDiff)
	}
}

func abs(x int) int { return max(x, -x) }

// premultiplied returns img's colours multiplied by alpha, still as NRGBA.
func premultiplied(img *image.NRGBA) *image.NRGBA {
	dst := Crop(img, img.Rect)
	for i := 0; i < len(dst.Pix); i += 4 {
		a := uint32(dst.Pix[i+3])
		for c := i; c < i+3; c++ {
			dst.Pix[c] = uint8((uint32(dst.Pix[c])*a + 127) / 255)
		}
	}
	return dst
}

// No colour from fully transparent pixels bleeds into visible ones, with
// any filter, shrinking or enlarging.
func TestResizeNoBleed(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			c := color.NRGBA{0, 255, 0, 0} // hidden green
			if (x/5+y/5)%2 == 0 {
				c = color.NRGBA{255, 0, 0, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear, Nearest} {
		for _, size := range []image.Point{{13, 17}, {97, 61}} {
			got, err := Resize(img, size.X, size.Y, f)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(got.Pix); i += 4 {
				// Nearest copies pixels as they are, hidden colour and all.
				if p := got.Pix[i : i+4]; p[3] > 0 && (p[0] != 255 || p[1] != 0 || p[2] != 0) {
					t.Fatalf("%v to %v: pixel %d = %v, want pure red or transparent", f, size, i/4, p)
				}
			}
		}
	}
}

func TestResizeExact(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	translucent := mustLoad(t, "rgba.png")
	// Same size: every filter is the identity.
	for _, src := range []*image.NRGBA{photo, translucent} {
		for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear, Nearest} {
			got, err := Resize(src, src.Rect.Dx(), src.Rect.Dy(), f)
			if err != nil {
				t.Fatal(err)
			}
			want := src // Nearest copies pixels exactly
			if f != Nearest {
				want = premultipliedRoundTrip(src)
			}
			if !equalPix(got, want) {
				t.Errorf("%v at the same size changed the image", f)
			}
		}
	}
	// A flat image stays exactly flat, whatever the filter and scale.
	flat := image.NewNRGBA(image.Rect(0, 0, 33, 17))
	for i := range flat.Pix {
		flat.Pix[i] = []uint8{10, 20, 30, 200}[i%4]
	}
	for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear, Nearest} {
		got, err := Resize(flat, 8, 40, f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Pix {
			if got.Pix[i] != flat.Pix[i%4] {
				t.Fatalf("%v: flat image changed: %v", f, got.Pix[i&^3:i&^3+4])
			}
		}
	}
}

// premultipliedRoundTrip is what premultiplying and unpremultiplying at 16
// bits does to img: nothing, except that transparent pixels lose colour.
func premultipliedRoundTrip(img *image.NRGBA) *image.NRGBA {
	dst := Crop(img, img.Rect)
	for i := 0; i < len(dst.Pix); i += 4 {
		if dst.Pix[i+3] == 0 {
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2] = 0, 0, 0
		}
	}
	return dst
}

func TestThumbnail(t *testing.T) {
	photo := mustLoad(t, "photo.png") // 256×192
	for _, tc := range []struct {
		maxW, maxH int
		want       image.Point
	}{
		{64, 64, image.Pt(64, 48)},
		{100, 1000, image.Pt(100, 75)},
		{1000, 30, image.Pt(40, 30)},
		{256, 192, image.Pt(256, 192)},
		{1000, 1000, image.Pt(256, 192)}, // never enlarged
		{1, 1, image.Pt(1, 1)},
		{1000, 1, image.Pt(1, 1)},
	} {
		got, err := Thumbnail(photo, tc.maxW, tc.maxH)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rect.Size() != tc.want {
			t.Errorf("Thumbnail(%d, %d) = %v, want %v", tc.maxW, tc.maxH, got.Rect.Size(), tc.want)
		}
	}
	if _, err := Thumbnail(photo, 0, 10); err == nil {
		t.Error("Thumbnail(0, 10): no error")
	}
}

func TestResizeErrors(t *testing.T) {
	photo := mustLoad(t, "small.png")
	for _, tc := range []struct {
		w, h int
		f    Resample
		msg  string
	}{
		{0, 10, Lanczos3, "resize to 0×10: size out of range 1 to 30000"},
		{10, -1, Lanczos3, "size out of range"},
		{30001, 10, Lanczos3, "size out of range"},
		{10, 10, Resample(9), "unknown filter Resample(9)"},
		// Each side is in range, the product is not.
		{30000, 30000, Lanczos3, "resize output 30000×30000 is 900000000 pixels, over the limit of 268435456"},
	} {
		if _, err := Resize(photo, tc.w, tc.h, tc.f); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Resize(%d, %d, %v): error %v, want %q", tc.w, tc.h, tc.f, err, tc.msg)
		}
	}
	if _, err := Resize(nil, 1, 1, Lanczos3); err == nil {
		t.Error("Resize(nil): no error")
	}
}

func BenchmarkResize(b *testing.B) {
	src := makePhoto(2048, 1536, 1)
	for _, tc := range []struct {
		w, h int
		f    Resample
	}{
		{1024, 768, Lanczos3},
		{1024, 768, CatmullRom},
		{256, 192, Lanczos3},
		{3000, 2250, Lanczos3},
	} {
		b.Run(fmt.Sprintf("%v/%dx%d", tc.f, tc.w, tc.h), func(b *testing.B) {
			for b.Loop() {
				if _, err := Resize(src, tc.w, tc.h, tc.f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2048*1536/1e6*float64(b.N)/b.Elapsed().Seconds(), "input-MP/s")
		})
	}
}

// The two-lane horizontal pass needs Σ|w|·65025 < 2^31 for every output
// pixel; no filter comes near it at any scale, edges included (Lanczos3's
// worst, a huge enlargement's first pixel, is about 1.5).
func TestResizeWeightsFitTwoLanes(t *testing.T) {
	for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear} {
		fn, support := f.kernel()
		for _, io := range [][2]int{{1, 1000}, {3, 7}, {7, 3}, {100, 99}, {99, 100}, {1000, 1}, {1000, 3}, {2, 30000}} {
			w := newWeights(io[0], float64(io[0]), io[1], fn, support)
			if w.maxAbsSum*255*255 >= 1<<31 {
				t.Errorf("%v %d→%d: Σ|w| = %.3f", f, io[0], io[1], float64(w.maxAbsSum)/(1<<weightBits))
			}
		}
	}
}

// The one-channel-at-a-time pass, kept for weights too large for two
// lanes, agrees with the two-lane one.
func TestHorizontalResizeWide(t *testing.T) {
	src := mustLoad(t, "rgba.png")
	row := make([]uint64, 2*src.Rect.Dx())
	spread(row, pixRow(src, 20))
	fn, support := Lanczos3.kernel()
	for _, out := range []int{37, 128, 301} {
		w := newWeights(src.Rect.Dx(), float64(src.Rect.Dx()), out, fn, support)
		fast, wide := make([]int32, 4*out), make([]int32, 4*out)
		horizontalResize(fast, row, w)
		horizontalResizeWide(wide, row, w)
		if !slices.Equal(fast, wide) {
			t.Errorf("width %d: passes differ", out)
		}
	}
}

// TestResizeKindRefusesHugeOutput: image.resize checks the output's pixels
// and bytes, not only each side, before it reads its input: given both
// sides, or one side that the input's aspect ratio makes huge, or a shrink
// whose scratch rows (the vertical filter's window of whole output rows)
// would take gigabytes.
func TestResizeKindRefusesHugeOutput(t *testing.T) {
	dir := t.TempDir()
	save := func(name string, w, h int) string {
		path := filepath.Join(dir, name)
		if err := Save(path, makePhoto(w, h, 1), SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	square, tall := save("square.png", 100, 90), save("tall.png", 30, 6000)
	k, _ := jobs.LookupKind("image.resize")
	for _, tc := range []struct {
		input         string
		width, height int
		msg           string
	}{
		{filepath.Join(dir, "missing.png"), 30000, 30000, "resize output 30000×30000 is 900000000 pixels, over the limit of 268435456"},
		{square, 30000, 0, "resize output 30000×27000 is 810000000 pixels, over the limit of 268435456"},
		// 6000 rows to 1: each output row reads all of them, 30000 wide.
		{tall, 30000, 1, "and the resize 2.7 GiB more, over the limit of 2.0 GiB"},
	} {
		task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Output: filepath.Join(dir, "out.png"),
			Inputs: map[string]jobs.Input{"image": {Path: tc.input}},
			Params: map[string]any{"width": tc.width, "height": tc.height, "filter": "lanczos3", "quality": 90}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := k.Run(context.Background(), &task)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("resize %s to %d×%d: %v, want %q", filepath.Base(tc.input), tc.width, tc.height, err, tc.msg)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
			t.Errorf("resize %s to %d×%d: refusing allocated %d bytes", filepath.Base(tc.input), tc.width, tc.height, n)
		}
	}
}

// twoStepCases are the shrinks the two-step resize is checked on: the
// test photos themselves shrunk 4 to 9 times, and the photos enlarged to
// about 2000 pixels (as a camera's would be) then thumbnailed to 256.
func twoStepCases(t *testing.T) []struct {
	name string
	src  *image.NRGBA
	w, h int
} {
	t.Helper()
	var cases []struct {
		name string
		src  *image.NRGBA
		w, h int
	}
	for _, path := range []string{
		testdata("photo.png"), testdata("interlaced.png"), testdata("pillow_gray.png"),
		"../../examples/images/photo.png", "../../examples/images/progressive.jpg",
		"../../examples/images/rotated.jpg", "../../examples/images/shapes.png",
	} {
		src, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		w, h := src.Rect.Dx(), src.Rect.Dy()
		name := filepath.Base(path)
		for _, f := range []int{4, 5, 9} {
			cases = append(cases, struct {
				name string
				src  *image.NRGBA
				w, h int
			}{fmt.Sprintf("%s/÷%d", name, f), src, max(1, w/f), max(1, h/f)})
		}
		k := max(1, 2048/max(w, h))
		big := resample(src, k*w, k*h, Lanczos3, false)
		tw, th := thumbnailSize(k*w, k*h, 256, 256)
		cases = append(cases, struct {
			name string
			src  *image.NRGBA
			w, h int
		}{fmt.Sprintf("%s/×%d→256", name, k), big, tw, th})
	}
	return cases
}

// TestResizeTwoStepCloseToOneStep: the box reduction then the filter is
// within 45 dB PSNR of the exact one-step filter (Pillow's reducing_gap
// promise), for every filter that reduces.
func TestResizeTwoStepCloseToOneStep(t *testing.T) {
	for _, tc := range twoStepCases(t) {
		for _, f := range []Resample{Lanczos3, CatmullRom, Bilinear} {
			got, err := Resize(tc.src, tc.w, tc.h, f)
			if err != nil {
				t.Fatal(err)
			}
			exact := resample(tc.src, tc.w, tc.h, f, false)
			// What shows of a translucent pixel is its colour times its
			// alpha; the colour of a nearly transparent one is noise.
			if p := psnr(t, premultiplied(got), premultiplied(exact)); p < 45 {
				t.Errorf("%s %v: PSNR %.1f dB against one step, want ≥ 45", tc.name, f, p)
			} else {
				t.Logf("%s %v: PSNR %.1f dB", tc.name, f, p)
			}
		}
	}
}

// TestResizeReducesBigShrinks: a shrink by 4 or more reduces first (its
// result is not the one-step one), and one by less than 4 in both
// directions, or with Nearest, is exactly the one-step filter.
func TestResizeReducesBigShrinks(t *testing.T) {
	photo := mustLoad(t, "photo.png") // 256×192
	for _, tc := range []struct {
		w, h    int
		f       Resample
		reduces bool
	}{
		{64, 48, Lanczos3, true},
		{50, 37, CatmullRom, true},
		{32, 24, Bilinear, true},
		{64, 100, Lanczos3, true}, // only the width is reduced
		{65, 49, Lanczos3, false},
		{128, 96, Lanczos3, false},
		{32, 24, Nearest, false},
	} {
		got, err := Resize(photo, tc.w, tc.h, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		same := equalPix(got, resample(photo, tc.w, tc.h, tc.f, false))
		if same == tc.reduces {
			t.Errorf("%d×%d %v: same as one step = %v, want %v", tc.w, tc.h, tc.f, same, !tc.reduces)
		}
	}
}

// TestReduceBox checks the box average against a plain one, on an image
// with transparency and factors that leave partial boxes at the edges.
func TestReduceBox(t *testing.T) {
	src := mustLoad(t, "rgba.png")
	w, h := src.Rect.Dx(), src.Rect.Dy()
	for _, f := range [][2]int{{2, 2}, {3, 2}, {5, 7}, {1, 3}, {w, h}} {
		fx, fy := f[0], f[1]
		got := reduceBox(src, fx, fy)
		if want := image.Pt((w+fx-1)/fx, (h+fy-1)/fy); got.Rect.Size() != want {
			t.Fatalf("%d×%d: size %v, want %v", fx, fy, got.Rect.Size(), want)
		}
		for oy := range got.Rect.Dy() {
			for ox := range got.Rect.Dx() {
				var sum [3]float64
				var alpha, n float64
				for y := oy * fy; y < min(h, (oy+1)*fy); y++ {
					for x := ox * fx; x < min(w, (ox+1)*fx); x++ {
						c := src.NRGBAAt(x, y)
						a := float64(c.A)
						sum[0] += float64(c.R) * a
						sum[1] += float64(c.G) * a
						sum[2] += float64(c.B) * a
						alpha += a
						n++
					}
				}
				want := color.NRGBA{A: uint8(math.Round(alpha / n))}
				if alpha > 0 {
					want.R = uint8(math.Round(sum[0] / alpha))
					want.G = uint8(math.Round(sum[1] / alpha))
					want.B = uint8(math.Round(sum[2] / alpha))
				}
				if c := got.NRGBAAt(ox, oy); c != want {
					t.Fatalf("%d×%d box (%d, %d) = %v, want %v", fx, fy, ox, oy, c, want)
				}
			}
		}
	}
}

// BenchmarkThumbnailTwoStep is the thumbnail of a 6 MP photo (a JPEG
// decoded at full size: the pure-Go path, or a PNG) in one step and in two.
func BenchmarkThumbnailTwoStep(b *testing.B) {
	src := makePhoto(3000, 2000, 1)
	tw, th := thumbnailSize(3000, 2000, 256, 256)
	for _, reduce := range []bool{false, true} {
		b.Run(fmt.Sprintf("reduce=%v", reduce), func(b *testing.B) {
			for b.Loop() {
				resample(src, tw, th, Lanczos3, reduce)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "thumbnails/s")
		})
	}
}

// TestThumbnailDCTScale: with libjpeg-turbo, image.thumbnail decodes a
// 6 MP JPEG for a 256 px thumbnail at 1/8 scale (375×250), the smallest
// that holds the thumbnail, and the result is within 45 dB PSNR of the
// exact one-step Lanczos of the full-size image, as the two-step resize
// promises for its box reduction.
func TestThumbnailDCTScale(t *testing.T) {
	if ok, why := turbojpeg.Available(); !ok {
		t.Skip(why)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "in.jpg")
	if err := Save(src, bigPhoto(), SaveOptions{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := turbojpeg.DecodeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	minW, minH := thumbnailDecodeAtLeast(cfg.Width, cfg.Height, 256, 256)
	if w, h := turbojpeg.ScaledSize(cfg, minW, minH); w != 375 || h != 250 {
		t.Errorf("a 3000×2000 JPEG is decoded at %d×%d for a 256 px thumbnail, want 375×250 (1/8)", w, h)
	}

	k, _ := jobs.LookupKind("image.thumbnail")
	out := filepath.Join(dir, "thumb.png")
	task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Output: out,
		Params: map[string]any{"max_width": 256, "max_height": 256}, Inputs: map[string]jobs.Input{"image": {Path: src}}}
	if _, err := k.Run(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
	got, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	full, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	exact := resample(full, got.Rect.Dx(), got.Rect.Dy(), Lanczos3, false)
	p := psnr(t, got, exact)
	t.Logf("thumbnail %v: %.1f dB PSNR vs the exact one-step Lanczos", got.Rect.Size(), p)
	if p < 45 {
		t.Errorf("thumbnail %v: %.1f dB PSNR vs the exact one-step Lanczos, want >= 45", got.Rect.Size(), p)
	}
}
