package turbojpeg

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// The benchmarks decode and encode a 6-megapixel photo (3000×2000, quality
// 90, 4:2:0, written by image/jpeg), beside image/jpeg on the same data.
// MP/s counts the file's full-size pixels, also for scaled decodes.

func reportMP(b *testing.B, pixels int) {
	b.ReportMetric(float64(pixels)*float64(b.N)/1e6/b.Elapsed().Seconds(), "MP/s")
}

func BenchmarkDecode(b *testing.B) {
	data := bigJPEG()
	for _, bc := range []struct {
		name string
		opts DecodeOptions
	}{
		{"turbo/full", DecodeOptions{}},
		{"turbo/scale=1_8", DecodeOptions{MinWidth: 256, MinHeight: 171}},
		{"turbo/scale=1_2", DecodeOptions{MinWidth: 1500, MinHeight: 1000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			needLibrary(b)
			for b.Loop() {
				if _, err := Decode(data, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
			reportMP(b, 3000*2000)
		})
	}
	b.Run("go/full", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		reportMP(b, 3000*2000)
	})
}

func BenchmarkEncode(b *testing.B) {
	img := photo(3000, 2000)
	b.Run("turbo", func(b *testing.B) {
		needLibrary(b)
		for b.Loop() {
			if _, err := Encode(img, 90); err != nil {
				b.Fatal(err)
			}
		}
		reportMP(b, 3000*2000)
	})
	b.Run("go", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
				b.Fatal(err)
			}
		}
		reportMP(b, 3000*2000)
	})
}

// BenchmarkHandle is the fixed cost of a call: a decompressor created and
// destroyed around reading a header.
func BenchmarkHandle(b *testing.B) {
	needLibrary(b)
	data := goEncode(b, image.NewGray(image.Rect(0, 0, 8, 8)), 90)
	for b.Loop() {
		if _, err := DecodeConfig(data); err != nil {
			b.Fatal(err)
		}
	}
}
