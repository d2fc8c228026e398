package jpegdc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The 1/8 image is libjpeg-turbo's own 1/8 decode, pixel for pixel: every
// chroma layout read, restart intervals, optimised tables, codes longer
// than the lookup tables, sizes that are no multiple of a block.
func TestMatchesLibjpegTurbo(t *testing.T) {
	if ok, why := turbojpeg.Available(); !ok {
		t.Skip(why)
	}
	for _, name := range []string{"c420.jpg", "c422.jpg", "c444.jpg", "gray.jpg", "rst_rows.jpg", "rst_blocks.jpg",
		"optimized.jpg", "noisy444.jpg", "tiny.jpg", "one.jpg", "tinygray.jpg", "c440.jpg"} {
		data := read(t, name)
		got, err := Decode(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		w, h, err := Config(data)
		if err != nil {
			t.Fatal(err)
		}
		m, err := turbojpeg.Decode(data, turbojpeg.DecodeOptions{MinWidth: (w + 7) / 8, MinHeight: (h + 7) / 8})
		if err != nil {
			t.Fatal(err)
		}
		if m.Bounds() != got.Bounds() {
			t.Errorf("%s: %v, libjpeg-turbo's 1/8 is %v", name, got.Bounds(), m.Bounds())
			continue
		}
		if diff := differ(got, m); diff != "" {
			t.Errorf("%s: differs from libjpeg-turbo's 1/8 decode: %s", name, diff)
		}
	}
}

func differ(a *image.NRGBA, b image.Image) string {
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1>>8 != r2>>8 || g1>>8 != g2>>8 || b1>>8 != b2>>8 || a1>>8 != a2>>8 {
				return fmt.Sprintf("%v: %v against %v", image.Pt(x, y), a.At(x, y), b.At(x, y))
			}
		}
	}
	return ""
}

// What jpegdc does not read is ErrUnsupported, for the caller to decode
// another way; the other fixtures it reads.
func TestRefuses(t *testing.T) {
	for _, name := range []string{"progressive.jpg", "arithmetic.jpg", "rgb.jpg", "../../testdata/cmyk.jpg", "../../testdata/ycck.jpg"} {
		if _, err := Decode(read(t, name)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
}

// Every prefix of a file fails, as ErrTruncated or a FormatError, and
// never panics; the file with one byte changed (every 97th) decodes or
// fails, never panics (FuzzDecode tries many more).
func TestTruncatedAndCorrupt(t *testing.T) {
	for _, name := range []string{"c420.jpg", "rst_blocks.jpg"} {
		data := read(t, name)
		// Every prefix near the ends, every 13th between (the last 2
		// bytes are EOI).
		for n := 0; n < len(data)-2; n += 1 + 12*btoi(n > 700 && n < len(data)-600) {
			if _, err := Decode(data[:n]); err == nil {
				t.Fatalf("%s cut at %d of %d bytes: decoded", name, n, len(data))
			} else if !errors.Is(err, ErrTruncated) && !isFormat(err) {
				t.Fatalf("%s cut at %d: %v", name, n, err)
			}
		}
		for i := 0; i < len(data); i += 97 {
			c := bytes.Clone(data)
			c[i] ^= 0x5a
			if m, err := Decode(c); err == nil && m.Bounds().Empty() {
				t.Fatalf("%s with byte %d changed: an empty image", name, i)
			}
		}
	}
}

func isFormat(err error) bool {
	var f FormatError
	return errors.As(err, &f)
}

// FuzzDecode: any bytes decode or fail with one of the errors, never
// panic, and a decoded image has the 1/8 size of its header's.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tiny.jpg", "one.jpg", "tinygray.jpg"} {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, h, err := Config(data)
		if err != nil || w*h > 1<<24 {
			return // the callers' budgets bound the size first
		}
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupported) && !isFormat(err) {
				t.Fatalf("unexpected error %T: %v", err, err)
			}
			return
		}
		if want := image.Rect(0, 0, (w+7)/8, (h+7)/8); m.Bounds() != want {
			t.Fatalf("decoded %v, want %v", m.Bounds(), want)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A small file declaring a huge image is refused before its planes are
// made: no allocation of its size.
func TestHugeDeclaredSize(t *testing.T) {
	data := bytes.Clone(read(t, "tiny.jpg"))
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	data[i+5], data[i+6], data[i+7], data[i+8] = 0xFF, 0xFF, 0xFF, 0xFF // 65535×65535
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = Decode(data) })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("65535×65535 in %d bytes: %v, want ErrTruncated", len(data), err)
	}
	before := ms.TotalAlloc
	Decode(data)
	runtime.ReadMemStats(&ms)
	if grew := ms.TotalAlloc - before; grew > 1<<20 {
		t.Errorf("65535×65535 in %d bytes: %d bytes allocated (%.0f allocations)", len(data), grew, allocs)
	}
}

// Planes come from a pool and are not cleared: every sample is written
// by the scan before it is read, so a plane left full of another image's
// bytes changes nothing, at every chroma layout and size.
func TestReusedPlanes(t *testing.T) {
	for _, name := range []string{"c420.jpg", "c422.jpg", "c444.jpg", "c440.jpg", "gray.jpg", "tiny.jpg", "one.jpg", "rst_rows.jpg"} {
		data := read(t, name)
		want, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			// sync.Pool keeps a few of these at least, for this
			// goroutine's P, until the next garbage collection.
			for range 4 {
				junk := make([]byte, 1<<20)
				for i := range junk {
					junk[i] = 0xA5
				}
				planes.Put(junk)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := differ(got, want); diff != "" {
				t.Fatalf("%s: decoded over reused planes: %s", name, diff)
			}
		}
	}
}
