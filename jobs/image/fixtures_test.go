package image

import (
	"flag"
	"image"
	"image/color"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata inputs made in Go (then run testdata/gen.sh for the references)")

// goFixtures are the test inputs made in Go; testdata/gen.sh makes the
// reference outputs from them with libvips, Pillow and ImageMagick.
var goFixtures = map[string]func() *image.NRGBA{
	"photo.png": func() *image.NRGBA { return makePhoto(256, 192, 1) },
	"small.png": func() *image.NRGBA { return makePhoto(64, 48, 2) },
	"rgba.png":  makeTransparentPhoto,
}

// makeTransparentPhoto is a photo with an alpha ramp, a fully transparent
// band whose hidden colour is loud green, and opaque areas: resizing or
// blurring it without premultiplying would smear green into the picture.
func makeTransparentPhoto() *image.NRGBA {
	img := makePhoto(128, 96, 3)
	for y := range 96 {
		for x := range 128 {
			c := img.NRGBAAt(x, y)
			switch {
			case x >= 40 && x < 64:
				c = color.NRGBA{0, 255, 0, 0}
			case y < 32:
				c.A = uint8(y * 8)
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestFixtures(t *testing.T) {
	for name, make := range goFixtures {
		want := make()
		if *update {
			if err := Save(testdata(name), want, SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// The committed inputs must be what the generator makes, or the
		// references in testdata were made from something else.
		if got := mustLoad(t, name); !equalPix(got, want) {
			t.Errorf("testdata/%s differs from its generator; run go test -run TestFixtures -update and testdata/gen.sh", name)
		}
	}
	if *update {
		if err := os.WriteFile(testdata("notes.png"), []byte("Meeting notes\n- not an image\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
