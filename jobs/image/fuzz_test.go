package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes through the whole decoding path (sniffing,
// EXIF and Adobe scanning, size check, decoding, conversion, orientation).
// It must never panic, and must either fail with one of the package's
// conditions or return a sane image. The budget is smaller than MaxPixels
// and MaxImageMemory so the fuzzer cannot spend its memory on one huge
// image.
//
//	go test -run '^$' -fuzz FuzzLoad ./jobs/image/
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"small.png", "palette_trns.png", "gray_alpha.png", "orient6.png",
		"exif6.jpg", "cmyk.jpg", "ycck.jpg", "interlaced.png", "small16.png"} {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/3])
	}
	f.Add([]byte{})
	f.Add([]byte("not an image"))
	f.Add([]byte(jpegMagic))
	f.Add(pngWithSize(1<<20, 1<<20))
	// Headers that claim gigabytes within the limits on sides and pixels.
	f.Add(pngHeader(16000, 16000, 16, 6))
	f.Add(pngHeader(2000, 2000, 16, 2))
	f.Add(progressiveJPEGHeader(16384, 16384))
	f.Add(progressiveJPEGHeader(65535, 65535))
	f.Add(progressiveJPEGHeader(64, 48))
	f.Add(withExif([]byte("\xff\xd8\xff\xd9"), tiffOrientation(binary.LittleEndian, 8)))

	const maxPixels = 1 << 22
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decode(data, budget{maxPixels: maxPixels, maxMemory: 256 << 20})
		if err != nil {
			if img != nil {
				t.Fatal("image and error both returned")
			}
			for _, cond := range []error{ErrEmpty, ErrNotImage, ErrTruncated, ErrTooLarge, ErrCorrupt} {
				if errors.Is(err, cond) {
					return
				}
			}
			t.Fatalf("error %q matches no condition", err)
		}
		w, h := img.Rect.Dx(), img.Rect.Dy()
		if w < 1 || h < 1 || w*h > maxPixels || len(img.Pix) != 4*w*h || img.Rect.Min != (image.Point{}) {
			t.Fatalf("bad image: %v, stride %d, %d bytes", img.Rect, img.Stride, len(img.Pix))
		}
	})
}

// FuzzPNGRows: whenever a PNG decodes whole, any band of its rows decoded
// alone (as a strip of a split task does) has the same bytes as those rows
// of the whole; and whatever the bytes, decoding a band never panics and
// fails only with one of the package's conditions.
//
//	go test -run '^$' -fuzz FuzzPNGRows ./jobs/image/
func FuzzPNGRows(f *testing.F) {
	for _, name := range []string{"small.png", "palette_trns.png", "gray_alpha.png", "small16.png", "rgba.png", "orient6.png"} {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint16(3), uint16(5))
		f.Add(data[:len(data)*2/3], uint16(0), uint16(2))
	}
	f.Add(rawPNG{w: 9, h: 13, depth: 2, colorType: 0, trns: []byte{0, 1}, seed: 1}.encode(f), uint16(4), uint16(20))
	f.Add(rawPNG{w: 7, h: 11, depth: 16, colorType: 2, trns: []byte{0, 9, 0, 15, 0, 21}, seed: 2}.encode(f), uint16(10), uint16(0))
	f.Add(rawPNG{w: 5, h: 6, depth: 4, colorType: 3, plte: []byte{1, 2, 3, 4, 5, 6}, seed: 3}.encode(f), uint16(1), uint16(1))
	f.Add(pngHeader(16000, 16000, 16, 6), uint16(0), uint16(512))

	whole := budget{maxPixels: 1 << 20, maxMemory: 64 << 20}
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		band := whole
		band.rows = func(h int) (int, int) {
			y0 := int(a) % h
			return y0, y0 + 1 + int(b)%(h-y0)
		}
		got, err := decode(data, band)
		if err != nil {
			matched := false
			for _, cond := range []error{ErrEmpty, ErrNotImage, ErrTruncated, ErrTooLarge, ErrCorrupt} {
				matched = matched || errors.Is(err, cond)
			}
			if !matched {
				t.Fatalf("error %q matches no condition", err)
			}
		}
		all, errWhole := decode(data, whole)
		if errWhole != nil {
			return
		}
		if err != nil {
			t.Fatalf("the whole image decodes, a band of it fails: %v", err)
		}
		y0, y1 := band.rows(all.Rect.Dy())
		if !equalPix(got, Crop(all, image.Rect(0, y0, all.Rect.Dx(), y1))) {
			t.Fatalf("rows [%d,%d) differ from the whole image's", y0, y1)
		}
	})
}

// FuzzExifOrientation: any bytes give an orientation from 1 to 8.
func FuzzExifOrientation(f *testing.F) {
	f.Add(tiffOrientation(binary.LittleEndian, 6))
	f.Add(tiffOrientation(binary.BigEndian, 3))
	f.Add([]byte("II*\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, tiff []byte) {
		if o := exifOrientation(tiff); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		// The same bytes as a JPEG's APP1 and a PNG chunk must not
		// trip up the scanners either.
		scanJPEG(withExif([]byte("\xff\xd8\xff\xd9"), tiff))
		pngExif(append([]byte(pngMagic), bytes.Clone(tiff)...))
	})
}
