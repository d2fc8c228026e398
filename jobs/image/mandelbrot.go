package image

import (
	"fmt"
	"image"
	"math"
)

// MaxIterations bounds Mandelbrot.MaxIter.
const MaxIterations = 1 << 20

// Mandelbrot describes a rendering of the Mandelbrot set: an image Width ×
// Height pixels of the square-pixelled window of the complex plane Span
// wide around Center. Points still bounded after MaxIter iterations are
// black; the others are coloured smoothly (by the normalised iteration
// count) from a fixed palette.
//
// Each pixel's colour depends only on the description and the pixel's
// position, never on the tile it is rendered in: tiles rendered separately
// and pasted together are byte-identical to rendering the whole image at
// once. The float64 arithmetic is written so the compiler cannot fuse a
// multiply and an add (an explicit float64 conversion rounds), so results
// do not change with GOAMD64 or FMA-capable architectures; math.Log, used
// for the smooth colouring, is the same within one architecture.
type Mandelbrot struct {
	Width, Height int        // of the whole image, in pixels
	Center        complex128 // the point at the centre of the image
	Span          float64    // width of the window in the complex plane
	MaxIter       int        // iterations before a point counts as inside, 1 to MaxIterations
}

func (m Mandelbrot) validate() error {
	switch {
	case m.Width < 1 || m.Height < 1 || m.Width > MaxDimension || m.Height > MaxDimension || m.Width*m.Height > MaxPixels:
		return fmt.Errorf("mandelbrot: image size %d×%d out of range", m.Width, m.Height)
	case !(m.Span > 0) || math.IsInf(m.Span, 0):
		return fmt.Errorf("mandelbrot: span %v must be positive and finite", m.Span)
	case math.IsNaN(real(m.Center)) || math.IsNaN(imag(m.Center)) || math.IsInf(real(m.Center), 0) || math.IsInf(imag(m.Center), 0):
		return fmt.Errorf("mandelbrot: centre %v must be finite", m.Center)
	case m.MaxIter < 1 || m.MaxIter > MaxIterations:
		return fmt.Errorf("mandelbrot: max iterations %d out of range 1 to %d", m.MaxIter, MaxIterations)
	}
	return nil
}

// Render returns the pixels of tile, a rectangle of the full image
// (within image.Rect(0, 0, Width, Height)), as an image with origin (0, 0);
// Paste it at tile.Min to assemble the full image.
func (m Mandelbrot) Render(tile image.Rectangle) (*image.NRGBA, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if tile.Empty() || !tile.In(image.Rect(0, 0, m.Width, m.Height)) {
		return nil, fmt.Errorf("mandelbrot: tile %v not inside the %d×%d image", tile, m.Width, m.Height)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, tile.Dx(), tile.Dy()))
	pixel := m.Span / float64(m.Width)
	halfW, halfH := float64(m.Width)/2, float64(m.Height)/2
	for y := tile.Min.Y; y < tile.Max.Y; y++ {
		ci := imag(m.Center) - float64((float64(y)+0.5-halfH)*pixel)
		d := pixRow(dst, y-tile.Min.Y)
		for x := tile.Min.X; x < tile.Max.X; x++ {
			cr := real(m.Center) + float64((float64(x)+0.5-halfW)*pixel)
			c := m.colour(cr, ci)
			i := 4 * (x - tile.Min.X)
			d[i], d[i+1], d[i+2], d[i+3] = c[0], c[1], c[2], 0xff
		}
	}
	return dst, nil
}

// bailout is the escape radius squared. A large radius makes the smooth
// iteration count accurate.
const bailout = 1 << 16

func (m Mandelbrot) colour(cr, ci float64) [3]uint8 {
	var zr, zi, zr2, zi2 float64
	n := 0
	for ; n < m.MaxIter; n++ {
		zi = float64(2*zr*zi) + ci
		zr = zr2 - zi2 + cr
		zr2, zi2 = float64(zr*zr), float64(zi*zi)
		if zr2+zi2 > bailout {
			break
		}
	}
	if n == m.MaxIter {
		return [3]uint8{}
	}
	// Normalised iteration count: n + 1 − log2(log2 |z|).
	logZ := math.Log(zr2+zi2) / 2
	mu := float64(n) + 1 - math.Log2(logZ/math.Ln2)
	return paletteAt(mu)
}

// palette is a cycle of 16 colours (from deep blue through white to gold
// and brown) that the smooth count walks through, one colour per iteration.
var palette = [...][3]float64{
	{66, 30, 15}, {25, 7, 26}, {9, 1, 47}, {4, 4, 73},
	{0, 7, 100}, {12, 44, 138}, {24, 82, 177}, {57, 125, 209},
	{134, 181, 229}, {211, 236, 248}, {241, 233, 191}, {248, 201, 95},
	{255, 170, 0}, {204, 128, 0}, {153, 87, 0}, {106, 52, 3},
}

func paletteAt(mu float64) [3]uint8 {
	if !(mu > 0 && mu < MaxIterations+2) { // also NaN, from absurd windows
		mu = 0
	}
	i := int(mu)
	f := mu - float64(i)
	a, b := palette[i%len(palette)], palette[(i+1)%len(palette)]
	var c [3]uint8
	for k := range c {
		c[k] = uint8(a[k] + float64(f*(b[k]-a[k])) + 0.5)
	}
	return c
}
