package fastpng

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

// A rawSpec describes a PNG file rawPNG makes.
type rawSpec struct {
	w, h, depth, colourType int
	interlaced              bool
	palette                 int // PLTE entries, for colour type 3
	trns                    int // tRNS length: entries for palette, else 2 or 6 bytes
}

// rawPNG makes a PNG file of any colour type, bit depth and interlacing
// with random scanlines (random filter bytes too), so the corpus holds
// what image/png's encoder never writes: low bit depths, grey+alpha, tRNS
// on grey and RGB, Adam7. IDAT is cut into two chunks.
func rawPNG(rng *rand.Rand, s rawSpec) []byte {
	channels := map[int]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[s.colourType]
	bitsPP := channels * s.depth
	var raw []byte
	addRows := func(w, h int) {
		if w == 0 || h == 0 {
			return
		}
		n := (bitsPP*w + 7) / 8
		for range h {
			raw = append(raw, byte(rng.IntN(5)))
			for range n {
				raw = append(raw, byte(rng.Uint32()))
			}
		}
	}
	if s.interlaced {
		for _, p := range interlacing {
			addRows((s.w-p.xOffset+p.xFactor-1)/p.xFactor, (s.h-p.yOffset+p.yFactor-1)/p.yFactor)
		}
	} else {
		addRows(s.w, s.h)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()

	out := []byte(pngHeader)
	chunk := func(kind string, data []byte) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(out, kind...)
		out = append(out, data...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(s.w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(s.h))
	il := byte(0)
	if s.interlaced {
		il = 1
	}
	ihdr = append(ihdr, byte(s.depth), byte(s.colourType), 0, 0, il)
	chunk("IHDR", ihdr)
	if s.palette > 0 {
		pal := make([]byte, 3*s.palette)
		for i := range pal {
			pal[i] = byte(rng.Uint32())
		}
		chunk("PLTE", pal)
	}
	if s.trns > 0 {
		t := make([]byte, s.trns)
		for i := range t {
			t[i] = byte(rng.Uint32())
		}
		if s.colourType != 3 {
			// Make the transparent colour one the random pixels can hit.
			clear(t)
			if s.depth < 8 {
				t[1] = byte(rng.IntN(1 << s.depth))
			}
		}
		chunk("tRNS", t)
	}
	half := z.Len() / 2
	chunk("IDAT", z.Bytes()[:half])
	chunk("IDAT", z.Bytes()[half:])
	chunk("IEND", nil)
	return out
}

// rawSpecs lists every colour type and bit depth PNG allows, with and
// without tRNS and interlacing.
func rawSpecs(w, h int) []rawSpec {
	var specs []rawSpec
	for _, il := range []bool{false, true} {
		for _, d := range []int{1, 2, 4, 8, 16} {
			specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: 0, interlaced: il})
			specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: 0, interlaced: il, trns: 2})
		}
		for _, d := range []int{8, 16} {
			for _, ct := range []int{2, 4, 6} {
				specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: ct, interlaced: il})
			}
			specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: 2, interlaced: il, trns: 6})
		}
		for _, d := range []int{1, 2, 4, 8} {
			n := 1 << d
			for _, pal := range []int{n, max(1, n/2)} {
				specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: 3, interlaced: il, palette: pal})
				specs = append(specs, rawSpec{w: w, h: h, depth: d, colourType: 3, interlaced: il, palette: pal, trns: max(1, pal/2)})
			}
		}
	}
	return specs
}

// corpus returns PNG files of every kind: made by rawPNG, written by
// image/png for every image type, the fixtures of jobs/image/testdata, and
// the PngSuite and other files of Go's image/png tests when GOROOT has
// them.
func corpus(t *testing.T) map[string][]byte {
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range [][2]int{{1, 1}, {5, 3}, {17, 9}, {40, 33}} {
		for _, s := range rawSpecs(size[0], size[1]) {
			files[filepathName("raw", s)] = rawPNG(rng, s)
		}
		for name, img := range testImages(rng, size[0]+1, size[1]+1) {
			files["stdlib/"+name+"/"+sizeName(size)] = stdlibPNG(t, img)
		}
	}
	for _, glob := range []string{
		"../testdata/*.png",
		filepath.Join(runtime.GOROOT(), "src/image/png/testdata/*.png"),
		filepath.Join(runtime.GOROOT(), "src/image/png/testdata/pngsuite/*.png"),
	} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = data
		}
	}
	return files
}

func sizeName(s [2]int) string { return fmt.Sprintf("%dx%d", s[0], s[1]) }

func filepathName(prefix string, s rawSpec) string {
	return fmt.Sprintf("%s/%dx%d/depth%d/type%d/interlaced=%v/palette%d/trns%d",
		prefix, s.w, s.h, s.depth, s.colourType, s.interlaced, s.palette, s.trns)
}

// TestDecodeLikeStdlib: every file of the corpus decodes to the same image
// type and pixels as with image/png, or fails as image/png fails.
func TestDecodeLikeStdlib(t *testing.T) {
	files := corpus(t)
	if len(files) < 300 {
		t.Fatalf("corpus of %d files, want over 300", len(files))
	}
	for name, data := range files {
		compareDecoders(t, name, data)
	}
}

// compareDecoders fails unless Decode and DecodeConfig agree with image/png
// on data: the same result, or both an error.
func compareDecoders(t *testing.T, name string, data []byte) {
	t.Helper()
	want, wantErr := png.Decode(bytes.NewReader(data))
	got, err := Decode(bytes.NewReader(data))
	switch {
	case wantErr != nil && err == nil:
		t.Errorf("%s: decoded, image/png fails with %v", name, wantErr)
	case wantErr == nil && err != nil:
		t.Errorf("%s: %v; image/png decodes it", name, err)
	case wantErr == nil && !sameImage(got, want):
		t.Errorf("%s: decodes to a %T unlike image/png's %T", name, got, want)
	}
	wantCfg, wantErr := png.DecodeConfig(bytes.NewReader(data))
	gotCfg, err := DecodeConfig(bytes.NewReader(data))
	if (err == nil) != (wantErr == nil) || err == nil && !sameConfig(gotCfg, wantCfg) {
		t.Errorf("%s: DecodeConfig gives %v, %v; image/png %v, %v", name, gotCfg, err, wantCfg, wantErr)
	}
}

func sameConfig(a, b image.Config) bool { return reflect.DeepEqual(a, b) }

// TestDecodeDamaged: every truncation of a few files, and every single
// byte changed in them, fails with an error (never a panic) or, when
// image/png still decodes it, gives its pixels.
func TestDecodeDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var files [][]byte
	for _, s := range []rawSpec{
		{w: 9, h: 7, depth: 8, colourType: 6},
		{w: 9, h: 7, depth: 2, colourType: 3, palette: 3, trns: 2},
		{w: 9, h: 7, depth: 16, colourType: 2, interlaced: true, trns: 6},
	} {
		files = append(files, rawPNG(rng, s))
	}
	for i, data := range files {
		for n := range len(data) {
			got, err := Decode(bytes.NewReader(data[:n]))
			if err == nil {
				t.Fatalf("file %d cut to %d of %d bytes decodes to a %T", i, n, len(data), got)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("file %d cut to %d bytes: error %v, want ErrCorrupt or io.ErrUnexpectedEOF", i, n, err)
			}
		}
		for n := range len(data) {
			bad := bytes.Clone(data)
			bad[n] ^= byte(1 + rng.IntN(255))
			compareDecoders(t, "damaged", bad)
			if _, err := Decode(bytes.NewReader(bad)); err != nil && !errors.Is(err, ErrCorrupt) &&
				!errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("file %d with byte %d changed: error %v matches none of the package's errors", i, n, err)
			}
		}
	}
}

func TestDecodeLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	data := rawPNG(rng, rawSpec{w: 100, h: 50, depth: 8, colourType: 6})
	// 100×50 RGBA is 20000 bytes decoded.
	if _, err := (Decoder{MaxBytes: 20000}).Decode(bytes.NewReader(data)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := (Decoder{MaxBytes: 19999}).Decode(bytes.NewReader(data))
	var le *LimitError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &le) || le.Bytes != 20000 || le.Limit != 19999 {
		t.Fatalf("over the limit: error %v, want a *LimitError of 20000 bytes over 19999", err)
	}
	// A header declaring 2²⁰ × 2²⁰ pixels fails at once, allocating
	// nothing like that, under the default limit.
	huge := rawPNG(rng, rawSpec{w: 1, h: 1, depth: 8, colourType: 0})
	binary.BigEndian.PutUint32(huge[16:], 1<<20)
	binary.BigEndian.PutUint32(huge[20:], 1<<20)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := Decode(bytes.NewReader(huge)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("huge header: error %v, want ErrTooLarge", err)
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations refusing a huge header", allocs)
	}
}

// TestRoundTrip: what Encode writes, Decode reads back as image/png does.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for name, img := range testImages(rng, 23, 11) {
		for _, level := range []int{0, 1, 6, 9} {
			var buf bytes.Buffer
			if err := Encode(&buf, img, level); err != nil {
				t.Fatal(err)
			}
			compareDecoders(t, name, buf.Bytes())
		}
	}
}
