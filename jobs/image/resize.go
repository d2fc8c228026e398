package image

import (
	"fmt"
	"image"
	"math"
)

// A Resample is the filter Resize interpolates with. The zero value is
// Lanczos3, the sharpest.
type Resample int

const (
	Lanczos3   Resample = iota // windowed sinc, 3 lobes: Pillow's LANCZOS
	CatmullRom                 // bicubic, a = -0.5: Pillow's BICUBIC
	Bilinear                   // triangle: Pillow's BILINEAR
	Nearest                    // nearest neighbour: Pillow's NEAREST
)

func (r Resample) String() string {
	switch r {
	case Lanczos3:
		return "lanczos3"
	case CatmullRom:
		return "catmullrom"
	case Bilinear:
		return "bilinear"
	case Nearest:
		return "nearest"
	}
	return fmt.Sprintf("Resample(%d)", int(r))
}

// kernel returns the filter function and its support (radius) in pixels.
func (r Resample) kernel() (func(float64) float64, float64) {
	switch r {
	case CatmullRom:
		return catmullRom, 2
	case Bilinear:
		return triangle, 1
	}
	return lanczos3, 3
}

func lanczos3(x float64) float64 {
	if x <= -3 || x >= 3 {
		return 0
	}
	return sinc(x) * sinc(x/3)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func catmullRom(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

func triangle(x float64) float64 {
	return max(0, 1-math.Abs(x))
}

// Resize scales src to width × height pixels with the given filter.
//
// It works like Pillow's resize: separable passes (horizontal, then
// vertical), each output pixel centred at (x+0.5)·scale in the source, the
// filter stretched by the scale factor when shrinking so every source pixel
// contributes (no aliasing), and weights that fall outside the image dropped
// and the rest renormalised. Pixels that are not opaque are filtered in
// premultiplied alpha, so a transparent pixel's colour does not bleed into
// its neighbours. Values between the passes keep 16 bits per channel.
//
// A shrink by more than reducingGap (2) times in a direction first averages
// integer boxes of pixels, to no less than twice the output size, then
// filters that (Pillow's thumbnail with reducing_gap=2.0); the result is
// within 45 dB PSNR of the one-step filter and many times faster for big
// shrinks. Nearest is always one step.
func Resize(src *image.NRGBA, width, height int, filter Resample) (*image.NRGBA, error) {
	if src == nil {
		return nil, errNilImage
	}
	if width < 1 || height < 1 || width > MaxDimension || height > MaxDimension {
		return nil, fmt.Errorf("resize to %d×%d: size out of range 1 to %d", width, height, MaxDimension)
	}
	if err := checkPixels("resize", width, height); err != nil {
		return nil, err
	}
	if filter < Lanczos3 || filter > Nearest {
		return nil, fmt.Errorf("resize: unknown filter %v", filter)
	}
	return resample(src, width, height, filter, true), nil
}

// resample is Resize once the arguments are checked; with reduce false it
// is always the exact one-step filter (what the two-step is tested
// against).
func resample(src *image.NRGBA, width, height int, filter Resample, reduce bool) *image.NRGBA {
	dst := image.NewNRGBA(image.Rect(0, 0, width, height))
	if src.Rect.Empty() {
		return dst
	}
	if filter == Nearest {
		resizeNearest(dst, src)
		return dst
	}
	inW, inH := src.Rect.Dx(), src.Rect.Dy()
	extentW, extentH := float64(inW), float64(inH)
	// A big shrink first averages boxes of fx × fy pixels, which costs
	// one add a channel a source pixel, and filters only what remains,
	// which is still at least reducingGap times the output: with Lanczos3
	// the one-step filter would read 6·scale source pixels for each
	// output pixel in each direction.
	if fx, fy := reduceFactors(inW, inH, width, height); reduce && (fx > 1 || fy > 1) {
		src = reduceBox(src, fx, fy)
		// The reduced image's pixel i covers source pixels i·fx to
		// (i+1)·fx; the last may be partial, so the source's edge falls
		// at inW/fx, not at the reduced width.
		extentW, extentH = float64(inW)/float64(fx), float64(inH)/float64(fy)
	}
	wx, wxUniform := cachedWeights(src.Rect.Dx(), extentW, width, filter)
	wy, _ := cachedWeights(src.Rect.Dy(), extentH, height, filter)
	if opaqueExact(wx) && opaqueExact(wy) && opaqueFits(wx, wy) && src.Opaque() {
		resizeOpaque(dst, src, wxUniform, wy) // the same bytes, sooner
		return dst
	}
	resizeSeparable(dst, src, wx, wy)
	return dst
}

// reducingGap is how many times the output's size the image is still
// after the box reduction, as Pillow's thumbnail's reducing_gap=2.0. At
// 2 the result is within 45 dB PSNR of the one-step filter on photos.
const reducingGap = 2

// reduceFactors are the integer box factors a resize from inW × inH to
// outW × outH first reduces by (Pillow's factor_x, factor_y): as large
// as leaves at least reducingGap times the output, 1 in a direction that
// does not shrink that much.
func reduceFactors(inW, inH, outW, outH int) (fx, fy int) {
	return max(1, inW/(reducingGap*outW)), max(1, inH/(reducingGap*outH))
}

// reduceBytes is what Resize's box reduction adds to a resize from w × h to
// tw × th (the reduced image), for the memory budget; 0 when it does not
// reduce.
func reduceBytes(w, h, tw, th int, filter Resample) uint64 {
	fx, fy := reduceFactors(w, h, tw, th)
	if filter == Nearest || fx == 1 && fy == 1 {
		return 0
	}
	return 4 * uint64((w+fx-1)/fx) * uint64((h+fy-1)/fy)
}

// reduceBox averages each fx × fy box of src into one pixel, as Pillow's
// Image.reduce: the boxes at the right and bottom edges may be partial
// and average the pixels they have. Colours are averaged weighted by
// alpha (premultiplied), so transparent pixels do not bleed; for opaque
// boxes that is the plain mean. Each result is rounded to the nearest.
func reduceBox(src *image.NRGBA, fx, fy int) *image.NRGBA {
	inW, inH := src.Rect.Dx(), src.Rect.Dy()
	outW, outH := (inW+fx-1)/fx, (inH+fy-1)/fy
	dst := image.NewNRGBA(image.Rect(0, 0, outW, outH))
	// Sums of value·alpha for R, G, B and of alpha, per output pixel.
	acc := make([]uint64, 4*outW)
	for oy := range outH {
		clear(acc)
		y0, y1 := oy*fy, min(inH, (oy+1)*fy)
		for y := y0; y < y1; y++ {
			row := pixRow(src, y)
			for ox := range outW {
				s := row[4*ox*fx : 4*min(inW, (ox+1)*fx)]
				var r, g, b, a uint64
				for i := 0; i+3 < len(s); i += 4 {
					p := (*[4]uint8)(s[i:])
					pa := uint64(p[3])
					r += uint64(p[0]) * pa
					g += uint64(p[1]) * pa
					b += uint64(p[2]) * pa
					a += pa
				}
				d := (*[4]uint64)(acc[4*ox:])
				d[0] += r
				d[1] += g
				d[2] += b
				d[3] += a
			}
		}
		out := pixRow(dst, oy)
		for ox := range outW {
			d := (*[4]uint64)(acc[4*ox:])
			a := d[3]
			if a == 0 {
				continue // transparent black, as NewNRGBA left it
			}
			n := uint64((y1 - y0) * (min(inW, (ox+1)*fx) - ox*fx))
			o := (*[4]uint8)(out[4*ox:])
			o[0] = uint8((d[0] + a/2) / a)
			o[1] = uint8((d[1] + a/2) / a)
			o[2] = uint8((d[2] + a/2) / a)
			o[3] = uint8((a + n/2) / n)
		}
	}
	return dst
}

// Thumbnail shrinks src to fit in maxWidth × maxHeight, keeping its aspect
// ratio, with Lanczos3. An image that already fits is returned as a copy,
// not enlarged.
func Thumbnail(src *image.NRGBA, maxWidth, maxHeight int) (*image.NRGBA, error) {
	if src == nil {
		return nil, errNilImage
	}
	if maxWidth < 1 || maxHeight < 1 {
		return nil, fmt.Errorf("thumbnail %d×%d: size must be positive", maxWidth, maxHeight)
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	if w <= maxWidth && h <= maxHeight {
		return Crop(src, src.Rect), nil
	}
	tw, th := thumbnailSize(w, h, maxWidth, maxHeight)
	return Resize(src, tw, th, Lanczos3)
}

// thumbnailSize is the size Thumbnail shrinks an image w×h to.
func thumbnailSize(w, h, maxWidth, maxHeight int) (int, int) {
	if w <= maxWidth && h <= maxHeight {
		return w, h
	}
	scale := min(float64(maxWidth)/float64(w), float64(maxHeight)/float64(h))
	tw := max(1, min(maxWidth, int(math.Round(float64(w)*scale))))
	th := max(1, min(maxHeight, int(math.Round(float64(h)*scale))))
	return tw, th
}

// weights are one pass's fixed-point filter taps: output pixel i reads
// count[i] source pixels from start[i] with weights w[i*stride:].
type weights struct {
	start, count []int
	w            []int32
	w64          []uint64 // w sign-extended, for the two-lane pass
	stride       int
	maxAbsSum    int64 // largest Σ|w| of any output pixel
}

const weightBits = 14

// newWeights makes the taps from in source pixels to out, the source's
// extent (in pixels, at most in) mapped onto the out pixels: in itself,
// except after reduceBox, whose last pixel may stand for a partial box.
func newWeights(in int, extent float64, out int, f func(float64) float64, support float64) *weights {
	scale := extent / float64(out)
	filterScale := max(1, scale)
	support *= filterScale
	stride := int(math.Ceil(support))*2 + 1
	ws := &weights{
		start:  make([]int, out),
		count:  make([]int, out),
		w:      make([]int32, out*stride),
		stride: stride,
	}
	tap := make([]float64, stride)
	for i := range out {
		centre := (float64(i) + 0.5) * scale
		lo := max(0, int(centre-support+0.5))
		hi := min(in, int(centre+support+0.5))
		n := min(hi-lo, stride)
		sum := 0.0
		for j := range n {
			tap[j] = f((float64(lo+j) - centre + 0.5) / filterScale)
			sum += tap[j]
		}
		// Round to integers summing exactly to 1<<weightBits, so flat
		// areas stay exactly flat; the error goes to the largest tap.
		w := ws.w[i*stride : i*stride+n]
		total, big := int32(0), 0
		for j := range n {
			if sum != 0 {
				tap[j] /= sum
			}
			w[j] = int32(math.Round(tap[j] * (1 << weightBits)))
			total += w[j]
			if w[j] > w[big] {
				big = j
			}
		}
		if n > 0 {
			w[big] += 1<<weightBits - total
		}
		var abs int64
		for _, v := range w {
			abs += int64(max(v, -v))
		}
		ws.maxAbsSum = max(ws.maxAbsSum, abs)
		ws.start[i], ws.count[i] = lo, n
	}
	ws.w64 = make([]uint64, len(ws.w))
	for i, v := range ws.w {
		ws.w64[i] = uint64(int64(v))
	}
	return ws
}

// resizeSeparable filters each source row horizontally once, when the
// vertical pass first needs it, and keeps only the window of filtered rows
// the current output row reads: a few rows when enlarging, about six times
// the shrink factor when shrinking, never the whole intermediate image.
//
// Each channel is carried as in the blur (see spread): value·alpha, alpha
// as 255·alpha, 0 to 65025; premultiplied, and for opaque pixels just
// value·255, with no branch.
func resizeSeparable(dst, src *image.NRGBA, wx, wy *weights) {
	inW := src.Rect.Dx()
	outW := dst.Rect.Dx()
	// Output row y reads at most wy.stride consecutive rows, and no more
	// than the image has.
	slots := min(wy.stride, src.Rect.Dy())
	ring := make([][]int32, slots)
	ringRow := make([]int, slots)
	for i := range ring {
		ring[i] = make([]int32, 4*outW)
		ringRow[i] = -1
	}
	premul := make([]uint64, 2*inW)
	horizontal := horizontalResize
	if wx.maxAbsSum*255*255 >= 1<<31 {
		horizontal = horizontalResizeWide
	}
	filtered := func(y int) []int32 {
		slot := y % slots
		if ringRow[slot] != y {
			spread(premul, pixRow(src, y))
			horizontal(ring[slot], premul, wx)
			ringRow[slot] = y
		}
		return ring[slot]
	}
	acc := make([]int64, 4*outW)
	for y := range dst.Rect.Dy() {
		clear(acc)
		w := wy.w[y*wy.stride : y*wy.stride+wy.count[y]]
		// Two rows a pass over acc: half the loads and stores of it.
		t := 0
		for ; t+1 < len(w); t += 2 {
			r0 := filtered(wy.start[y] + t)[:len(acc)]
			r1 := filtered(wy.start[y] + t + 1)[:len(acc)]
			w0, w1 := int64(w[t]), int64(w[t+1])
			for j := range acc {
				acc[j] += w0*int64(r0[j]) + w1*int64(r1[j])
			}
		}
		if t < len(w) {
			r0 := filtered(wy.start[y] + t)[:len(acc)]
			w0 := int64(w[t])
			for j := range acc {
				acc[j] += w0 * int64(r0[j])
			}
		}
		unpremultiplyRow(pixRow(dst, y), acc)
	}
}

// horizontalResize filters one premultiplied row, in spread's two-lane
// form, into dst (four int32 per output pixel). Each multiply handles two
// channels as in the blur, but weights here can be negative, so a lane can
// borrow from the one above it. That is undone at the end: the low lane's
// true sum fits in an int32 (Σ|w|·65025 < 2^31, checked by the caller), so
// it is the low 32 bits read as signed, and the high lane is what remains.
func horizontalResize(dst []int32, src []uint64, wx *weights) {
	const half = 1 << (weightBits - 1)
	for x := 0; 4*x+3 < len(dst); x++ {
		n := wx.count[x]
		// Slices of exactly the taps' length, so that the compiler can
		// drop most bounds checks from the loop.
		w := wx.w64[x*wx.stride : x*wx.stride+n]
		s := src[2*wx.start[x] : 2*wx.start[x]+2*n]
		// Two taps a step into two pairs of sums, so that the adds of
		// one tap need not wait for the other's (the sums are modulo
		// 2^64, so their order does not change the result).
		var rb, ga, rb2, ga2 uint64
		t := 0
		for ; t+1 < len(w); t += 2 {
			w0, w1 := w[t], w[t+1]
			p := s[2*t : 2*t+4 : 2*t+4]
			rb += w0 * p[0]
			ga += w0 * p[1]
			rb2 += w1 * p[2]
			ga2 += w1 * p[3]
		}
		if t < len(w) {
			wt := w[t]
			rb += wt * s[2*t]
			ga += wt * s[2*t+1]
		}
		rb += rb2
		ga += ga2
		r, g := int64(int32(rb)), int64(int32(ga))
		b, a := (int64(rb)-r)>>32, (int64(ga)-g)>>32
		d := (*[4]int32)(dst[4*x:])
		d[0] = int32((r + half) >> weightBits)
		d[1] = int32((g + half) >> weightBits)
		d[2] = int32((b + half) >> weightBits)
		d[3] = int32((a + half) >> weightBits)
	}
}

// horizontalResizeWide is horizontalResize one channel at a time, for
// weights too large in magnitude for two lanes (no filter here has them;
// it keeps the fast path honest).
func horizontalResizeWide(dst []int32, src []uint64, wx *weights) {
	const half = 1 << (weightBits - 1)
	for x := 0; 4*x+3 < len(dst); x++ {
		w := wx.w[x*wx.stride : x*wx.stride+wx.count[x]]
		s := src[2*wx.start[x]:]
		var r, g, b, a int64
		for t, wt := range w {
			wt := int64(wt)
			rb, ga := s[2*t], s[2*t+1]
			r += wt * int64(uint32(rb))
			g += wt * int64(uint32(ga))
			b += wt * int64(rb>>32)
			a += wt * int64(ga>>32)
		}
		d := (*[4]int32)(dst[4*x:])
		d[0] = int32((r + half) >> weightBits)
		d[1] = int32((g + half) >> weightBits)
		d[2] = int32((b + half) >> weightBits)
		d[3] = int32((a + half) >> weightBits)
	}
}

// unpremultiplyRow rounds the vertical sums back to 8-bit NRGBA.
func unpremultiplyRow(dst []byte, acc []int64) {
	const half = 1 << (weightBits - 1)
	const full = 255 * 255
	acc = acc[:len(dst)]
	for i := 0; i+3 < len(dst); i += 4 {
		a := max(0, min(full, (acc[i+3]+half)>>weightBits))
		alpha := (a + 127) / 255
		for c := i; c < i+3; c++ {
			v := max(0, min(full, (acc[c]+half)>>weightBits))
			if a == full { // opaque: value·255
				dst[c] = uint8((v + 127) / 255)
			} else {
				dst[c] = unpremul(uint64(v), uint64(a))
			}
		}
		dst[i+3] = uint8(alpha)
	}
}

// resizeNearest copies, for each output pixel, the source pixel under its
// centre: source x = ⌊(x+0.5)·inW/outW⌋, in integers so it is exact.
func resizeNearest(dst, src *image.NRGBA) {
	inW, inH := src.Rect.Dx(), src.Rect.Dy()
	outW, outH := dst.Rect.Dx(), dst.Rect.Dy()
	sx := make([]int, outW)
	for x := range sx {
		sx[x] = 4 * ((2*x + 1) * inW / (2 * outW))
	}
	for y := range outH {
		s := pixRow(src, (2*y+1)*inH/(2*outH))
		d := pixRow(dst, y)
		for x, o := range sx {
			copy(d[4*x:4*x+4], s[o:o+4])
		}
	}
}
