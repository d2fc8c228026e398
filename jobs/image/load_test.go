package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Files written by other encoders (libvips, Pillow/libjpeg-turbo,
// ImageMagick; see testdata/gen.sh), each against a reference decoded by
// Pillow or the lossless original. Lossless cases must match exactly,
// alpha included; JPEG decoders differ in IDCT and upsampling by a level
// or two, so those compare by PSNR.
func TestLoadFormats(t *testing.T) {
	for _, tc := range []struct {
		file, ref string
		minPSNR   float64 // 0: exact match
	}{
		{"photo.png", "photo.png", 0},
		{"interlaced.png", "small.png", 0},
		{"small16.png", "small.png", 0},
		{"gray_alpha.png", "gray_alpha_ref.png", 0},
		{"palette_trns.png", "palette_trns_ref.png", 0},
		{"progressive.jpg", "progressive_ref.png", 35},
		{"cmyk.jpg", "cmyk_ref.png", 35},
		{"ycck.jpg", "ycck_ref.png", 35},
		{"ycck.jpg", "small.png", 30}, // and close to what went in
		{"exif6.jpg", "exif6_ref.png", 35},
	} {
		t.Run(tc.file+"~"+tc.ref, func(t *testing.T) {
			got, ref := mustLoad(t, tc.file), mustLoad(t, tc.ref)
			if got.Rect != ref.Rect {
				t.Fatalf("bounds %v, want %v", got.Rect, ref.Rect)
			}
			if tc.minPSNR == 0 {
				if !equalPix(got, ref) {
					t.Errorf("pixels differ from %s (PSNR %.2f dB)", tc.ref, psnr(t, got, ref))
				}
				return
			}
			p := psnr(t, got, ref)
			t.Logf("PSNR %.2f dB", p)
			if p < tc.minPSNR {
				t.Errorf("PSNR %.2f dB vs %s, want >= %v", p, tc.ref, tc.minPSNR)
			}
		})
	}
}

// Every kind of image image/png and image/jpeg return, made with Go's own
// encoders, decodes to the expected NRGBA pixels.
func TestLoadGoEncoded(t *testing.T) {
	photo := makePhoto(40, 30, 7)
	gray := image.NewGray(photo.Rect)
	gray16 := image.NewGray16(photo.Rect)
	rgba := image.NewRGBA(photo.Rect)
	rgba64 := image.NewRGBA64(photo.Rect)
	nrgba64 := image.NewNRGBA64(photo.Rect)
	pal := image.NewPaletted(photo.Rect, color.Palette{
		color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 128}, color.NRGBA{10, 200, 30, 0}})
	wantGray := image.NewNRGBA(photo.Rect)
	wantPal := image.NewNRGBA(photo.Rect)
	translucent := image.NewNRGBA(photo.Rect)
	for y := range 30 {
		for x := range 40 {
			c := photo.NRGBAAt(x, y)
			l := luma(c.R, c.G, c.B)
			gray.SetGray(x, y, color.Gray{l})
			gray16.SetGray16(x, y, color.Gray16{uint16(l)<<8 | 0x7f})
			wantGray.SetNRGBA(x, y, color.NRGBA{l, l, l, 255})
			rgba.SetRGBA(x, y, color.RGBA{c.R, c.G, c.B, 255})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R) << 8, uint16(c.G) << 8, uint16(c.B) << 8, 0xffff})
			t := color.NRGBA{c.R, c.G, c.B, uint8(x * 6)}
			translucent.SetNRGBA(x, y, t)
			nrgba64.SetNRGBA64(x, y, color.NRGBA64{uint16(t.R) << 8, uint16(t.G) << 8, uint16(t.B) << 8, uint16(t.A)<<8 | 0xff})
			i := (x + y) % 3
			pal.SetColorIndex(x, y, uint8(i))
			wantPal.SetNRGBA(x, y, pal.Palette[i].(color.NRGBA))
		}
	}
	for _, tc := range []struct {
		name string
		img  image.Image
		want *image.NRGBA
	}{
		{"gray", gray, wantGray},
		{"gray16", gray16, wantGray},
		{"rgb", rgba, photo},
		{"rgb16", rgba64, photo},
		{"rgba", translucent, translucent},
		{"rgba16", nrgba64, translucent},
		{"palette", pal, wantPal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := png.Encode(&buf, tc.img); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !equalPix(got, tc.want) {
				t.Errorf("pixels differ (PSNR %.2f dB)", psnr(t, got, tc.want))
			}
		})
	}
	// image/jpeg writes 4:2:0 colour and 1-channel grey.
	for _, tc := range []struct {
		name string
		img  image.Image
		want *image.NRGBA
	}{
		{"jpeg", photo, photo},
		{"jpeg-gray", gray, wantGray},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, tc.img, &jpeg.Options{Quality: 100}); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			// 4:2:0 chroma costs a few dB on hard coloured edges.
			if p := psnr(t, got, tc.want); p < 28 {
				t.Errorf("PSNR %.2f dB, want >= 28", p)
			}
		})
	}
}

// A 4-component JPEG without the Adobe marker image/jpeg insists on still
// loads, read as Adobe-style CMYK like libjpeg and Pillow read it.
func TestLoadCMYKWithoutAdobeMarker(t *testing.T) {
	data, err := os.ReadFile(testdata("cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	stripped := removeSegment(t, data, 0xee)
	if scanJPEG(stripped).adobe {
		t.Fatal("APP14 still there")
	}
	got, err := Decode(bytes.NewReader(stripped))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustLoad(t, "cmyk.jpg"); !equalPix(got, want) {
		t.Error("pixels differ from the file with its Adobe marker")
	}
}

// removeSegment returns a JPEG without its first segment with this marker.
func removeSegment(t *testing.T, data []byte, marker byte) []byte {
	t.Helper()
	for i := 2; i+4 <= len(data) && data[i] == 0xff; {
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if data[i+1] == marker {
			return append(append([]byte{}, data[:i]...), data[i+2+n:]...)
		}
		i += 2 + n
	}
	t.Fatalf("no segment %#x", marker)
	return nil
}

// orientations maps each EXIF orientation to how the upright image reads
// the stored one: upright pixel (x, y) comes from stored pixel f(x, y) of a
// w×h image. Written out independently of orient.
var orientations = map[int]func(x, y, w, h int) (int, int){
	1: func(x, y, w, h int) (int, int) { return x, y },
	2: func(x, y, w, h int) (int, int) { return w - 1 - x, y },
	3: func(x, y, w, h int) (int, int) { return w - 1 - x, h - 1 - y },
	4: func(x, y, w, h int) (int, int) { return x, h - 1 - y },
	5: func(x, y, w, h int) (int, int) { return y, x },
	6: func(x, y, w, h int) (int, int) { return y, h - 1 - x },
	7: func(x, y, w, h int) (int, int) { return w - 1 - y, h - 1 - x },
	8: func(x, y, w, h int) (int, int) { return w - 1 - y, x },
}

func upright(stored *image.NRGBA, o int) *image.NRGBA {
	w, h := stored.Rect.Dx(), stored.Rect.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := range oh {
		for x := range ow {
			sx, sy := orientations[o](x, y, w, h)
			dst.SetNRGBA(x, y, stored.NRGBAAt(sx, sy))
		}
	}
	return dst
}

// PNG eXIf files from Pillow, against Pillow's exif_transpose.
func TestLoadOrientationMatchesPillow(t *testing.T) {
	stored := mustLoad(t, "orient1.png")
	for o := 1; o <= 8; o++ {
		got := mustLoad(t, fmt.Sprintf("orient%d.png", o))
		ref := mustLoad(t, fmt.Sprintf("orient%d_ref.png", o))
		if !equalPix(got, ref) {
			t.Errorf("orientation %d: differs from Pillow's exif_transpose", o)
		}
		if want := upright(stored, o); !equalPix(got, want) {
			t.Errorf("orientation %d: differs from the table", o)
		}
	}
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// tiffOrientation builds TIFF data with an IFD0 holding a few tags and the
// Orientation, in either byte order.
func tiffOrientation(order byteOrder, orientation uint16) []byte {
	var b []byte
	if order == binary.LittleEndian {
		b = []byte("II*\x00")
	} else {
		b = []byte("MM\x00*")
	}
	b = order.AppendUint32(b, 8)
	b = order.AppendUint16(b, 3) // entries
	entry := func(tag, typ uint16, count uint32, value []byte) {
		b = order.AppendUint16(b, tag)
		b = order.AppendUint16(b, typ)
		b = order.AppendUint32(b, count)
		b = append(b, append(value, 0, 0, 0, 0)[:4]...)
	}
	entry(0x010f, 2, 4, []byte("Go\x00\x00"))                 // Make
	entry(0x0112, 3, 1, order.AppendUint16(nil, orientation)) // Orientation
	entry(0x011a, 5, 1, order.AppendUint32(nil, 100))         // XResolution (offset, unused)
	return order.AppendUint32(b, 0)                           // no IFD1
}

// withExif inserts an APP1 Exif segment after a JPEG's SOI.
func withExif(jpegData, tiff []byte) []byte {
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+6+len(tiff)))
	seg = append(append(seg, "Exif\x00\x00"...), tiff...)
	return append(append(append([]byte{}, jpegData[:2]...), seg...), jpegData[2:]...)
}

// JPEG APP1 Exif in both byte orders, all eight orientations: the result
// is the plain JPEG's decoding turned by the table.
func TestLoadOrientationJPEG(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, makePhoto(24, 16, 5), nil); err != nil {
		t.Fatal(err)
	}
	plain, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := 1; o <= 8; o++ {
			data := withExif(buf.Bytes(), tiffOrientation(order, uint16(o)))
			got, err := Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%v orientation %d: %v", order, o, err)
			}
			if want := upright(plain, o); !equalPix(got, want) {
				t.Errorf("%v orientation %d: wrong pixels, bounds %v", order, o, got.Rect)
			}
		}
	}
}

// Malformed EXIF never fails a load, never panics, and means upright.
func TestExifOrientationMalformed(t *testing.T) {
	good := tiffOrientation(binary.BigEndian, 6)
	if got := exifOrientation(good); got != 6 {
		t.Fatalf("well-formed: %d, want 6", got)
	}
	le := binary.LittleEndian
	for name, tiff := range map[string][]byte{
		"nil":               nil,
		"short":             good[:7],
		"bad magic":         append([]byte("MM\x00+"), good[4:]...),
		"ifd past end":      append(good[:4:4], 0, 0, 1, 0),
		"ifd inside header": append(good[:4:4], 0, 0, 0, 2),
		"entries cut off":   good[:20],
		"value 9":           tiffOrientation(le, 9),
		"value 0":           tiffOrientation(le, 0),
		"huge count":        append(good[:8:8], 0xff, 0xff),
		"wrong type": func() []byte {
			b := tiffOrientation(le, 6)
			le.PutUint16(b[10+12+2:], 7) // UNDEFINED
			return b
		}(),
	} {
		if got := exifOrientation(tiff); got != 1 {
			t.Errorf("%s: orientation %d, want 1", name, got)
		}
	}

	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, makePhoto(8, 8, 1), nil); err != nil {
		t.Fatal(err)
	}
	for _, tiff := range [][]byte{good[:9], []byte("junk"), {}} {
		if _, err := Decode(bytes.NewReader(withExif(buf.Bytes(), tiff))); err != nil {
			t.Errorf("EXIF %q: %v", tiff, err)
		}
	}
}

// pngWithSize is a valid PNG signature and IHDR claiming w×h pixels, and
// nothing else.
func pngWithSize(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := binary.BigEndian.AppendUint32([]byte(pngMagic), 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

func TestLoadErrors(t *testing.T) {
	photoPNG, err := os.ReadFile(testdata("photo.png"))
	if err != nil {
		t.Fatal(err)
	}
	photoJPEG, err := os.ReadFile(testdata("progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	badCRC := bytes.Clone(photoPNG)
	badCRC[len(pngMagic)+8+13] ^= 0xff // IHDR's CRC

	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		is   error
		msg  string
	}{
		{"empty.png", nil, ErrEmpty, "empty.png: empty file"},
		{"notes.png", []byte("just some text\n"), ErrNotImage, "notes.png: not a PNG or JPEG file"},
		{"tiny.jpg", []byte("x"), ErrNotImage, "tiny.jpg: not a PNG or JPEG file"},
		{"gif.png", []byte("GIF89a\x01\x00\x01\x00"), ErrNotImage, "gif.png: not a PNG or JPEG file"},
		{"magic.png", []byte(pngMagic[:5]), ErrTruncated, "magic.png: truncated PNG data"},
		{"header.png", photoPNG[:20], ErrTruncated, "header.png: truncated PNG data"},
		{"half.png", photoPNG[:len(photoPNG)/2], ErrTruncated, "half.png: truncated PNG data"},
		{"noend.png", photoPNG[:len(photoPNG)-12], ErrTruncated, "noend.png: truncated PNG data"},
		{"soi.jpg", photoJPEG[:3], ErrTruncated, "soi.jpg: truncated JPEG data"},
		{"header.jpg", photoJPEG[:200], ErrTruncated, "header.jpg: truncated JPEG data"},
		{"photo.jpg", photoJPEG[:len(photoJPEG)/2], ErrTruncated, "photo.jpg: truncated JPEG data"},
		{"crc.png", badCRC, ErrCorrupt, "crc.png: invalid PNG data: png: invalid format: invalid checksum"},
		{"wide.png", pngWithSize(40000, 10), ErrTooLarge, "wide.png: PNG image is 40000×10 pixels, over the limit"},
		{"many.png", pngWithSize(20000, 20000), ErrTooLarge, "many.png: PNG image is 20000×20000 pixels"},
		{"zero.png", pngWithSize(0, 10), ErrCorrupt, "zero.png: invalid PNG data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			img, err := Load(path)
			if err == nil {
				t.Fatalf("no error, got a %v image", img.Rect)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %q", err, tc.is)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path {
				t.Errorf("error %q is not a *FileError for %s", err, path)
			}
			if msg := strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)); !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("error %q, want it to start %q", msg, tc.msg)
			}
		})
	}

	_, err = Load(filepath.Join(dir, "missing.png"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
}

// errReader fails any read after its data.
type errReader struct{ data []byte }

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecodeReader(t *testing.T) {
	// A reader of the wrong kind is rejected on its first bytes, before
	// the rest is read.
	_, err := Decode(&errReader{data: []byte("PK\x03\x04 a zip file, honest")})
	if !errors.Is(err, ErrNotImage) {
		t.Errorf("zip: %v, want ErrNotImage", err)
	}
	// A read error is passed on as it is.
	_, err = Decode(&errReader{data: []byte(pngMagic + "abc")})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v", err)
	}
}
