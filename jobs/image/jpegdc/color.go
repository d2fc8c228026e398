package jpegdc

import "image"

// libjpeg's YCbCr to RGB tables (jdcolor.c): 16-bit fixed point.
var crR, cbB, crG, cbG [256]int32

func init() {
	const half = 1 << 15
	fix := func(x float64) int32 { return int32(x*65536 + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + half) >> 16
		cbB[i] = (fix(1.77200)*x + half) >> 16
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + half
	}
}

func clamp(v int32) uint8 { return uint8(min(max(v, 0), 255)) }

// toNRGBA converts the planes into the 1/8 image.
func (d *decoder) toNRGBA() *image.NRGBA {
	w, h := (d.width+7)/8, (d.height+7)/8
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	y := &d.comps[0]
	if len(d.comps) == 1 {
		for j := range h {
			src := y.plane[j*y.bw : j*y.bw+w]
			dst := img.Pix[j*img.Stride : j*img.Stride+4*w]
			for i, v := range src {
				p := dst[4*i : 4*i+4 : 4*i+4]
				p[0], p[1], p[2], p[3] = v, v, v, 255
			}
		}
		return img
	}
	// Chroma's own size at 1/8: its samples cover hmax×vmax luma pixels.
	cw := ((d.width+d.hmax-1)/d.hmax + 7) / 8
	ch := ((d.height+d.vmax-1)/d.vmax + 7) / 8
	var cb, cr []byte
	var cstride int
	if d.comps[1].idct2 { // already at luma's size
		cb, cr, cstride = d.comps[1].plane, d.comps[2].plane, 2*d.comps[1].bw
	} else {
		cb = upsample(&d.comps[1], cw, ch, d.hmax, d.vmax, w, h)
		cr = upsample(&d.comps[2], cw, ch, d.hmax, d.vmax, w, h)
		cstride = w
	}
	for j := range h {
		ys := y.plane[j*y.bw : j*y.bw+w]
		bs, rs := cb[j*cstride:j*cstride+w], cr[j*cstride:j*cstride+w]
		dst := img.Pix[j*img.Stride : j*img.Stride+4*w]
		for i, yy := range ys {
			Y, b, r := int32(yy), bs[i], rs[i]
			p := dst[4*i : 4*i+4 : 4*i+4]
			p[0] = clamp(Y + crR[r])
			p[1] = clamp(Y + (cbG[b]+crG[r])>>16)
			p[2] = clamp(Y + cbB[b])
			p[3] = 255
		}
	}
	return img
}

// upsample brings a chroma plane of cw×ch samples to w×h by repeating
// each hf×vf times: what libjpeg does at 1/8, where it turns its "fancy"
// upsampling off (jdsample.c: only when the DCT scaled size is over 1).
func upsample(c *component, cw, ch, hf, vf, w, h int) []byte {
	out := make([]byte, w*h)
	for j := range h {
		src := c.plane[min(j/vf, ch-1)*c.bw:]
		dst := out[j*w : j*w+w]
		for i := range dst {
			dst[i] = src[min(i/hf, cw-1)]
		}
	}
	return out
}
