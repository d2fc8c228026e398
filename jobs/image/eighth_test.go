package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/image/jpegdc"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

// A thumbnail that shrinks a JPEG 8× or more is made from its 1/8 decode
// by jpegdc (the pixels libjpeg-turbo's 1/8 gives, jpegdc's tests), with
// or without libjpeg-turbo; the JPEGs jpegdc does not read, and broken
// ones, go the way they went before: a thumbnail, or their own error
// naming the file.
func TestThumbnailFromEighth(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := Encode(&buf, bigPhoto(), JPEG, SaveOptions{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	photo := buf.Bytes()
	progressive, err := os.ReadFile("testdata/progressive.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cmyk, err := os.ReadFile("testdata/cmyk.jpg")
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(photo)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] = 0xFF // markers where the scan's data should be
	}
	k, _ := jobs.LookupKind("image.thumbnail")
	run := func(name string, data []byte) (string, error) {
		src, out := filepath.Join(dir, name), filepath.Join(dir, "thumb-"+name+".png")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		task := jobs.Task{Job: "t", Kind: k.Name, Name: name, Mode: "run", Output: out,
			Params: map[string]any{"max_width": 256, "max_height": 256}, Inputs: map[string]jobs.Input{"image": {Path: src}}}
		_, err := k.Run(context.Background(), &task)
		return out, err
	}

	out, err := run("photo.jpg", photo)
	if err != nil {
		t.Fatal(err)
	}
	eighth, err := jpegdc.Decode(photo)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Resize(eighth, 256, 171, Lanczos3)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustLoadPath(t, out); !equalPix(got, want) {
		t.Errorf("the thumbnail is not the Lanczos resize of jpegdc's 1/8 decode (PSNR %.1f dB)", psnr(t, got, want))
	}

	for _, c := range []struct {
		name string
		data []byte
	}{{"progressive.jpg", progressive}, {"cmyk.jpg", cmyk}} {
		if _, err := jpegdc.Decode(c.data); !errors.Is(err, jpegdc.ErrUnsupported) {
			t.Fatalf("%s: jpegdc says %v; the test needs a file it refuses", c.name, err)
		}
		if out, err := run(c.name, c.data); err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if got := mustLoadPath(t, out); got.Rect.Dx() > 256 || got.Rect.Dy() > 256 {
			t.Errorf("%s: a thumbnail of %v", c.name, got.Rect)
		}
	}

	for _, c := range []struct {
		name string
		data []byte
		is   error
	}{{"half.jpg", photo[:len(photo)/2], ErrTruncated}, {"corrupt.jpg", corrupt, ErrCorrupt}} {
		_, err := run(c.name, c.data)
		if !errors.Is(err, c.is) || !strings.HasPrefix(err.Error(), filepath.Join(dir, c.name)+": ") {
			t.Errorf("%s: %v, want %v naming the file", c.name, err, c.is)
		}
	}
}

// BenchmarkDecodeEighth: a 3000×2000 photo (quality 90, 4:2:0) decoded at
// 1/8 by jpegdc and by libjpeg-turbo, the same pixels.
//
//	go test -run '^$' -bench DecodeEighth ./jobs/image/
func BenchmarkDecodeEighth(b *testing.B) {
	var buf bytes.Buffer
	if err := Encode(&buf, bigPhoto(), JPEG, SaveOptions{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run("jpegdc", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpegdc.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("turbo", func(b *testing.B) {
		if ok, why := turbojpeg.Available(); !ok {
			b.Skip(why)
		}
		for b.Loop() {
			if _, err := turbojpeg.Decode(data, turbojpeg.DecodeOptions{MinWidth: 375, MinHeight: 250}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
