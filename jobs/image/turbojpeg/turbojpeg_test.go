package turbojpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

// TestMain lets the tests re-run this binary with another PPOOL_JPEG, since
// the library is loaded once per process.
func TestMain(m *testing.M) {
	if os.Getenv("TURBOJPEG_TEST_CHILD") == "1" {
		ok, why := Available()
		fmt.Printf("available=%v\nwhy=%s\nbackend=%s\ncheck=%v\n", ok, why, Backend(), Check())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(t *testing.T, env string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TURBOJPEG_TEST_CHILD=1", env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with %s: %v\n%s", env, err, out)
	}
	return string(out)
}

// TestFallback runs with or without the library: PPOOL_JPEG=go turns it
// off and says so, an invalid value is an error, and PPOOL_JPEG=turbo
// either loads it or fails Check naming the package to install.
func TestFallback(t *testing.T) {
	out := runChild(t, EnvBackend+"=go")
	for _, want := range []string{"available=false", "why=libjpeg-turbo is not available: PPOOL_JPEG=go", "backend=go", "check=<nil>"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("PPOOL_JPEG=go: output lacks %q:\n%s", want, out)
		}
	}
	out = runChild(t, EnvBackend+"=fast")
	if !strings.Contains(out, `check=PPOOL_JPEG="fast": want go or turbo`) || !strings.Contains(out, "backend=go") {
		t.Errorf("PPOOL_JPEG=fast: %s", out)
	}
	out = runChild(t, EnvBackend+"=turbo")
	if _, err := openLibrary(); err == nil {
		if !strings.Contains(out, "available=true") || !strings.Contains(out, "check=<nil>") || !strings.Contains(out, "backend=turbo") {
			t.Errorf("PPOOL_JPEG=turbo with the library: %s", out)
		}
	} else if !strings.Contains(out, "check=PPOOL_JPEG=turbo: libjpeg-turbo is not available") || !strings.Contains(out, "apt-get install libturbojpeg0") {
		t.Errorf("PPOOL_JPEG=turbo without the library: %s", out)
	}
}

// TestCheckForcedTurbo covers what Check says when the forced library is
// missing, on machines where it is not.
func TestCheckForcedTurbo(t *testing.T) {
	missing := loaded{mode: ModeTurbo, err: fmt.Errorf("%w: libturbojpeg.so.0: not found", ErrUnavailable)}
	if err := missing.check(); err == nil || !strings.Contains(err.Error(), "PPOOL_JPEG=turbo: libjpeg-turbo is not available: libturbojpeg.so.0: not found") {
		t.Errorf("check() = %v", err)
	}
	auto := loaded{mode: ModeAuto, err: missing.err}
	if err := auto.check(); err != nil {
		t.Errorf("unset PPOOL_JPEG, library missing: check() = %v, want nil (Go's decoder is used)", err)
	}
}

func TestOpenRejectsOtherLibraries(t *testing.T) {
	if _, err := openLibrary(); err != nil {
		t.Skip(err)
	}
	if _, err := open("libc.so.6"); err == nil || !strings.Contains(err.Error(), "libc.so.6 has no symbol tjInitDecompress") {
		t.Errorf("open(libc) = %v", err)
	}
	if _, err := open("/nonexistent/libturbojpeg.so.0"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("open(missing) = %v", err)
	}
}

func TestBackend(t *testing.T) {
	needLibrary(t)
	b := Backend()
	if !strings.HasPrefix(b, "turbo") {
		t.Fatalf("Backend() = %q", b)
	}
	t.Logf("Backend() = %q, Path() = %q", b, Path())
}

// TestDecodeMatchesGo decodes every kind of file ppool meets with both
// decoders. Greyscale and CMYK agree within ±1; colour files without
// chroma subsampling within ±3 (the IDCTs and YCbCr-to-RGB conversions
// round differently; against Pillow, which is libjpeg-turbo too, the
// difference is 0). With subsampling, libjpeg's fancy upsampling and
// image/jpeg's replication differ at colour edges by up to 62 on these
// files, so only the mean is bounded there and the maximum is logged.
func TestDecodeMatchesGo(t *testing.T) {
	needLibrary(t)
	gray := toGray(readPNG(t, fixture("photo.png")))
	cases := []struct {
		name    string
		data    []byte
		goData  []byte // what image/jpeg is given, when it differs
		max     int    // largest sample difference allowed; 0: not checked
		maxMean float64
		want    Colorspace
		sub     Subsampling
	}{
		{name: "progressive 4:4:4", data: readFile(t, fixture("progressive.jpg")), max: 3, maxMean: 0.5, want: YCbCr, sub: Subsampling444},
		{name: "examples progressive", data: readFile(t, example("progressive.jpg")), max: 3, maxMean: 0.5, want: YCbCr, sub: Subsampling444},
		{name: "examples rotated", data: readFile(t, example("rotated.jpg")), max: 3, maxMean: 0.5, want: YCbCr, sub: Subsampling444},
		{name: "exif6", data: readFile(t, fixture("exif6.jpg")), max: 3, maxMean: 0.5, want: YCbCr, sub: Subsampling444},
		{name: "cmyk", data: readFile(t, fixture("cmyk.jpg")), max: 1, maxMean: 0.5, want: CMYK, sub: Subsampling444},
		{name: "cmyk without Adobe marker", data: withoutAdobe(t, readFile(t, fixture("cmyk.jpg"))), goData: readFile(t, fixture("cmyk.jpg")), max: 1, maxMean: 0.5, want: CMYK, sub: Subsampling444},
		{name: "ycck", data: readFile(t, fixture("ycck.jpg")), max: 3, maxMean: 0.5, want: YCCK, sub: Subsampling444},
		{name: "grey", data: goEncode(t, gray, 90), max: 1, maxMean: 0.5, want: Gray, sub: SubsamplingGray},
		{name: "4:2:0 photo", data: goEncode(t, readPNG(t, fixture("photo.png")), 90), maxMean: 1.5, want: YCbCr, sub: Subsampling420},
		{name: "4:2:0 synthetic", data: goEncode(t, photo(301, 203), 90), maxMean: 1.5, want: YCbCr, sub: Subsampling420},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := DecodeConfig(c.data)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Colorspace != c.want || cfg.Subsampling != c.sub {
				t.Errorf("DecodeConfig = %+v, want %v %v", cfg, c.want, c.sub)
			}
			got, err := Decode(c.data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			goData := c.goData
			if goData == nil {
				goData = c.data
			}
			ref, err := jpeg.Decode(bytes.NewReader(goData))
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds() != ref.Bounds() || got.Bounds().Dx() != cfg.Width || got.Bounds().Dy() != cfg.Height {
				t.Fatalf("bounds %v, image/jpeg %v, header %dx%d", got.Bounds(), ref.Bounds(), cfg.Width, cfg.Height)
			}
			var want image.Image
			switch got.(type) {
			case *image.Gray, *image.CMYK: // image/jpeg's types too
				want = ref
			case *image.NRGBA:
				got, want = toRGBA(got), toRGBA(ref) // opaque: the same bytes
			default:
				t.Fatalf("Decode returned %T", got)
			}
			maxDiff, mean := pixDiff(t, got, want)
			t.Logf("%T %dx%d %v: largest difference from image/jpeg %d, mean %.3f", got, cfg.Width, cfg.Height, cfg.Subsampling, maxDiff, mean)
			if c.max > 0 && maxDiff > c.max || mean > c.maxMean {
				t.Errorf("largest difference %d (allowed %d), mean %.3f (allowed %.2f)", maxDiff, c.max, mean, c.maxMean)
			}
		})
	}
}

// TestDecodeMatchesPillow compares with Pillow's decoding of the same
// files (libjpeg-turbo too, through libjpeg's own API; see
// testdata/gen_pillow.py), at full size and DCT-scaled as Pillow's
// draft() and thumbnail() do: within ±2, as ppool promises; in fact equal.
func TestDecodeMatchesPillow(t *testing.T) {
	needLibrary(t)
	photo420 := readFile(t, "testdata/photo420.jpg")
	cases := []struct {
		name       string
		data       []byte
		minW, minH int
		ref        string
	}{
		{"progressive 4:4:4", readFile(t, fixture("progressive.jpg")), 0, 0, fixture("progressive_ref.png")},
		{"4:2:0", photo420, 0, 0, "testdata/photo420_ref.png"},
		{"4:2:0 at 1/2", photo420, 128, 96, "testdata/photo420_2_ref.png"},
		{"4:2:0 at 1/4", photo420, 64, 48, "testdata/photo420_4_ref.png"},
		{"4:2:0 at 1/8", photo420, 32, 24, "testdata/photo420_8_ref.png"},
	}
	for _, c := range cases {
		got, err := Decode(c.data, DecodeOptions{MinWidth: c.minW, MinHeight: c.minH})
		if err != nil {
			t.Fatal(err)
		}
		want := toRGBA(readPNG(t, c.ref))
		maxDiff, mean := pixDiff(t, toRGBA(got), want)
		t.Logf("%s: largest difference from Pillow %d, mean %.3f", c.name, maxDiff, mean)
		if maxDiff > 2 {
			t.Errorf("%s: largest difference from Pillow %d, want at most 2", c.name, maxDiff)
		}
	}
}

func TestDecodeScaled(t *testing.T) {
	needLibrary(t)
	src := photo(641, 479)
	data := goEncode(t, src, 95)
	full, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		minW, minH int
		w, h       int
	}{
		{0, 0, 641, 479},
		{1, 1, 81, 60},       // 1/8
		{81, 60, 81, 60},     // 1/8 exactly
		{82, 0, 161, 120},    // 1/4
		{0, 121, 241, 180},   // 3/8
		{200, 200, 321, 240}, // 1/2
		{600, 1, 641, 479},   // 15/16 is not a factor: 1/1
		{560, 1, 561, 420},   // 7/8
		{5000, 5000, 641, 479},
	}
	for _, c := range cases {
		img, err := Decode(data, DecodeOptions{MinWidth: c.minW, MinHeight: c.minH})
		if err != nil {
			t.Fatal(err)
		}
		size := img.Bounds().Size()
		if size != (image.Point{c.w, c.h}) {
			t.Errorf("min %dx%d: got %v, want %dx%d", c.minW, c.minH, size, c.w, c.h)
			continue
		}
		if w, h := ScaledSize(Config{Width: 641, Height: 479}, c.minW, c.minH); w != c.w || h != c.h {
			t.Errorf("ScaledSize(min %dx%d) = %dx%d, want %dx%d", c.minW, c.minH, w, h, c.w, c.h)
		}
		// The scaled image is the full one, averaged: compare with a box
		// filter of the full decode where the factor is 1/k.
		if k := 641 / c.w; k*c.w+k > 641 && k > 1 {
			if p := psnr(t, img, boxShrink(toRGBA(full), k, c.w, c.h)); p < 30 {
				t.Errorf("1/%d: PSNR against a box-filtered full decode %.1f dB, want ≥ 30", k, p)
			}
		}
	}
}

// boxShrink averages k×k blocks of img into a w×h image (edge blocks are
// partial).
func boxShrink(img *image.RGBA, k, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	b := img.Bounds()
	for y := range h {
		for x := range w {
			var sum [4]int
			n := 0
			for yy := y * k; yy < min(y*k+k, b.Dy()); yy++ {
				for xx := x * k; xx < min(x*k+k, b.Dx()); xx++ {
					i := img.PixOffset(xx, yy)
					for c := range 4 {
						sum[c] += int(img.Pix[i+c])
					}
					n++
				}
			}
			i := dst.PixOffset(x, y)
			for c := range 4 {
				dst.Pix[i+c] = uint8((sum[c] + n/2) / n)
			}
		}
	}
	return dst
}

func TestEncodeRoundTrip(t *testing.T) {
	needLibrary(t)
	src := readPNG(t, fixture("photo.png"))
	gray := toGray(src)
	nrgba := image.NewNRGBA(src.Bounds())
	copy(nrgba.Pix, toRGBA(src).Pix)
	for i := 3; i < len(nrgba.Pix); i += 4 {
		nrgba.Pix[i] = 0 // transparent: the colours are still written
	}
	cases := []struct {
		name string
		img  image.Image
		sub  Subsampling
	}{
		{"RGBA", toRGBA(src), Subsampling420},
		{"NRGBA, alpha ignored", nrgba, Subsampling420},
		{"Gray", gray, SubsamplingGray},
		{"sub-image", toRGBA(src).SubImage(image.Rect(5, 7, 100, 60)), Subsampling420},
		{"YCbCr (converted)", mustGoDecode(t, goEncode(t, src, 100)), Subsampling420},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := Encode(c.img, 90)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := DecodeConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Subsampling != c.sub {
				t.Errorf("subsampling %v, want %v", cfg.Subsampling, c.sub)
			}
			back := mustGoDecode(t, data)
			if back.Bounds().Size() != c.img.Bounds().Size() {
				t.Fatalf("decoded size %v, want %v", back.Bounds().Size(), c.img.Bounds().Size())
			}
			want := c.img
			if n, ok := want.(*image.NRGBA); ok {
				want = &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect} // the colours, as if opaque
			}
			p := psnr(t, back, want)
			goData := goEncode(t, want, 90)
			goPSNR := psnr(t, mustGoDecode(t, goData), want)
			t.Logf("PSNR %.2f dB, %d bytes (image/jpeg: %.2f dB, %d bytes)", p, len(data), goPSNR, len(goData))
			if p < goPSNR-0.5 || len(data) > len(goData)*11/10 {
				t.Errorf("PSNR %.2f dB in %d bytes, worse than image/jpeg's %.2f dB in %d", p, len(data), goPSNR, len(goData))
			}
		})
	}
	if _, err := Encode(image.NewRGBA(image.Rect(0, 0, 0, 5)), 90); err == nil {
		t.Error("empty image encoded")
	}
}

func mustGoDecode(t testing.TB, data []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDecodeErrors: every bad file is an error with libjpeg-turbo's
// message, classified as truncated or corrupt, and never an image.
func TestDecodeErrors(t *testing.T) {
	needLibrary(t)
	good := goEncode(t, photo(160, 120), 90)
	prog := readFile(t, fixture("progressive.jpg"))
	sos := bytes.Index(good, []byte{0xff, 0xda})
	sof := bytes.Index(good, []byte{0xff, 0xc0})
	precision := bytes.Clone(good)
	precision[sof+4] = 12 // a 12-bit file, which image/jpeg rejects too
	markers := bytes.Clone(good)
	for i := sos + 20; i < len(markers)-2; i += 7 {
		markers[i] = 0xff // markers in the middle of the entropy-coded data
	}
	cases := []struct {
		name string
		data []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "empty JPEG data"},
		{"SOI only", good[:2], ErrTruncated, ""},
		{"cut in header", good[:sos/2], ErrTruncated, ""},
		{"cut in scan", good[:len(good)/2], ErrTruncated, "Premature end of JPEG file"},
		{"cut before EOI", good[:len(good)-2], ErrTruncated, "Premature end of JPEG file"},
		{"progressive cut", prog[:len(prog)*2/3], ErrTruncated, "Premature end of JPEG file"},
		{"not a JPEG", []byte("GIF89a and more bytes than that"), ErrCorrupt, "Not a JPEG file"},
		{"tables only", []byte("\xff\xd8\xff\xd9"), ErrTruncated, "JPEG data has no image"},
		{"12-bit", precision, ErrCorrupt, "Unsupported JPEG data precision 12"},
		{"markers in scan", markers, ErrCorrupt, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := Decode(c.data, DecodeOptions{})
			if err == nil {
				t.Fatalf("decoded a %v image", img.Bounds())
			}
			if img != nil {
				t.Error("an image and an error")
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) || e.Message == "" {
				t.Errorf("error %q (%#v), want %v containing %q", err, err, c.kind, c.msg)
			}
			t.Logf("%v", err)
		})
	}
}

// TestDecodeToleratesStrayBytes: bytes between segments are a libjpeg
// warning, not an error, as image/jpeg accepts them too.
func TestDecodeToleratesStrayBytes(t *testing.T) {
	needLibrary(t)
	good := goEncode(t, photo(64, 48), 90)
	sos := bytes.Index(good, []byte{0xff, 0xda})
	stray := append(append(append([]byte(nil), good[:sos]...), 0x12, 0x34), good[sos:]...)
	if _, err := jpeg.Decode(bytes.NewReader(stray)); err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	img, err := Decode(stray, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Decode(good, DecodeOptions{})
	if d, _ := pixDiff(t, img, want); d != 0 {
		t.Errorf("differs from the clean file by %d", d)
	}
	// The same warning followed by a cut: the cut is what counts.
	if _, err := Decode(stray[:len(stray)*3/4], DecodeOptions{}); !errors.Is(err, ErrTruncated) {
		t.Errorf("stray bytes, then cut: %v, want ErrTruncated", err)
	}
}

func TestDecodeMaxBytes(t *testing.T) {
	needLibrary(t)
	base := goEncode(t, photo(400, 300), 90) // 4:2:0 baseline
	prog := readFile(t, fixture("progressive.jpg"))
	cases := []struct {
		name string
		data []byte
		opts DecodeOptions
		ok   bool
	}{
		{"baseline, room for the pixels", base, DecodeOptions{MaxBytes: 400 * 300 * 4}, true},
		{"baseline, a byte short", base, DecodeOptions{MaxBytes: 400*300*4 - 1}, false},
		{"baseline at 1/8", base, DecodeOptions{MinWidth: 50, MinHeight: 38, MaxBytes: 50 * 38 * 4}, true},
		// Progressive: the pixels plus 2 bytes per sample of three full
		// 128×96 components.
		{"progressive", prog, DecodeOptions{MaxBytes: 128*96*4 + 3*128*96*2}, true},
		{"progressive without its coefficients", prog, DecodeOptions{MaxBytes: 128*96*4 + 3*128*96*2 - 1}, false},
		{"progressive at 1/8, coefficients still full size", prog, DecodeOptions{MinWidth: 16, MinHeight: 12, MaxBytes: 16*12*4 + 3*128*96*2 - 1}, false},
	}
	for _, c := range cases {
		_, err := Decode(c.data, c.opts)
		if c.ok && err != nil || !c.ok && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestConcurrentDecode: several goroutines decode and encode at once; each
// call has its own handle, and each gets its own file's pixels.
func TestConcurrentDecode(t *testing.T) {
	needLibrary(t)
	type input struct {
		data []byte
		want image.Image
	}
	var inputs []input
	for i, data := range [][]byte{
		readFile(t, fixture("progressive.jpg")),
		readFile(t, fixture("cmyk.jpg")),
		goEncode(t, photo(200, 150), 90),
		goEncode(t, toGray(photo(90, 70)), 80),
		readFile(t, fixture("progressive.jpg"))[:3000], // an error
	} {
		want, err := Decode(data, DecodeOptions{MinWidth: 40 * (i % 2)})
		inputs = append(inputs, input{data, want})
		if (err != nil) != (i == 4) {
			t.Fatal(err)
		}
	}
	var g errgroup.Group
	for w := range 8 {
		g.Go(func() error {
			for j := range 40 {
				i := (w + j) % len(inputs)
				img, err := Decode(inputs[i].data, DecodeOptions{MinWidth: 40 * (i % 2)})
				if inputs[i].want == nil {
					if !errors.Is(err, ErrTruncated) {
						return fmt.Errorf("input %d: %v, want ErrTruncated", i, err)
					}
					continue
				}
				if err != nil {
					return err
				}
				if !bytes.Equal(pixOf(t, img), pixOf(t, inputs[i].want)) {
					return fmt.Errorf("input %d: pixels differ from the first decode", i)
				}
				if _, err := Encode(img, 85); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}
