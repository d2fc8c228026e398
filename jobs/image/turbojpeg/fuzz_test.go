package turbojpeg

import (
	"bytes"
	"errors"
	"image"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to libjpeg-turbo. A crash in C would
// kill the fuzzing process, which is what this looks for; in Go, the result
// must be an image of the size the header gives, or a classified error.
func FuzzDecode(f *testing.F) {
	if ok, why := Available(); !ok {
		f.Skip(why)
	}
	for _, path := range []string{fixture("progressive.jpg"), fixture("cmyk.jpg"), fixture("ycck.jpg"), fixture("exif6.jpg"), "testdata/photo420.jpg"} {
		data := readFile(f, path)
		f.Add(data, uint16(0))
		f.Add(data[:len(data)*2/3], uint16(0))
		f.Add(data, uint16(9))
	}
	small := goEncode(f, photo(40, 30), 75)
	f.Add(small, uint16(5))
	f.Add(goEncode(f, toGray(photo(24, 17)), 60), uint16(3))
	sos := bytes.Index(small, []byte{0xff, 0xda})
	f.Add(append(append(bytes.Clone(small[:sos]), 0, 0), small[sos:]...), uint16(0))
	f.Add([]byte("\xff\xd8\xff\xd9"), uint16(0))
	f.Add([]byte("\xff\xd8"), uint16(0))
	f.Add([]byte{}, uint16(0))

	f.Fuzz(func(t *testing.T, data []byte, minSide uint16) {
		opts := DecodeOptions{MinWidth: int(minSide), MinHeight: int(minSide), MaxBytes: 32 << 20}
		img, err := Decode(data, opts)
		if err != nil {
			if img != nil {
				t.Fatal("an image and an error")
			}
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %#v is not an *Error with a message", err)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		cfg, err := DecodeConfig(data)
		if err != nil {
			t.Fatalf("Decode succeeded, DecodeConfig failed: %v", err)
		}
		w, h := ScaledSize(cfg, opts.MinWidth, opts.MinHeight)
		if img.Bounds() != image.Rect(0, 0, w, h) {
			t.Fatalf("image %v, header %dx%d scaled to %dx%d", img.Bounds(), cfg.Width, cfg.Height, w, h)
		}
		switch img.(type) {
		case *image.Gray, *image.NRGBA, *image.CMYK:
		default:
			t.Fatalf("image of type %T", img)
		}
	})
}
