package fastpng

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/png"
	"math/rand/v2"
	"reflect"
	"testing"
)

// testImages returns one small image of every type Encode handles, with
// random pixels (including transparent and half-transparent ones), some
// opaque, and one with a bounds origin away from (0, 0).
func testImages(rng *rand.Rand, w, h int) map[string]image.Image {
	r := image.Rect(0, 0, w, h)
	fill := func(pix []byte) {
		for i := range pix {
			pix[i] = uint8(rng.Uint32())
		}
	}
	gray := image.NewGray(r)
	fill(gray.Pix)
	gray16 := image.NewGray16(r)
	fill(gray16.Pix)
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	opaqueNRGBA := image.NewNRGBA(r)
	fill(opaqueNRGBA.Pix)
	for i := 3; i < len(opaqueNRGBA.Pix); i += 4 {
		opaqueNRGBA.Pix[i] = 0xff
	}
	rgba := image.NewRGBA(r)
	for i := 0; i < len(rgba.Pix); i += 4 {
		a := uint8(rng.Uint32())
		switch rng.IntN(3) {
		case 0:
			a = 0
		case 1:
			a = 0xff
		}
		rgba.Pix[i+3] = a
		for c := range 3 {
			rgba.Pix[i+c] = uint8(rng.UintN(uint(a) + 1))
		}
	}
	opaqueRGBA := image.NewRGBA(r)
	fill(opaqueRGBA.Pix)
	for i := 3; i < len(opaqueRGBA.Pix); i += 4 {
		opaqueRGBA.Pix[i] = 0xff
	}
	nrgba64 := image.NewNRGBA64(r)
	fill(nrgba64.Pix)
	opaqueNRGBA64 := image.NewNRGBA64(r)
	fill(opaqueNRGBA64.Pix)
	for i := 6; i < len(opaqueNRGBA64.Pix); i += 8 {
		opaqueNRGBA64.Pix[i], opaqueNRGBA64.Pix[i+1] = 0xff, 0xff
	}
	rgba64 := image.NewRGBA64(r)
	for x := range w {
		for y := range h {
			a := uint16(rng.Uint32())
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(rng.UintN(uint(a) + 1)), uint16(rng.UintN(uint(a) + 1)), uint16(rng.UintN(uint(a) + 1)), a})
		}
	}
	alpha := image.NewAlpha(r)
	fill(alpha.Pix)
	ycbcr := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	fill(ycbcr.Y)
	fill(ycbcr.Cb)
	fill(ycbcr.Cr)
	cmyk := image.NewCMYK(r)
	fill(cmyk.Pix)
	paletted := image.NewPaletted(r, palette.Plan9)
	fill(paletted.Pix)
	offset := image.NewNRGBA(image.Rect(-3, 5, w-3, h+5))
	fill(offset.Pix)
	return map[string]image.Image{
		"Gray": gray, "Gray16": gray16, "NRGBA": nrgba, "NRGBA/opaque": opaqueNRGBA,
		"RGBA": rgba, "RGBA/opaque": opaqueRGBA, "NRGBA64": nrgba64,
		"NRGBA64/opaque": opaqueNRGBA64, "RGBA64": rgba64, "Alpha": alpha,
		"YCbCr": ycbcr, "CMYK": cmyk, "Paletted": paletted,
		"NRGBA/offset": offset, "NRGBA/sub": nrgba.SubImage(image.Rect(1, 1, w, h)),
		"Gray/sub": gray.SubImage(image.Rect(1, 0, w, h-1)),
	}
}

// stdlibPNG is what image/png writes for img.
func stdlibPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustDecodeStdlib(t testing.TB, data []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/png cannot decode: %v", err)
	}
	return img
}

// sameImage reports whether a and b have the same type, bounds and pixels.
func sameImage(a, b image.Image) bool {
	return reflect.DeepEqual(a, b)
}

// TestEncodeLikeStdlib: for every image type, at every level, the file
// decodes with image/png to exactly what image/png's own file decodes to,
// in the same colour type and bit depth.
func TestEncodeLikeStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][2]int{{2, 2}, {7, 3}, {33, 17}} {
		for name, img := range testImages(rng, size[0], size[1]) {
			want := stdlibPNG(t, img)
			wantImg := mustDecodeStdlib(t, want)
			for level := range 10 {
				var buf bytes.Buffer
				if err := Encode(&buf, img, level); err != nil {
					t.Fatalf("%s %v level %d: %v", name, size, level, err)
				}
				got := buf.Bytes()
				if !bytes.Equal(got[8:8+8+13], want[8:8+8+13]) {
					t.Errorf("%s %v level %d: IHDR % x, image/png writes % x", name, size, level, got[8:29], want[8:29])
				}
				if gotImg := mustDecodeStdlib(t, got); !sameImage(gotImg, wantImg) {
					t.Errorf("%s %v level %d: decodes to other pixels than image/png's file", name, size, level)
				}
				checkChunks(t, got)
			}
		}
	}
}

// checkChunks walks a PNG file's chunks and fails unless every CRC is
// right, IHDR comes first, IEND last, and no IDAT holds over idatSize.
func checkChunks(t *testing.T, data []byte) {
	t.Helper()
	if string(data[:8]) != pngHeader {
		t.Fatalf("no PNG signature")
	}
	var kinds []string
	for p := data[8:]; len(p) > 0; {
		if len(p) < 12 {
			t.Fatalf("truncated chunk after %v", kinds)
		}
		n := int(binary.BigEndian.Uint32(p))
		kind := string(p[4:8])
		if kind == "IDAT" && n > idatSize {
			t.Errorf("IDAT of %d bytes, over %d", n, idatSize)
		}
		if got, want := binary.BigEndian.Uint32(p[8+n:]), crc32.ChecksumIEEE(p[4:8+n]); got != want {
			t.Errorf("%s CRC %08x, want %08x", kind, got, want)
		}
		kinds = append(kinds, kind)
		p = p[12+n:]
	}
	if kinds[0] != "IHDR" || kinds[len(kinds)-1] != "IEND" {
		t.Errorf("chunks %v", kinds)
	}
}

// TestEncodeManyIDATs: a large image is cut into IDAT chunks of at most
// idatSize bytes, each with its CRC, and decodes to the same pixels.
func TestEncodeManyIDATs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewNRGBA(image.Rect(0, 0, 600, 400))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var buf bytes.Buffer
	if err := Encode(&buf, img, 0); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 2*idatSize {
		t.Fatalf("file of %d bytes is too small for the test", buf.Len())
	}
	checkChunks(t, buf.Bytes())
	if got := mustDecodeStdlib(t, buf.Bytes()); !sameImage(got, img) {
		t.Error("pixels differ after the round trip")
	}
}

func TestEncodeErrors(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	for _, level := range []int{-1, 10} {
		if err := Encode(new(bytes.Buffer), img, level); !errors.Is(err, ErrLevel) {
			t.Errorf("level %d: error %v, want ErrLevel", level, err)
		}
	}
	if err := Encode(new(bytes.Buffer), image.NewGray(image.Rect(0, 0, 0, 5)), 6); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("empty image: error %v, want ErrEmptyImage", err)
	}
	// A failing writer's error comes back, at every point of the file.
	var full bytes.Buffer
	if err := Encode(&full, img, 6); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < full.Len(); n++ {
		w := &limitedWriter{n: n}
		if err := Encode(w, img, 6); !errors.Is(err, errWriterFull) {
			t.Errorf("writer failing after %d bytes: error %v", n, err)
		}
	}
}

var errWriterFull = errors.New("writer full")

type limitedWriter struct{ n int }

func (w *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errWriterFull
	}
	w.n -= len(p)
	return len(p), nil
}

// TestEncodeReusesBuffers: encoding one image after another of the same
// size allocates little beyond the pooled encoder.
func TestEncodeReusesBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; test.sh runs this without it")
	}
	img := photo(256, 256, 3)
	var buf bytes.Buffer
	allocs := testing.AllocsPerRun(5, func() {
		buf.Reset()
		if err := Encode(&buf, img, 6); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("%v allocations per Encode, want at most 10", allocs)
	}
}
