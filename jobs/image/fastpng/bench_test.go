package fastpng

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"sync"
	"testing"
)

// The benchmarks use one 3000×2000 blurred photo, the size of the 6 MP
// images in issue 12, made once.
var (
	benchPhotoOnce sync.Once
	benchPhotoImg  *image.NRGBA
)

func benchPhoto() *image.NRGBA {
	benchPhotoOnce.Do(func() { benchPhotoImg = photo(3000, 2000, 1) })
	return benchPhotoImg
}

func reportMPs(b *testing.B, img image.Image, size int) {
	px := float64(img.Bounds().Dx() * img.Bounds().Dy())
	b.ReportMetric(px*float64(b.N)/1e6/b.Elapsed().Seconds(), "MP/s")
	if size > 0 {
		b.ReportMetric(float64(size), "bytes")
	}
}

func BenchmarkEncode(b *testing.B) {
	img := benchPhoto()
	for _, bc := range []struct {
		name  string
		level int
	}{{"level1", 1}, {"level6", 6}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := Encode(&buf, img, bc.level); err != nil {
					b.Fatal(err)
				}
			}
			reportMPs(b, img, buf.Len())
		})
	}
	for _, bc := range []struct {
		name  string
		level png.CompressionLevel
	}{{"stdlib_bestspeed", png.BestSpeed}, {"stdlib_default", png.DefaultCompression}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf bytes.Buffer
			enc := png.Encoder{CompressionLevel: bc.level}
			for b.Loop() {
				buf.Reset()
				if err := enc.Encode(&buf, img); err != nil {
					b.Fatal(err)
				}
			}
			reportMPs(b, img, buf.Len())
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	img := benchPhoto()
	var buf bytes.Buffer
	if err := Encode(&buf, img, DefaultLevel); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	for _, bc := range []struct {
		name   string
		decode func(io.Reader) (image.Image, error)
	}{{"fastpng", Decode}, {"stdlib", png.Decode}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			reportMPs(b, img, 0)
		})
	}
}
