package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// pngHeader is a PNG signature and an IHDR claiming w×h pixels of the given
// bit depth and colour type, followed by an IDAT holding a few bytes.
func pngHeader(w, h uint32, depth, colorType byte) []byte {
	chunk := func(b []byte, typ string, data []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		c := append([]byte(typ), data...)
		b = append(b, c...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(c))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	b := chunk([]byte(pngMagic), "IHDR", ihdr)
	return chunk(b, "IDAT", []byte{0x78, 0x9c, 0x63, 0x00})
}

// progressiveJPEGHeader is the start of a progressive JPEG w×h pixels with
// three full-resolution components: SOF2, a DC Huffman table and the first
// scan's header, enough for image/jpeg to allocate the whole image and its
// coefficients before it finds no data.
func progressiveJPEGHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8}
	b = append(b, 0xff, 0xc2, 0, 17, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 3,
		1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0)
	b = append(b, 0xff, 0xc4, 0, 20, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	return append(b, 0xff, 0xda, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 0, 0)
}

// TestLoadRefusesByMemory: tiny files that claim images whose decoding
// needs gigabytes, within the limits on sides and pixels, are refused from
// their headers with a message naming the file, its size, its layout and
// the memory needed, and the refusal itself allocates next to nothing.
func TestLoadRefusesByMemory(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		// 2 bytes a pixel... as NRGBA64: 8, and 4 more to convert.
		{"deep.png", pngHeader(16000, 16000, 16, 6), "deep.png: PNG image is 16000×16000 pixels (16-bit RGBA): decoding it needs 2.9 GiB, over the limit of 2.0 GiB"},
		{"prog.jpg", progressiveJPEGHeader(16384, 16384), "prog.jpg: JPEG image is 16384×16384 pixels (progressive JPEG, 3 components): decoding it needs 4.8 GiB, over the limit of 2.0 GiB"},
		{"huge.jpg", progressiveJPEGHeader(65535, 65535), "huge.jpg: JPEG image is 65535×65535 pixels, over the limit of 30000×30000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Load(path)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("Load: %v, want ErrTooLarge", err)
			} else if msg := strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)); !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("error %q, want it to start %q", msg, tc.msg)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("refusing a %d-byte file allocated %d bytes", len(tc.data), n)
			}
			if _, _, err := Size(path); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Size: %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestDecodeCostBoundsAllocation: for every layout the decoders return, the
// cost read from the header is at least what decoding really allocates,
// and not far above it.
func TestDecodeCostBoundsAllocation(t *testing.T) {
	const w, h = 400, 300
	photo := makePhoto(w, h, 3)
	encode := func(m image.Image) []byte {
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	jpg := func(m image.Image) []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	convert := func(m draw.Image) image.Image {
		draw.Draw(m, m.Bounds(), photo, image.Point{}, draw.Src)
		return m
	}
	r := image.Rect(0, 0, w, h)
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.NRGBA{uint8(i), uint8(255 - i), uint8(i * 7), uint8(i)}
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"NRGBA", encode(photo)},
		{"RGB", encode(convert(image.NewRGBA(r)))},
		{"gray", encode(convert(image.NewGray(r)))},
		{"gray16", encode(convert(image.NewGray16(r)))},
		{"RGB16", encode(convert(image.NewRGBA64(r)))},
		{"NRGBA64", encode(convert(image.NewNRGBA64(r)))},
		{"paletted", encode(convert(image.NewPaletted(r, pal)))},
		{"interlaced.png", read("interlaced.png")},
		{"palette_trns.png", read("palette_trns.png")},
		{"gray_alpha.png", read("gray_alpha.png")},
		{"orient6.png", read("orient6.png")},
		{"small16.png", read("small16.png")},
		{"JPEG 4:2:0", jpg(photo)},
		{"JPEG gray", jpg(convert(image.NewGray(r)))},
		{"progressive.jpg", read("progressive.jpg")},
		{"cmyk.jpg", read("cmyk.jpg")},
		{"ycck.jpg", read("ycck.jpg")},
		{"exif6.jpg", read("exif6.jpg")},
	} {
		hd, err := readHeader(tc.data, len(tc.data), loadBudget())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var cost decodeCost
		if hd.format == "JPEG" {
			cost = jpegDecodeCost(scanJPEG(tc.data), len(tc.data), hd.width, hd.height, hd.orientation)
		} else {
			cost = pngDecodeCost(tc.data, len(tc.data), hd.width, hd.height, hd.orientation)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := decode(tc.data, loadBudget())
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		used := after.TotalAlloc - before.TotalAlloc
		px := uint64(img.Rect.Dx() * img.Rect.Dy())
		// The decoders' fixed costs (Huffman tables, zlib's window) are
		// not counted: about 100 KiB.
		const fixed = 128 << 10
		if used > cost.bytes+fixed {
			t.Errorf("%s (%s, %d pixels): decoding allocated %d bytes, more than the %d counted", tc.name, cost.layout, px, used, cost.bytes)
		}
		if cost.bytes > 2*used+fixed {
			t.Errorf("%s (%s, %d pixels): counted %d bytes, over twice the %d decoding allocated", tc.name, cost.layout, px, cost.bytes, used)
		}
		t.Logf("%-16s %-36s %7.2f bytes/pixel counted, %7.2f allocated", tc.name, cost.layout, float64(cost.bytes)/float64(px), float64(used)/float64(px))
	}
}

// TestSizeReadsPastLongHeaders: a file whose header runs past the first
// read (a JPEG with a large ICC profile before its frame, a PNG with a
// large text chunk before its tRNS) is measured, not called truncated.
func TestSizeReadsPastLongHeaders(t *testing.T) {
	dir := t.TempDir()
	photo := makePhoto(64, 48, 2)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, photo, nil); err != nil {
		t.Fatal(err)
	}
	big := []byte{0xff, 0xd8}
	for range 8 { // 8 APP2 segments of 64 KiB: an ICC profile's size
		seg := make([]byte, 0xffff-2)
		copy(seg, "ICC_PROFILE\x00")
		big = append(big, 0xff, 0xe2, 0xff, 0xff)
		big = append(big, seg...)
	}
	big = append(big, jpg.Bytes()[2:]...)

	grey := image.NewGray(image.Rect(0, 0, 64, 48))
	var p bytes.Buffer
	if err := png.Encode(&p, grey); err != nil {
		t.Fatal(err)
	}
	raw := p.Bytes()
	idat := bytes.Index(raw, []byte("IDAT")) - 4
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		c := append([]byte(typ), data...)
		return binary.BigEndian.AppendUint32(append(b, c...), crc32.ChecksumIEEE(c))
	}
	bigPNG := append(bytes.Clone(raw[:idat]), chunk("tEXt", append([]byte("Comment\x00"), make([]byte, 600<<10)...))...)
	bigPNG = append(bigPNG, chunk("tRNS", []byte{0, 7})...)
	bigPNG = append(bigPNG, raw[idat:]...)

	for name, data := range map[string][]byte{"icc.jpg": big, "text.png": bigPNG} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, h, err := Size(path)
		if err != nil || w != 64 || h != 48 {
			t.Errorf("%s: Size %d×%d, %v; want 64×48", name, w, h, err)
		}
		if _, err := Load(path); err != nil {
			t.Errorf("%s: Load: %v", name, err)
		}
	}
}

// TestLoadHonoursGoMemoryLimit: in a worker whose Go memory limit is below
// MaxImageMemory (the pool sets GOMEMLIMIT from its MaxWorkerMemory), that
// limit is the bound.
func TestLoadHonoursGoMemoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "photo.png")
	if err := Save(path, makePhoto(400, 300, 1), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(512 << 10))
	_, err := Load(path)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "over the limit of 512.0 KiB") {
		t.Errorf("Load under a 512 KiB Go memory limit: %v", err)
	}
}
