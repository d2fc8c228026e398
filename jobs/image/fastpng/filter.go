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
		// paethSelect by hand: the compiler will not inline it here.
		ia, ib, ic := int(l[i]), int(b), int(ul[i])
		da, db := ib-ic, ia-ic
		dc := absInt(da + db)
		da, db = absInt(da), absInt(db)
		pred := ic
		if db <= dc {
			pred = ib
		}
		if da <= min(db, dc) {
			pred = ia
		}
		r := x - uint8(pred)
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

// paethSelect is paeth on ints, written so the compiler makes conditional
// moves of it: the noise of photographs makes a branch unpredictable.
func paethSelect(a, b, c int) uint8 {
	pa := b - c
	pb := a - c
	pc := absInt(pa + pb)
	pa = absInt(pa)
	pb = absInt(pb)
	p := c
	if pb <= pc {
		p = b
	}
	if pa <= min(pb, pc) {
		p = a
	}
	return uint8(p)
}

// paeth is the Paeth predictor of the PNG specification: whichever of
// left (a), above (b) and upper left (c) is nearest a+b-c.
func paeth(a, b, c uint8) uint8 {
	pc := int(c)
	pa := int(b) - pc
	pb := int(a) - pc
	pc = absInt(pa + pb)
	pa = absInt(pa)
	pb = absInt(pb)
	if pa <= pb && pa <= pc {
		return a
	} else if pb <= pc {
		return b
	}
	return c
}

func absInt(x int) int {
	m := x >> 63
	return (x ^ m) - m
}

// unfilterPaeth undoes the Paeth filter on cur in place, given the
// decoded previous row. It walks the row byte by byte, so the channels of
// a pixel are independent work for the processor, and selects with
// conditional moves, as paethSelect does.
func unfilterPaeth(cur, prev []byte, bpp int) {
	prev = prev[:len(cur)]
	// Left of the first pixel, a and c are 0, so the predictor is b.
	for i := 0; i < bpp && i < len(cur); i++ {
		cur[i] += prev[i]
	}
	for j := bpp; j < len(cur); j++ {
		a, b, c := int(cur[j-bpp]), int(prev[j]), int(prev[j-bpp])
		pa, pb := b-c, a-c
		pc := absInt(pa + pb)
		pa, pb = absInt(pa), absInt(pb)
		p := c
		if pb <= pc {
			p = b
		}
		if pa <= min(pb, pc) {
			p = a
		}
		cur[j] += uint8(p)
	}
}
