package image

import (
	"fmt"
	"image"
	"image/color"
	"reflect"
	"strings"
	"testing"
)

func TestPlanStrips(t *testing.T) {
	for _, tc := range []struct {
		height, rows int
		want         []Strip
	}{
		{10, 4, []Strip{{0, 4, 10}, {4, 8, 10}, {8, 10, 10}}},
		{10, 5, []Strip{{0, 5, 10}, {5, 10, 10}}},
		{3, 1, []Strip{{0, 1, 3}, {1, 2, 3}, {2, 3, 3}}},
		{10, 10, []Strip{{0, 10, 10}}},
		{10, 99, []Strip{{0, 10, 10}}},
		{10, 0, []Strip{{0, 10, 10}}},
		{10, -3, []Strip{{0, 10, 10}}},
		{0, 4, nil},
		{-1, 4, nil},
	} {
		if got := PlanStrips(tc.height, tc.rows); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PlanStrips(%d, %d) = %v, want %v", tc.height, tc.rows, got, tc.want)
		}
	}
}

func TestStripInput(t *testing.T) {
	for _, tc := range []struct {
		s      Strip
		halo   int
		y0, y1 int
	}{
		{Strip{0, 10, 100}, 6, 0, 16},
		{Strip{40, 50, 100}, 6, 34, 56},
		{Strip{95, 100, 100}, 6, 89, 100},
		{Strip{3, 4, 5}, 100, 0, 5},
		{Strip{3, 4, 5}, 0, 3, 4},
	} {
		if y0, y1 := tc.s.Input(tc.halo); y0 != tc.y0 || y1 != tc.y1 {
			t.Errorf("%v.Input(%d) = [%d,%d), want [%d,%d)", tc.s, tc.halo, y0, y1, tc.y0, tc.y1)
		}
	}
}

// stitch runs f strip by strip, each from only its own input rows, as
// separate processes would, and pastes the results together.
func stitch(t *testing.T, f Filter, full *image.NRGBA, stripRows int) *image.NRGBA {
	t.Helper()
	w, h := full.Rect.Dx(), full.Rect.Dy()
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for _, s := range PlanStrips(h, stripRows) {
		y0, y1 := s.Input(f.Halo())
		part, err := f.ApplyStrip(Crop(full, image.Rect(0, y0, w, y1)), s)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if part.Rect != image.Rect(0, 0, w, s.Y1-s.Y0) {
			t.Fatalf("%v: result bounds %v", s, part.Rect)
		}
		Paste(out, part, image.Pt(0, s.Y0))
	}
	return out
}

// Every filter, cut into strips of every awkward size (one row, smaller
// than the halo, not dividing the height, the whole image, more than it),
// stitches back to exactly the bytes of the whole-image run.
func TestStripsAreByteIdentical(t *testing.T) {
	t.Parallel()
	// Strips cut across rows, so the width hardly matters: keep the test
	// quick under -race with 100-pixel-wide crops that hold the roof, the
	// pole, transparency and the image's top and bottom edges.
	photo := Crop(mustLoad(t, "photo.png"), image.Rect(20, 40, 120, 192))
	translucent := Crop(mustLoad(t, "rgba.png"), image.Rect(0, 0, 100, 96))
	filters := []Filter{
		GaussianBlur{Sigma: 0.6},
		GaussianBlur{Sigma: 2},
		GaussianBlur{Sigma: 7.5}, // halo 23
		Sharpen{Sigma: 1.5, Amount: 1.2, Threshold: 3},
		Sharpen{Sigma: 4, Amount: 0.5},
		Grayscale{},
		Edges{},
	}
	for _, src := range []*image.NRGBA{photo, translucent} {
		for _, f := range filters {
			want, err := f.Apply(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range []int{1, 2, 5, 16, 33, src.Rect.Dy() - 1, src.Rect.Dy(), 1000} {
				name := fmt.Sprintf("%T%+v/%dx%d/strips-of-%d", f, f, src.Rect.Dx(), src.Rect.Dy(), rows)
				if got := stitch(t, f, src, rows); !equalPix(got, want) {
					t.Errorf("%s: stitched strips differ from the whole image", name)
				}
			}
		}
	}
}

// A sub-image (non-zero origin, wider stride) is filtered like a copy.
func TestFilterSubImage(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	r := image.Rect(30, 20, 130, 90)
	sub := photo.SubImage(r).(*image.NRGBA)
	for _, f := range []Filter{GaussianBlur{Sigma: 2}, Sharpen{Sigma: 1, Amount: 1}, Grayscale{}, Edges{}} {
		got, err := f.Apply(sub)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.Apply(Crop(photo, r))
		if err != nil {
			t.Fatal(err)
		}
		if !equalPix(got, want) || got.Rect.Min != (image.Point{}) {
			t.Errorf("%T: sub-image result differs from its copy's", f)
		}
	}
}

func TestApplyStripErrors(t *testing.T) {
	img := mustLoad(t, "small.png") // 64×48
	f := GaussianBlur{Sigma: 1}     // halo 3
	for _, tc := range []struct {
		s    Strip
		rows int
		msg  string
	}{
		{Strip{10, 20, 48}, 10, "strip rows [10,20) of 48 needs input rows [7,23) (16 rows), got 10 rows"},
		{Strip{0, 10, 48}, 16, "needs input rows [0,13) (13 rows), got 16 rows"},
		{Strip{20, 10, 48}, 10, "invalid strip: rows [20,10) of 48"},
		{Strip{0, 49, 48}, 48, "invalid strip"},
		{Strip{-1, 10, 48}, 10, "invalid strip"},
		{Strip{}, 0, "invalid strip"},
	} {
		_, err := f.ApplyStrip(Crop(img, image.Rect(0, 0, 64, tc.rows)), tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v with %d rows: error %v, want %q", tc.s, tc.rows, err, tc.msg)
		}
	}
	if _, err := f.ApplyStrip(nil, Strip{0, 1, 1}); err == nil {
		t.Error("nil image: no error")
	}
}

func TestCropPaste(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for i := range src.Pix {
		src.Pix[i] = uint8(i)
	}
	c := Crop(src, image.Rect(1, 1, 10, 2)) // clipped to (1,1)-(4,2)
	if c.Rect != image.Rect(0, 0, 3, 1) || c.NRGBAAt(0, 0) != src.NRGBAAt(1, 1) || c.NRGBAAt(2, 0) != src.NRGBAAt(3, 1) {
		t.Errorf("Crop: %v %v", c.Rect, c.Pix)
	}
	if e := Crop(src, image.Rect(10, 10, 20, 20)); !e.Rect.Empty() {
		t.Errorf("Crop outside: %v", e.Rect)
	}

	dst := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	Paste(dst, c, image.Pt(2, 2)) // only its first pixel fits
	if got := dst.NRGBAAt(2, 2); got != src.NRGBAAt(1, 1) {
		t.Errorf("Paste: (2,2) = %v", got)
	}
	if got := dst.NRGBAAt(3, 2); got != src.NRGBAAt(2, 1) {
		t.Errorf("Paste: (3,2) = %v", got)
	}
	if got := dst.NRGBAAt(1, 2); got != (color.NRGBA{}) {
		t.Errorf("Paste wrote outside its place: (1,2) = %v", got)
	}
	// A source with a non-zero origin pastes from its top-left corner.
	sub := src.SubImage(image.Rect(2, 1, 4, 3)).(*image.NRGBA)
	dst2 := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	Paste(dst2, sub, image.Pt(0, 0))
	if dst2.NRGBAAt(0, 0) != src.NRGBAAt(2, 1) || dst2.NRGBAAt(1, 1) != src.NRGBAAt(3, 2) {
		t.Errorf("Paste of a sub-image: %v", dst2.Pix)
	}
	Paste(dst2, sub, image.Pt(-5, 0)) // entirely outside: no-op, no panic
}
