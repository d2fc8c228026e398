package image

import (
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveRoundTrip(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	translucent := mustLoad(t, "rgba.png")
	gray, err := Grayscale{}.Apply(photo)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		file    string
		img     *image.NRGBA
		minPSNR float64 // 0: exact
		model   color.Model
	}{
		{"out.png", photo, 0, color.RGBAModel},
		{"alpha.png", translucent, 0, color.NRGBAModel},
		{"gray.png", gray, 0, color.GrayModel},
		{"out.jpg", photo, 30, color.YCbCrModel},
		{"OUT.JPEG", photo, 30, color.YCbCrModel},
		{"gray.jpg", gray, 35, color.GrayModel},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := Save(path, tc.img, SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			got := mustLoadPath(t, path)
			if tc.minPSNR == 0 && !equalPix(got, tc.img) {
				t.Error("pixels changed")
			}
			if p := psnr(t, got, tc.img); p < tc.minPSNR {
				t.Errorf("PSNR %.2f dB, want >= %v", p, tc.minPSNR)
			}
			if m := colorModel(t, path); m != tc.model {
				t.Errorf("written with colour model %T, want %T", m, tc.model)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, %v; want 0644", fi.Mode(), err)
			}
		})
	}
	assertNoTempFiles(t, dir)
}

func mustLoadPath(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	img, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// colorModel reports the colour model a file declares in its header.
func colorModel(t *testing.T, path string) color.Model {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.ColorModel
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestSaveQuality(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	dir := t.TempDir()
	size := map[int]int64{}
	for _, q := range []int{0, 30, 90, 100} {
		path := filepath.Join(dir, "q.jpg")
		if err := Save(path, photo, SaveOptions{Quality: q}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		size[q] = fi.Size()
	}
	if size[0] != size[90] {
		t.Errorf("quality 0 gave %d bytes, quality 90 %d: 0 should mean 90", size[0], size[90])
	}
	if !(size[30] < size[90] && size[90] < size[100]) {
		t.Errorf("sizes not increasing with quality: %v", size)
	}
}

func TestSaveErrors(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	dir := t.TempDir()
	existing := filepath.Join(dir, "keep.png")
	if err := Save(existing, photo, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(existing)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		img  image.Image
		opts SaveOptions
		is   error
		msg  string
	}{
		{"gif", filepath.Join(dir, "out.gif"), photo, SaveOptions{}, ErrUnknownExtension, "out.gif: unknown image file extension"},
		{"no extension", filepath.Join(dir, "out"), photo, SaveOptions{}, ErrUnknownExtension, "out: unknown image file extension"},
		{"quality", filepath.Join(dir, "q.jpg"), photo, SaveOptions{Quality: 101}, nil, "q.jpg: JPEG quality 101 out of range"},
		{"no directory", filepath.Join(dir, "nope", "out.png"), photo, SaveOptions{}, os.ErrNotExist, "out.png: open "},
		// image/png refuses an empty image, after the temporary file
		// exists: it must go, and the file being replaced must stay.
		{"encode fails", existing, image.NewNRGBA(image.Rect(0, 0, 0, 0)), SaveOptions{}, nil, "keep.png: fastpng: image has no pixels"},
		{"nil image", filepath.Join(dir, "nil.png"), nil, SaveOptions{}, nil, "nil.png: nil image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Save(tc.path, tc.img, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Errorf("error %q is not a *FileError for %s", err, tc.path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %q", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	after, err := os.ReadFile(existing)
	if err != nil || string(after) != string(before) {
		t.Errorf("failed save changed the existing file (err %v)", err)
	}
	assertNoTempFiles(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "out.gif")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out.gif exists after a failed save")
	}
}

func TestEncodePNGCompression(t *testing.T) {
	photo := mustLoad(t, "photo.png")
	var fast, best strings.Builder
	if err := Encode(&fast, photo, PNG, SaveOptions{Compression: 1}); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&best, photo, PNG, SaveOptions{Compression: 9}); err != nil {
		t.Fatal(err)
	}
	if fast.Len() <= best.Len() {
		t.Errorf("BestSpeed %d bytes, BestCompression %d", fast.Len(), best.Len())
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{
		"a.png": PNG, "b.PNG": PNG, "dir.jpg/c.jpeg": JPEG, "d.JpG": JPEG,
		"e.gif": 0, "f": 0, "g.png.bak": 0, ".png/h": 0,
	} {
		got, err := FormatOf(path)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", path, got, err, want)
		}
	}
}
