//go:build unix

package fastpng

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"
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

// cpuTime is the CPU time the process has used: on a machine shared with
// other work, CPU time per operation varies much less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs b.Loop, calling f each time, and reports CPU ms per op.
func loop(b *testing.B, f func()) {
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime()-start)/1e6/float64(b.N), "cpu-ms/op")
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
			loop(b, func() {
				buf.Reset()
				if err := Encode(&buf, img, bc.level); err != nil {
					b.Fatal(err)
				}
			})
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
			loop(b, func() {
				buf.Reset()
				if err := enc.Encode(&buf, img); err != nil {
					b.Fatal(err)
				}
			})
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
			loop(b, func() {
				if _, err := bc.decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			})
			reportMPs(b, img, 0)
		})
	}
}

// BenchmarkFilter times the row filter choice alone, on the photo's rows.
func BenchmarkFilter(b *testing.B) {
	img := benchPhoto()
	e := getEncoder(6)
	w, h := img.Rect.Dx(), img.Rect.Dy()
	n := 1 + 3*w
	e.cur, e.prev = make([]byte, n), make([]byte, n)
	for f := range e.filtered {
		e.filtered[f] = make([]byte, n)
	}
	rows := make([][]byte, h)
	for y := range h {
		rows[y] = make([]byte, n)
		convertRow(rows[y][1:], img, rgb8, y)
	}
	loop(b, func() {
		for y := range h {
			e.cur = rows[y]
			if y > 0 {
				e.prev = rows[y-1]
			}
			e.filter(3)
		}
	})
	reportMPs(b, img, 0)
}
