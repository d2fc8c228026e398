package image

import (
	"image"
	"sync"
)

// resizeOpaque is resizeSeparable for a source whose pixels are all
// opaque (every JPEG), giving the same bytes with less work: no alpha
// channel is carried, and the vertical pass, which reads each filtered
// row several times, works on two channels a multiply, the way the
// horizontal pass does.
//
// Why the bytes are the same: resizeSeparable carries an opaque pixel's
// alpha as 255·255, and when every row of weights sums to exactly
// 1<<weightBits (opaqueExact) it stays 255·255 through both passes, so
// that each colour is rounded as (v+127)/255 from the same integer sums
// computed here. The filtered rows are kept as packed pairs of channels,
// three channels a pixel in a row, one uint64 for two; a lane's true sum
// must fit in an int32 for the pair to be unpacked (opaqueFits).
//
// wx is given with the same number of taps for every output pixel
// (uniformTaps), so that the horizontal pass's loop over them runs as
// many times for each and its end is always foreseen.
func resizeOpaque(dst, src *image.NRGBA, wx, wy *weights) {
	inW := src.Rect.Dx()
	outW := dst.Rect.Dx()
	words := (3*outW + 1) / 2
	// One slot more than an output row reads: the horizontal pass
	// filters two rows at once, and the second may be one past the
	// window, which must not push out the window's first.
	slots := min(wy.stride+1, src.Rect.Dy())
	ringWords := make([]uint64, (slots+1)*words)
	ring := make([][]uint64, slots)
	ringRow := make([]int, slots)
	for i := range ring {
		ring[i] = ringWords[i*words : (i+1)*words : (i+1)*words]
		ringRow[i] = -1
	}
	spare := ringWords[slots*words:] // the second row's, when there is none
	lanes := make([]uint64, 3*inW)
	filtered := func(y int) []uint64 {
		slot := y % slots
		if ringRow[slot] != y {
			next, d1 := y+1, spare
			if next < src.Rect.Dy() && ringRow[next%slots] != next {
				d1 = ring[next%slots]
				ringRow[next%slots] = next
			} else {
				next = y // filtered twice, the copy dropped
			}
			spreadRows(lanes, pixRow(src, y), pixRow(src, next))
			horizontalOpaque(ring[slot], d1, lanes, wx)
			ringRow[slot] = y
		}
		return ring[slot]
	}
	acc := make([]uint64, words)
	for y := range dst.Rect.Dy() {
		clear(acc)
		w := wy.w64[y*wy.stride : y*wy.stride+wy.count[y]]
		start := wy.start[y]
		// Four rows a pass over acc: a quarter of its loads and stores.
		t := 0
		for ; t+3 < len(w); t += 4 {
			r0 := filtered(start + t)[:len(acc)]
			r1 := filtered(start + t + 1)[:len(acc)]
			r2 := filtered(start + t + 2)[:len(acc)]
			r3 := filtered(start + t + 3)[:len(acc)]
			w0, w1, w2, w3 := w[t], w[t+1], w[t+2], w[t+3]
			for j := range acc {
				acc[j] += w0*r0[j] + w1*r1[j] + w2*r2[j] + w3*r3[j]
			}
		}
		for ; t < len(w); t++ {
			r0 := filtered(start + t)[:len(acc)]
			w0 := w[t]
			for j := range acc {
				acc[j] += w0 * r0[j]
			}
		}
		unpackOpaqueRow(pixRow(dst, y), acc)
	}
}

// opaqueExact reports whether every output pixel's weights sum to exactly
// 1<<weightBits, which keeps an opaque pixel's alpha exactly opaque
// through a pass; newWeights makes them so whenever a pixel has taps.
func opaqueExact(ws *weights) bool {
	for _, n := range ws.count {
		if n == 0 {
			return false
		}
	}
	return true
}

// opaqueFits reports whether resizeOpaque's packed sums fit their lanes
// for these weights: the horizontal pass's as horizontalResize's do, and
// each vertical sum in an int32. With weights summing to 1 (opaqueExact),
// a pixel whose taps sum to s in magnitude has positive taps summing to
// (s+1)/2 and negative ones to (s-1)/2, so a filtered channel lies
// between -65025·(s-1)/2 and 65025·(s+1)/2, and a vertical sum is at most
// the vertical taps' positive part times the one plus their negative part
// times the other. (Bounding it by Σ|w| times the largest magnitude would
// refuse Lanczos3 at the edges of the image, where Σ|w| reaches 1.55.)
func opaqueFits(wx, wy *weights) bool {
	const full = 255 * 255
	const one = 1 << weightBits
	if wx.maxAbsSum*full >= 1<<31 {
		return false
	}
	posX, negX := (wx.maxAbsSum+one)/2+1, (wx.maxAbsSum-one)/2+1
	posY, negY := (wy.maxAbsSum+one)/2+1, (wy.maxAbsSum-one)/2+1
	hiX := (full*posX)>>weightBits + 1 // largest filtered channel
	loX := (full*negX)>>weightBits + 1 // largest negative one, in magnitude
	return posY*hiX+negY*loX < 1<<31
}

// spreadRows lays out two rows of opaque pixels for horizontalOpaque:
// for each pixel, its red, green and blue, each value·255 (as spread
// makes them for alpha 255) from a in the low lane and from b in the high.
func spreadRows(dst []uint64, a, b []byte) {
	dst = dst[:3*(len(a)/4)]
	b = b[:len(a)]
	for i := 0; i+3 < len(a); i += 4 {
		d := (*[3]uint64)(dst[3*(i/4):])
		d[0] = (uint64(a[i]) | uint64(b[i])<<32) * 255
		d[1] = (uint64(a[i+1]) | uint64(b[i+1])<<32) * 255
		d[2] = (uint64(a[i+2]) | uint64(b[i+2])<<32) * 255
	}
}

// horizontalOpaque is horizontalResize for two rows of opaque pixels at
// once (spreadRows' lanes): the same sums, three multiplies a tap for
// both rows rather than two for each, as a lane's true sum fits in an
// int32 (Σ|w|·65025 < 2^31, opaqueFits). Each row's three channels a
// pixel go straight into the packed pairs the vertical pass reads, d0
// the low lanes' row, d1 the high ones'.
func horizontalOpaque(d0, d1 []uint64, src []uint64, wx *weights) {
	const half = 1 << (weightBits - 1)
	round := func(v int64) uint64 { return uint64((v + half) >> weightBits) }
	for x := range len(wx.count) {
		n := wx.count[x]
		w := wx.w64[x*wx.stride : x*wx.stride+n]
		s := src[3*wx.start[x] : 3*wx.start[x]+3*n]
		var sr, sg, sb uint64
		for t, wt := range w {
			p := s[3*t : 3*t+3 : 3*t+3]
			sr += wt * p[0]
			sg += wt * p[1]
			sb += wt * p[2]
		}
		r0, g0, b0 := int64(int32(sr)), int64(int32(sg)), int64(int32(sb))
		r1, g1, b1 := (int64(sr)-r0)>>32, (int64(sg)-g0)>>32, (int64(sb)-b0)>>32
		// Channel c of the row is lane c%2 of word c/2: an even pixel
		// starts a word, an odd one ends the word its predecessor's
		// blue began (pack's lanes add).
		if k := 3 * x / 2; x%2 == 0 {
			d0[k], d0[k+1] = round(r0)+round(g0)<<32, round(b0)
			d1[k], d1[k+1] = round(r1)+round(g1)<<32, round(b1)
		} else {
			d0[k] += round(r0) << 32
			d0[k+1] = round(g0) + round(b0)<<32
			d1[k] += round(r1) << 32
			d1[k+1] = round(g1) + round(b1)<<32
		}
	}
}

// unpackOpaqueRow rounds the packed vertical sums back to 8-bit opaque
// pixels, as unpremultiplyRow does for alpha 255·255: two pixels from
// three words at a time.
func unpackOpaqueRow(dst []byte, acc []uint64) {
	x := 0
	for ; 4*x+7 < len(dst); x += 2 {
		w := (*[3]uint64)(acc[3*x/2:])
		d := (*[8]byte)(dst[4*x:])
		d[0], d[1] = unpackPair(w[0])
		d[2], d[4] = unpackPair(w[1])
		d[5], d[6] = unpackPair(w[2])
		d[3], d[7] = 255, 255
	}
	if 4*x+3 < len(dst) { // an odd width's last pixel, in two words
		d := (*[4]byte)(dst[4*x:])
		d[0], d[1] = unpackPair(acc[3*x/2])
		d[2], _ = unpackPair(acc[3*x/2+1])
		d[3] = 255
	}
}

// unpackPair rounds the two lanes of a packed vertical sum to 8 bits.
func unpackPair(a uint64) (uint8, uint8) {
	lo := int64(int32(a))
	hi := (int64(a) - lo) >> 32
	return round8(lo), round8(hi)
}

// round8 is an opaque channel's sum of value·255·2^weightBits rounded to
// 8 bits, clamped, as unpremultiplyRow rounds it.
func round8(v int64) uint8 {
	const half = 1 << (weightBits - 1)
	const full = 255 * 255
	u := uint32(max(0, min(full, (v+half)>>weightBits)))
	return uint8((u + 127) / 255)
}

// uniformTaps returns ws with every output pixel reading as many source
// pixels as the one that reads the most: the others gain taps of weight
// 0, after their own where the source has pixels left, else before. The
// sums are the same.
func uniformTaps(ws *weights, in int) *weights {
	n := 0
	for _, c := range ws.count {
		n = max(n, c)
	}
	out := len(ws.count)
	u := &weights{
		start: make([]int, out), count: make([]int, out),
		w: make([]int32, out*n), w64: make([]uint64, out*n),
		stride: n, maxAbsSum: ws.maxAbsSum,
	}
	for i, c := range ws.count {
		start := min(ws.start[i], in-n) // count ≤ in, so start ≥ 0
		u.start[i], u.count[i] = start, n
		off := ws.start[i] - start
		copy(u.w[i*n+off:], ws.w[i*ws.stride:i*ws.stride+c])
		copy(u.w64[i*n+off:], ws.w64[i*ws.stride:i*ws.stride+c])
	}
	return u
}

// weightCache keeps the last few sets of weights made: a worker makes
// thumbnail after thumbnail of the same sizes, and making them costs
// more than a small resize's filtering (a sine per tap). Weights are
// read only once made.
var weightCache struct {
	sync.Mutex
	entries [4]weightEntry
	next    int
}

type weightKey struct {
	in, out int
	extent  float64
	filter  Resample
}

type weightEntry struct {
	key         weightKey
	ws, uniform *weights
}

// cachedWeights is newWeights for filter's kernel, and those weights
// with uniformTaps, from weightCache when the same weights were made
// lately.
func cachedWeights(in int, extent float64, out int, filter Resample) (ws, uniform *weights) {
	key := weightKey{in: in, out: out, extent: extent, filter: filter}
	c := &weightCache
	c.Lock()
	for _, e := range c.entries {
		if e.ws != nil && e.key == key {
			c.Unlock()
			return e.ws, e.uniform
		}
	}
	c.Unlock()
	f, support := filter.kernel()
	ws = newWeights(in, extent, out, f, support)
	uniform = uniformTaps(ws, in)
	c.Lock()
	c.entries[c.next] = weightEntry{key: key, ws: ws, uniform: uniform}
	c.next = (c.next + 1) % len(c.entries)
	c.Unlock()
	return ws, uniform
}
