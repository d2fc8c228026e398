package image

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ppool/ppool/jobs/image/fastpng"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
	"github.com/ppool/ppool/jobs/kinds"
)

// A Format is an image file format Save and Encode write. The zero value
// is no format.
type Format int

// The formats.
const (
	PNG Format = iota + 1
	JPEG
)

func (f Format) String() string {
	switch f {
	case PNG:
		return "PNG"
	case JPEG:
		return "JPEG"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ErrUnknownExtension means Save was given a path not ending in .png,
// .jpg or .jpeg (in any case).
var ErrUnknownExtension = errors.New("unknown image file extension (want .png, .jpg or .jpeg)")

// FormatOf returns the format Save writes for path, chosen by its extension.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return PNG, nil
	case ".jpg", ".jpeg":
		return JPEG, nil
	}
	return 0, ErrUnknownExtension
}

// SaveOptions tune the encoders. The zero value is a good default.
type SaveOptions struct {
	// Quality is the JPEG quality, 1 to 100; 0 means 90.
	Quality int
	// Compression is the PNG zlib level, 1 (fastest) to 9 (smallest), or
	// PNGStored for none; 0 means the default, 6, as Pillow and libvips.
	Compression int
}

// PNGStored is SaveOptions.Compression for PNG data stored uncompressed.
const PNGStored = -1

// defaultCompression is the PNG level of SaveOptions' zero value.
const defaultCompression = fastpng.DefaultLevel

const defaultQuality = 90

// Save writes img to path as PNG or JPEG, chosen by path's extension.
// The write is atomic: the image goes to a temporary file in the same
// directory, which is synced and then renamed over path, so path never
// holds a partial image; on any error the temporary file is removed.
//
// JPEG has no alpha channel: a JPEG keeps the colour of each pixel and
// drops its alpha. An image whose pixels are all opaque grey (such as the
// output of Grayscale or Edges) is written as a one-channel greyscale file.
// Errors are *FileError values naming path.
func Save(path string, img image.Image, opts SaveOptions) error {
	return saveHashed(path, img, opts, nil)
}

// saveHashed is Save that, if sum is not nil, sets it to the hash of the
// bytes written, as the jobs journal records it: computed as they are
// written, so the file is not read back for it.
func saveHashed(path string, img image.Image, opts SaveOptions, sum *string) error {
	if err := save(path, img, opts, sum); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// writers are the output buffers of save, reused: a fresh 256 KiB buffer
// per output was most of what writing a small image allocated.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}

func save(path string, img image.Image, opts SaveOptions, sum *string) (err error) {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	if err := opts.valid(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(tmp)
	defer func() { bw.Reset(nil); writers.Put(bw) }()
	var w io.Writer = bw
	var h *kinds.Hasher
	if sum != nil {
		h = kinds.NewHasher()
		w = io.MultiWriter(bw, h)
	}
	if err := Encode(w, img, format, opts); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; an image is for anyone to read, as
	// os.Create under the usual umask would leave it.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	// No fsync here: the jobs runner syncs the output file systems in
	// groups, before each sync of its journal, so a task costs no disk
	// flush of its own (see jobs.journal).
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if h != nil {
		*sum = h.Sum()
	}
	return nil
}

func (o SaveOptions) valid() error {
	if o.Quality < 0 || o.Quality > 100 {
		return fmt.Errorf("JPEG quality %d out of range 1 to 100", o.Quality)
	}
	if o.Compression < PNGStored || o.Compression > 9 {
		return fmt.Errorf("PNG compression %d out of range 0 to 9", o.Compression)
	}
	return nil
}

// Encode writes img to w in the given format; see Save.
func Encode(w io.Writer, img image.Image, format Format, opts SaveOptions) error {
	if err := opts.valid(); err != nil {
		return err
	}
	if img == nil {
		return errNilImage
	}
	if n, ok := img.(*image.NRGBA); ok {
		if g := asGray(n); g != nil {
			img = g
		} else if format == JPEG && !useTurbo() {
			// libjpeg-turbo reads NRGBA pixels as they are, alpha
			// ignored; image/jpeg would convert them pixel by pixel.
			img = dropAlpha(n)
		}
	}
	switch format {
	case PNG:
		level := opts.Compression
		switch level {
		case 0:
			level = defaultCompression
		case PNGStored:
			level = 0
		}
		return fastpng.Encode(w, img, level)
	case JPEG:
		q := opts.Quality
		if q == 0 {
			q = defaultQuality
		}
		if useTurbo() {
			b, err := turbojpeg.Encode(img, q)
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		}
		return jpeg.Encode(w, img, &jpeg.Options{Quality: q})
	}
	return fmt.Errorf("unknown format %v", format)
}

// asGray returns img as an *image.Gray when every pixel is opaque grey,
// else nil.
func asGray(img *image.NRGBA) *image.Gray {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := range h {
		p := pixRow(img, y)
		for i := 0; i+3 < len(p); i += 4 {
			if p[i] != p[i+1] || p[i] != p[i+2] || p[i+3] != 0xff {
				return nil
			}
		}
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		p, d := pixRow(img, y), g.Pix[y*g.Stride:]
		for x := range w {
			d[x] = p[4*x]
		}
	}
	return g
}

// dropAlpha returns img's colours as an opaque *image.RGBA, which
// image/jpeg encodes without per-pixel interface calls. An opaque image
// has the same bytes in both forms, and is viewed rather than copied.
func dropAlpha(img *image.NRGBA) *image.RGBA {
	if img.Opaque() {
		return &image.RGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		copy(d, pixRow(img, y))
		for i := 3; i < len(d); i += 4 {
			d[i] = 0xff
		}
	}
	return dst
}
