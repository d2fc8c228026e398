package image

import (
	"errors"
	"fmt"
	"image"
)

// A Filter is a neighbourhood operation whose output row y depends only on
// input rows y-Halo() to y+Halo(). That is what lets a tall image be cut into
// horizontal strips, filtered by different processes and stitched back: see
// Strip. GaussianBlur, Sharpen, Grayscale and Edges are Filters.
type Filter interface {
	// Halo reports how many rows above and below an output row the
	// filter reads.
	Halo() int

	// Apply filters the whole image into a new one.
	Apply(src *image.NRGBA) (*image.NRGBA, error)

	// ApplyStrip computes output rows [s.Y0, s.Y1) of the filter applied to
	// a full image s.Height rows tall. src must hold exactly the input rows
	// s.Input(Halo()) of that full image (its position in src's Bounds is
	// ignored). The result, s.Y1-s.Y0 rows with origin (0, 0), is
	// byte-identical to the same rows of Apply on the full image: rows
	// past the image's top and bottom edge are clamped exactly as in the
	// whole-image run.
	ApplyStrip(src *image.NRGBA, s Strip) (*image.NRGBA, error)
}

// rowFilter is what each Filter implements once; Apply and ApplyStrip both
// run it, which is why their results agree byte for byte.
type rowFilter interface {
	Halo() int
	validate() error
	// rows writes output rows [y0, y0+dst height) of a full image height
	// rows tall into dst. src holds input rows [srcY0, srcY0+src height),
	// covering all rows the output reads, and has dst's width.
	rows(dst, src *image.NRGBA, srcY0, height, y0 int)
}

// A Strip is a band of output rows [Y0, Y1) of an image Height rows tall.
// A filter with halo h computes it from input rows Input(h): the strip
// widened by h rows each way, clipped to the image.
type Strip struct {
	Y0, Y1 int // output rows, Y0 inclusive, Y1 exclusive
	Height int // height of the full image
}

// PlanStrips cuts an image height rows tall into strips of stripRows rows,
// top to bottom; the last may be shorter. The plan depends only on its
// arguments (not on how many workers run it), so the same job always cuts
// the same way. A stripRows below 1 gives one strip; a height below 1, none.
func PlanStrips(height, stripRows int) []Strip {
	if height < 1 {
		return nil
	}
	if stripRows < 1 {
		stripRows = height
	}
	strips := make([]Strip, 0, (height+stripRows-1)/stripRows)
	for y := 0; y < height; y += stripRows {
		strips = append(strips, Strip{Y0: y, Y1: min(y+stripRows, height), Height: height})
	}
	return strips
}

// Input returns the input rows [y0, y1) that a filter with the given halo
// reads to compute s.
func (s Strip) Input(halo int) (y0, y1 int) {
	return max(0, s.Y0-halo), min(s.Height, s.Y1+halo)
}

func (s Strip) String() string {
	return fmt.Sprintf("rows [%d,%d) of %d", s.Y0, s.Y1, s.Height)
}

func (s Strip) valid() error {
	if s.Y0 < 0 || s.Y0 >= s.Y1 || s.Y1 > s.Height {
		return fmt.Errorf("invalid strip: %v", s)
	}
	return nil
}

var errNilImage = errors.New("nil image")

func applyWhole(f rowFilter, src *image.NRGBA) (*image.NRGBA, error) {
	if src == nil {
		return nil, errNilImage
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	if w > 0 && h > 0 {
		f.rows(dst, src, 0, h, 0)
	}
	return dst, nil
}

func applyStrip(f rowFilter, src *image.NRGBA, s Strip) (*image.NRGBA, error) {
	if src == nil {
		return nil, errNilImage
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if err := s.valid(); err != nil {
		return nil, err
	}
	in0, in1 := s.Input(f.Halo())
	if got := src.Rect.Dy(); got != in1-in0 {
		return nil, fmt.Errorf("strip %v needs input rows [%d,%d) (%d rows), got %d rows", s, in0, in1, in1-in0, got)
	}
	w := src.Rect.Dx()
	dst := image.NewNRGBA(image.Rect(0, 0, w, s.Y1-s.Y0))
	if w > 0 {
		f.rows(dst, src, in0, s.Height, s.Y0)
	}
	return dst, nil
}

// Crop returns a copy of the part of src inside r, with origin (0, 0).
// Use it to cut a strip's input rows out of a full image:
//
//	y0, y1 := s.Input(f.Halo())
//	in := Crop(full, image.Rect(0, y0, full.Bounds().Dx(), y1))
//
// r is in src's coordinates and is clipped to src's bounds.
func Crop(src *image.NRGBA, r image.Rectangle) *image.NRGBA {
	r = r.Intersect(src.Rect)
	dst := image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := range r.Dy() {
		i := src.PixOffset(r.Min.X, r.Min.Y+y)
		copy(pixRow(dst, y), src.Pix[i:i+4*r.Dx()])
	}
	return dst
}

// Paste copies src into dst with src's top-left corner at p (in dst's
// coordinates), clipped to dst. Pasting each strip's output at (0, s.Y0)
// stitches the strips back into the full image.
func Paste(dst, src *image.NRGBA, p image.Point) {
	r := src.Rect.Sub(src.Rect.Min).Add(p).Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		d := dst.PixOffset(r.Min.X, y)
		s := src.PixOffset(src.Rect.Min.X+r.Min.X-p.X, src.Rect.Min.Y+y-p.Y)
		copy(dst.Pix[d:d+4*r.Dx()], src.Pix[s:s+4*r.Dx()])
	}
}

// pixRow returns the pixels of row y, counted from the top of img's bounds.
func pixRow(img *image.NRGBA, y int) []byte {
	i := img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y)
	return img.Pix[i : i+4*img.Rect.Dx() : i+4*img.Rect.Dx()]
}
