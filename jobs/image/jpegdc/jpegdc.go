// Package jpegdc decodes a baseline JPEG at one eighth of its width and
// height from its DC coefficients alone: each 8×8 block's mean, which is
// exactly what libjpeg's 1/8 DCT scaling gives for it. A thumbnail of a
// photo needs nothing more, and the work saved is the decoder's largest:
// the AC coefficients are skipped with one table lookup each, never
// dequantised or transformed.
//
// It reads what cameras and encoders write by default: baseline or
// extended sequential Huffman JPEGs of 8-bit samples, grey or YCbCr, in
// one interleaved scan, with or without restart markers. Anything else
// (progressive, arithmetic coding, 12-bit, CMYK, several scans) is
// ErrUnsupported, and the caller decodes it another way.
package jpegdc

import (
	"errors"
	"image"
)

// ErrUnsupported is returned for a valid JPEG this decoder does not read.
var ErrUnsupported = errors.New("jpegdc: unsupported JPEG")

// ErrTruncated is returned when the data ends before the image does.
var ErrTruncated = errors.New("jpegdc: truncated JPEG data")

// A FormatError says how the data is not a valid JPEG.
type FormatError string

func (e FormatError) Error() string { return "jpegdc: invalid JPEG: " + string(e) }

type component struct {
	id     byte
	h, v   int
	tq     int
	td, ta int
	// bw, bh are the blocks stored for the component: a whole number of
	// MCUs in an interleaved scan.
	bw, bh int
	plane  []byte
	pred   int32
	// idct2: each block gives 2×2 samples, from libjpeg's 2×2 IDCT of its
	// low frequencies, and plane's rows are 2*bw wide.
	idct2 bool
}

type decoder struct {
	data   []byte
	width  int
	height int
	comps  []component
	quant  [4][64]uint16
	hasQ   [4]bool
	dc     [4]*dcTable
	ac     [4]*acTable
	idct2  [4]*idct2Table // for the quantisation tables of idct2 components
	ri     int            // restart interval in MCUs; 0: none
	transf int            // Adobe transform flag, -1 when absent
	hmax   int
	vmax   int
}

// Config reads the header only.
func Config(data []byte) (w, h int, err error) {
	d := decoder{data: data, transf: -1}
	if _, err := d.header(); err != nil {
		return 0, 0, err
	}
	return d.width, d.height, nil
}

// Decode decodes data at 1/8 scale, (w+7)/8 × (h+7)/8 pixels, exactly as
// libjpeg(-turbo) does: each luma pixel its 8×8 block's mean (the 1×1
// IDCT), 4:2:0 chroma from the 2×2 IDCT of each block's low frequencies,
// other chroma repeated, converted to RGB with libjpeg's tables. The
// image is in the file's own orientation (EXIF is the caller's).
func Decode(data []byte) (*image.NRGBA, error) {
	d := decoder{data: data, transf: -1}
	pos, err := d.header()
	if err != nil {
		return nil, err
	}
	scan, rst, err := unstuff(data[pos:])
	if err != nil {
		return nil, err
	}
	defer bufs.Put(scan)
	defer func() {
		for _, c := range d.comps {
			planes.Put(c.plane)
		}
	}()
	if err := d.decodeScan(scan, rst); err != nil {
		return nil, err
	}
	return d.toNRGBA(), nil
}
