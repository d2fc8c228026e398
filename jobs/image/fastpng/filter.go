package fastpng

// The PNG row filters, numbered as in the file.
const (
	ftNone    = 0
	ftSub     = 1
	ftUp      = 2
	ftAverage = 3
	ftPaeth   = 4
)

// abs8 is the magnitude of a filtered byte read as a signed residual,
// which is what the minimum-sum heuristic adds up. It is arithmetic, not
// a branch, which the noise of photographs would make unpredictable.
func abs8(d uint8) int {
	v := int(int8(d))
	m := v >> 63
	return (v ^ m) - m
}

// filter returns the current row filtered the way that minimises the sum
// of absolute residuals, the heuristic libpng uses. Up and Paeth, which win
// most rows of photographs, are computed in full and together, sharing
// their loads; None, Sub and Average then stop as soon as their sum passes
// the best so far, so a row costs little more than those two.
func (e *encoder) filter(bpp int) []byte {
	cur, prev := e.cur[1:], e.prev[1:]
	n := len(cur)
	prev = prev[:n]

	up := e.filtered[ftUp][1 : n+1]
	pa := e.filtered[ftPaeth][1 : n+1]
	sumUp := 0
	for i := 0; i < bpp; i++ {
		d := cur[i] - prev[i]
		up[i], pa[i] = d, d
		sumUp += abs8(d)
	}
	sumPaeth := sumUp
	// Equal-length views of the row, above, left and upper left, so the
	// loop runs without bounds checks.
	c := cur[bpp:]
	p, l, ul := prev[bpp:][:len(c)], cur[:len(c)], prev[:len(c)]
	u, q := up[bpp:][:len(c)], pa[bpp:][:len(c)]
	for i, x := range c {
		b := p[i]
		d := x - b
		u[i] = d
		sumUp += abs8(d)
		r := x - uint8(paethPredict(int(l[i]), int(b), int(ul[i])))
		q[i] = r
		sumPaeth += abs8(r)
	}
	best, choice := sumUp, ftUp
	if sumPaeth < best {
		best, choice = sumPaeth, ftPaeth
	}

	sum := 0
	for i := 0; i < n && sum < best; i++ {
		sum += abs8(cur[i])
	}
	if sum < best {
		best, choice = sum, ftNone
	}

	sub := e.filtered[ftSub][1 : n+1]
	sum = 0
	for i := 0; i < bpp; i++ {
		sub[i] = cur[i]
		sum += abs8(sub[i])
	}
	for i := bpp; i < n && sum < best; i++ {
		sub[i] = cur[i] - cur[i-bpp]
		sum += abs8(sub[i])
	}
	if sum < best {
		best, choice = sum, ftSub
	}

	avg := e.filtered[ftAverage][1 : n+1]
	sum = 0
	for i := 0; i < bpp; i++ {
		avg[i] = cur[i] - prev[i]/2
		sum += abs8(avg[i])
	}
	for i := bpp; i < n && sum < best; i++ {
		avg[i] = cur[i] - uint8((int(cur[i-bpp])+int(prev[i]))/2)
		sum += abs8(avg[i])
	}
	if sum < best {
		choice = ftAverage
	}

	if choice == ftNone {
		e.cur[0] = ftNone
		return e.cur
	}
	return e.filtered[choice]
}

// unfilterPaeth undoes the Paeth filter on cur in place, given the
// decoded previous row. Each byte depends on the one bpp to its left; the
// 3- and 4-byte cases keep those in registers, a pixel per iteration, so
// the chain does not go through memory, and selections are conditional
// moves (see paethPredict).
func unfilterPaeth(cur, prev []byte, bpp int) {
	prev = prev[:len(cur)]
	// Left of the first pixel, a and c are 0, so the predictor is b.
	for i := 0; i < bpp && i < len(cur); i++ {
		cur[i] += prev[i]
	}
	switch {
	case bpp == 3 && len(cur)%3 == 0:
		unfilterPaeth3(cur, prev)
	case bpp == 4 && len(cur)%4 == 0:
		unfilterPaeth4(cur, prev)
	default:
		for j := bpp; j < len(cur); j++ {
			cur[j] += uint8(paethPredict(int(cur[j-bpp]), int(prev[j]), int(prev[j-bpp])))
		}
	}
}

// paethPredict is paeth on ints, written so that the compiler inlines it
// and makes conditional moves of it: the noise of photographs makes a
// branch unpredictable.
func paethPredict(a, b, c int) int {
	pa, pb := b-c, a-c
	pc := pa + pb
	pa, pb, pc = max(pa, -pa), max(pb, -pb), max(pc, -pc)
	p := c
	if pb <= pc {
		p = b
	}
	if pa <= min(pb, pc) {
		p = a
	}
	return p
}

func unfilterPaeth3(cur, prev []byte) {
	a0, a1, a2 := int(cur[0]), int(cur[1]), int(cur[2])
	c0, c1, c2 := int(prev[0]), int(prev[1]), int(prev[2])
	for j := 3; j+2 < len(cur) && j+2 < len(prev); j += 3 {
		b0, b1, b2 := int(prev[j]), int(prev[j+1]), int(prev[j+2])
		a0 = (int(cur[j]) + paethPredict(a0, b0, c0)) & 0xff
		a1 = (int(cur[j+1]) + paethPredict(a1, b1, c1)) & 0xff
		a2 = (int(cur[j+2]) + paethPredict(a2, b2, c2)) & 0xff
		cur[j], cur[j+1], cur[j+2] = uint8(a0), uint8(a1), uint8(a2)
		c0, c1, c2 = b0, b1, b2
	}
}

func unfilterPaeth4(cur, prev []byte) {
	a0, a1, a2, a3 := int(cur[0]), int(cur[1]), int(cur[2]), int(cur[3])
	c0, c1, c2, c3 := int(prev[0]), int(prev[1]), int(prev[2]), int(prev[3])
	for j := 4; j+3 < len(cur) && j+3 < len(prev); j += 4 {
		b0, b1, b2, b3 := int(prev[j]), int(prev[j+1]), int(prev[j+2]), int(prev[j+3])
		a0 = (int(cur[j]) + paethPredict(a0, b0, c0)) & 0xff
		a1 = (int(cur[j+1]) + paethPredict(a1, b1, c1)) & 0xff
		a2 = (int(cur[j+2]) + paethPredict(a2, b2, c2)) & 0xff
		a3 = (int(cur[j+3]) + paethPredict(a3, b3, c3)) & 0xff
		cur[j], cur[j+1], cur[j+2], cur[j+3] = uint8(a0), uint8(a1), uint8(a2), uint8(a3)
		c0, c1, c2, c3 = b0, b1, b2, b3
	}
}
