package image

import (
	"image"
	"image/color"
	"image/draw"
)

// toNRGBA converts whatever image/png and image/jpeg return into an
// *image.NRGBA with origin (0, 0), with a direct loop for each type they
// produce; image/draw's generic path would call At per pixel.
func toNRGBA(m image.Image) *image.NRGBA {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if src, ok := m.(*image.NRGBA); ok && src.Rect.Min == (image.Point{}) && src.Stride == 4*w {
		return src // already the working format: no copy
	}
	if src, ok := m.(*image.RGBA); ok && src.Rect.Min == (image.Point{}) && src.Stride == 4*w && src.Opaque() {
		// An opaque RGBA image (a PNG without alpha decodes so) has the
		// same bytes as an NRGBA one.
		return &image.NRGBA{Pix: src.Pix, Stride: src.Stride, Rect: src.Rect}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	switch src := m.(type) {
	case *image.NRGBA:
		for y := range h {
			copy(pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.YCbCr:
		// image/draw converts YCbCr quickly into *image.RGBA, and an
		// opaque RGBA image has the same bytes as an NRGBA one.
		rgba := &image.RGBA{Pix: dst.Pix, Stride: dst.Stride, Rect: dst.Rect}
		draw.Draw(rgba, rgba.Rect, src, b.Min, draw.Src)
	case *image.Gray:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				v := s[x]
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = v, v, v, 0xff
			}
		}
	case *image.Gray16:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				v := s[2*x] // high byte
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = v, v, v, 0xff
			}
		}
	case *image.NRGBA64:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = s[8*x], s[8*x+2], s[8*x+4], s[8*x+6]
			}
		}
	case *image.RGBA:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				r, g, bl, a := s[4*x], s[4*x+1], s[4*x+2], s[4*x+3]
				if a != 0xff {
					c := color.NRGBAModel.Convert(color.RGBA{r, g, bl, a}).(color.NRGBA)
					r, g, bl = c.R, c.G, c.B
				}
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = r, g, bl, a
			}
		}
	case *image.RGBA64:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p := s[8*x : 8*x+8]
				if p[6] == 0xff && p[7] == 0xff {
					d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = p[0], p[2], p[4], 0xff
					continue
				}
				c := color.NRGBAModel.Convert(src.RGBA64At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
	case *image.Paletted:
		var lut [256][4]uint8
		for i, c := range src.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [4]uint8{n.R, n.G, n.B, n.A}
		}
		// Indices past the palette's end read as opaque black, as in
		// image/png.
		for i := len(src.Palette); i < len(lut); i++ {
			lut[i] = [4]uint8{0, 0, 0, 0xff}
		}
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				copy(d[4*x:4*x+4], lut[s[x]][:])
			}
		}
	case *image.CMYK:
		for y := range h {
			d, s := pixRow(dst, y), src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				r, g, bl := color.CMYKToRGB(s[4*x], s[4*x+1], s[4*x+2], s[4*x+3])
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = r, g, bl, 0xff
			}
		}
	default:
		// Nothing image/png or image/jpeg returns today.
		for y := range h {
			d := pixRow(dst, y)
			for x := range w {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
	}
	return dst
}
