package fastpng

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// DefaultLevel is the compression level Pillow and libvips use when none
// is given, and the one callers should pass when the user chose none.
const DefaultLevel = 6

// idatSize is the most compressed data one IDAT chunk holds. Big enough
// that the 12 bytes of framing per chunk do not matter, small enough that
// the buffer costs nothing beside the image.
const idatSize = 256 << 10

// ErrLevel means Encode was given a compression level outside 0 to 9.
var ErrLevel = errors.New("fastpng: compression level out of range 0 to 9")

// ErrEmptyImage means Encode was given an image with no pixels, which PNG
// cannot hold.
var ErrEmptyImage = errors.New("fastpng: image has no pixels")

const pngHeader = "\x89PNG\r\n\x1a\n"

// Encode writes img to w as a PNG file, compressed at level, 0 (stored,
// no compression) to 9 (smallest), as zlib counts them; DefaultLevel is 6.
//
// The file holds the same pixels, in the same colour type and bit depth,
// as image/png.Encode writes for img: *image.Gray as 8-bit grey,
// *image.Gray16 as 16-bit grey, *image.NRGBA and *image.RGBA as 8-bit RGB
// when every pixel is opaque and 8-bit RGBA (straight alpha) otherwise, and
// the 64-bit types likewise at 16 bits. Those types are converted straight
// from their Pix slices; any other image goes through At, as image/png does.
// Paletted images are handed to image/png, which writes them as palette
// files.
//
// Each row is filtered with whichever of the five PNG filters gives the
// least sum of absolute differences, the heuristic libpng uses, except at
// level 0 where filtering would only cost time.
func Encode(w io.Writer, img image.Image, level int) error {
	if level < 0 || level > 9 {
		return fmt.Errorf("%w: %d", ErrLevel, level)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || uint64(b.Dx()) >= 1<<31 || uint64(b.Dy()) >= 1<<31 {
		return fmt.Errorf("%w: %dx%d", ErrEmptyImage, b.Dx(), b.Dy())
	}
	if _, ok := img.(image.PalettedImage); ok {
		if _, ok := img.ColorModel().(color.Palette); ok {
			return encodePaletted(w, img, level)
		}
	}
	cb := colourOf(img)
	e := getEncoder(level)
	defer putEncoder(level, e)
	e.out.reset(w)
	if _, err := io.WriteString(w, pngHeader); err != nil {
		return err
	}
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(b.Dx()))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(b.Dy()))
	ihdr[8], ihdr[9] = cb.depth(), cb.colourType()
	if err := writeChunk(w, "IHDR", ihdr[:]); err != nil {
		return err
	}
	if err := e.writeRows(img, cb, level); err != nil {
		return err
	}
	return writeChunk(w, "IEND", nil)
}

// encodePaletted hands a paletted image to image/png, which writes the
// palette types; ppool's own images are never paletted.
func encodePaletted(w io.Writer, img image.Image, level int) error {
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	switch {
	case level == 0:
		enc.CompressionLevel = png.NoCompression
	case level <= 3:
		enc.CompressionLevel = png.BestSpeed
	case level >= 8:
		enc.CompressionLevel = png.BestCompression
	}
	return enc.Encode(w, img)
}

// A colour is one of the colour type and bit depth pairs Encode writes.
type colour int

const (
	grey8 colour = iota
	rgb8
	rgba8
	grey16
	rgb16
	rgba16
)

func (c colour) depth() byte {
	if c >= grey16 {
		return 16
	}
	return 8
}

func (c colour) colourType() byte {
	switch c {
	case grey8, grey16:
		return 0
	case rgb8, rgb16:
		return 2
	}
	return 6
}

// bytesPerPixel is the size of one pixel in a PNG row.
func (c colour) bytesPerPixel() int {
	return [...]int{grey8: 1, rgb8: 3, rgba8: 4, grey16: 2, rgb16: 6, rgba16: 8}[c]
}

// colourOf picks the colour type image/png would write for img, by its
// colour model and whether it is opaque.
func colourOf(img image.Image) colour {
	switch img.ColorModel() {
	case color.GrayModel:
		return grey8
	case color.Gray16Model:
		return grey16
	case color.RGBAModel, color.NRGBAModel, color.AlphaModel:
		if opaque(img) {
			return rgb8
		}
		return rgba8
	}
	if opaque(img) {
		return rgb16
	}
	return rgba16
}

func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != 0xffff {
				return false
			}
		}
	}
	return true
}

// An encoder holds the buffers of one Encode call, kept in a pool per
// level so that a worker encoding one image after another allocates
// nothing but its first.
type encoder struct {
	zw  *zlib.Writer
	out idatWriter
	// cur and prev are the raw current and previous rows; filtered[f] is
	// the current row under filter f. Each starts with its filter byte.
	cur, prev []byte
	filtered  [5][]byte
}

var encoders [10]sync.Pool

func getEncoder(level int) *encoder {
	if e, ok := encoders[level].Get().(*encoder); ok {
		return e
	}
	e := &encoder{out: idatWriter{buf: make([]byte, 8, 8+idatSize+4)}}
	// The level was checked by Encode, so this cannot fail.
	e.zw, _ = zlib.NewWriterLevel(&e.out, level)
	return e
}

func putEncoder(level int, e *encoder) {
	e.out.w = nil
	encoders[level].Put(e)
}

// grow returns b with length n, reusing its storage when it can.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

// writeRows converts, filters and compresses img's rows into IDAT chunks.
func (e *encoder) writeRows(img image.Image, cb colour, level int) error {
	b := img.Bounds()
	bpp := cb.bytesPerPixel()
	n := 1 + bpp*b.Dx()
	e.cur, e.prev = grow(e.cur, n), grow(e.prev, n)
	clear(e.prev)
	for f := range e.filtered {
		e.filtered[f] = grow(e.filtered[f], n)
		e.filtered[f][0] = byte(f)
	}
	e.zw.Reset(&e.out)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := e.cur[1:]
		convertRow(row, img, cb, y)
		out := e.cur
		e.cur[0] = ftNone
		if level != 0 {
			out = e.filter(bpp)
		}
		if _, err := e.zw.Write(out); err != nil {
			return err
		}
		e.cur, e.prev = e.prev, e.cur
	}
	if err := e.zw.Close(); err != nil {
		return err
	}
	return e.out.flush()
}

// convertRow writes row y of img into row as PNG pixels of colour cb,
// from Pix directly for the standard types and through At for the rest,
// with image/png's conversions.
func convertRow(row []byte, img image.Image, cb colour, y int) {
	b := img.Bounds()
	switch cb {
	case grey8:
		if m, ok := img.(*image.Gray); ok {
			copy(row, m.Pix[m.PixOffset(b.Min.X, y):])
			return
		}
		for x := b.Min.X; x < b.Max.X; x++ {
			row[x-b.Min.X] = color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
		}
	case grey16:
		if m, ok := img.(*image.Gray16); ok {
			copy(row, m.Pix[m.PixOffset(b.Min.X, y):])
			return
		}
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+2 {
			c := color.Gray16Model.Convert(img.At(x, y)).(color.Gray16)
			binary.BigEndian.PutUint16(row[i:], c.Y)
		}
	case rgb8:
		var pix []byte
		switch m := img.(type) {
		case *image.NRGBA:
			pix = m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)]
		case *image.RGBA:
			pix = m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)]
		}
		if pix != nil {
			for ; len(pix) >= 4 && len(row) >= 3; pix, row = pix[4:], row[3:] {
				row[0], row[1], row[2] = pix[0], pix[1], pix[2]
			}
			return
		}
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			row[i], row[i+1], row[i+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	case rgba8:
		switch m := img.(type) {
		case *image.NRGBA:
			copy(row, m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)])
			return
		case *image.RGBA:
			unpremultiply8(row, m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)])
			return
		}
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+4 {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			row[i], row[i+1], row[i+2], row[i+3] = c.R, c.G, c.B, c.A
		}
	case rgb16:
		var pix []byte
		switch m := img.(type) {
		case *image.NRGBA64:
			pix = m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)]
		case *image.RGBA64:
			pix = m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)]
		}
		if pix != nil {
			for ; len(pix) >= 8 && len(row) >= 6; pix, row = pix[8:], row[6:] {
				copy(row[:6], pix[:6])
			}
			return
		}
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+6 {
			r, g, bl, _ := img.At(x, y).RGBA()
			binary.BigEndian.PutUint16(row[i:], uint16(r))
			binary.BigEndian.PutUint16(row[i+2:], uint16(g))
			binary.BigEndian.PutUint16(row[i+4:], uint16(bl))
		}
	case rgba16:
		if m, ok := img.(*image.NRGBA64); ok {
			copy(row, m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)])
			return
		}
		for x, i := b.Min.X, 0; x < b.Max.X; x, i = x+1, i+8 {
			c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
			binary.BigEndian.PutUint16(row[i:], c.R)
			binary.BigEndian.PutUint16(row[i+2:], c.G)
			binary.BigEndian.PutUint16(row[i+4:], c.B)
			binary.BigEndian.PutUint16(row[i+6:], c.A)
		}
	}
}

// unpremultiply8 converts premultiplied RGBA pixels to straight alpha with
// exactly the arithmetic of color.NRGBAModel, as image/png does.
func unpremultiply8(dst, src []byte) {
	for ; len(src) >= 4 && len(dst) >= 4; dst, src = dst[4:], src[4:] {
		switch a := src[3]; a {
		case 0:
			dst[0], dst[1], dst[2], dst[3] = 0, 0, 0, 0
		case 0xff:
			copy(dst[:4], src[:4])
		default:
			// 0x101 widens 8 bits to 16, 0xffff/a unpremultiplies.
			const m = 0x101 * 0xffff
			a16 := uint32(a) * 0x101
			dst[0] = uint8((uint32(src[0]) * m / a16) >> 8)
			dst[1] = uint8((uint32(src[1]) * m / a16) >> 8)
			dst[2] = uint8((uint32(src[2]) * m / a16) >> 8)
			dst[3] = a
		}
	}
}

// writeChunk writes one small PNG chunk (length, type, data and CRC) in
// one call, so an unbuffered w costs one system call per chunk.
func writeChunk(w io.Writer, kind string, data []byte) error {
	var buf [8 + 13 + 4]byte
	chunk := binary.BigEndian.AppendUint32(buf[:0], uint32(len(data)))
	chunk = append(chunk, kind...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	_, err := w.Write(chunk)
	return err
}

// An idatWriter cuts the zlib stream into IDAT chunks of idatSize bytes,
// each written to w in one call. buf holds the chunk's 8-byte header, its
// data, and room for the CRC.
type idatWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func (c *idatWriter) reset(w io.Writer) {
	c.w, c.buf, c.err = w, c.buf[:8], nil
}

func (c *idatWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.err != nil {
			return 0, c.err
		}
		k := copy(c.buf[len(c.buf):8+idatSize], p)
		c.buf, p = c.buf[:len(c.buf)+k], p[k:]
		if len(c.buf) == 8+idatSize {
			c.err = c.flush()
		}
	}
	return n, c.err
}

// flush writes the buffered data, if any, as one IDAT chunk.
func (c *idatWriter) flush() error {
	if len(c.buf) == 8 || c.err != nil {
		return c.err
	}
	binary.BigEndian.PutUint32(c.buf[:4], uint32(len(c.buf)-8))
	copy(c.buf[4:8], "IDAT")
	crc := crc32.ChecksumIEEE(c.buf[4:])
	chunk := binary.BigEndian.AppendUint32(c.buf, crc)
	_, err := c.w.Write(chunk)
	c.buf = c.buf[:8]
	return err
}
