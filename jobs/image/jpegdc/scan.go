package jpegdc

import (
	"bytes"
	"encoding/binary"

	"github.com/ppool/ppool/internal/bufpool"
)

// bufs are the scans' buffers, reused: a worker decodes file after file
// of about one size.
var bufs bufpool.Pool

// planes are the components' planes, reused in the same way: they are
// not cleared, as the scan writes every sample of them (every block of
// every MCU, the edges' padding blocks too) before they are read.
var planes bufpool.Pool

// pad is the zero bytes after a scan's data: more than an MCU of the
// longest codes (6 blocks of at most 27 + 63×26 bits), so the decoder
// reads past the end of corrupt data only into them, and finds out at the
// end of the MCU.
const pad = 2048

// unstuff copies a scan's entropy-coded data without its stuffed zero
// bytes and fill bytes, and notes where each restart interval begins.
func unstuff(data []byte) (scan []byte, rst []int, err error) {
	scan = bufs.Get(len(data) + pad)
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], 0xFF)
		if j < 0 || i+j+1 >= len(data) {
			return nil, nil, ErrTruncated
		}
		scan = append(scan, data[i:i+j]...)
		i += j
		switch m := data[i+1]; {
		case m == 0x00:
			scan = append(scan, 0xFF)
			i += 2
		case m == 0xFF:
			i++
		case m >= 0xD0 && m <= 0xD7:
			if m != 0xD0+byte(len(rst)%8) {
				return nil, nil, FormatError("restart markers out of order")
			}
			rst = append(rst, len(scan))
			i += 2
		default:
			return scan, rst, nil
		}
	}
}

// decodeScan decodes every block's DC value into its component's plane.
// The bits are read MSB first from acc, which holds n of them, refilled 32
// at a time from b[p:].
func (d *decoder) decodeScan(data []byte, rst []int) error {
	nbits := len(data) * 8
	b := append(data, make([]byte, pad)...)
	comps := d.comps
	mcux := (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	mcuy := (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	// Every block takes 2 bits at least (a DC code and an EOB): data
	// too short for its blocks is refused before the planes are made, so
	// a small file declaring a huge image costs nothing.
	blocks := 0
	for _, c := range comps {
		blocks += c.h * c.v
	}
	if uint64(mcux)*uint64(mcuy)*uint64(blocks) > uint64(nbits)/2 {
		return ErrTruncated
	}
	for i := range comps {
		c := &comps[i]
		c.bw, c.bh = mcux*c.h, mcuy*c.v
		if c.idct2 {
			c.plane = planes.Get(4 * c.bw * c.bh)[:4*c.bw*c.bh]
			if d.idct2[c.tq] == nil {
				d.idct2[c.tq] = newIDCT2Table(&d.quant[c.tq])
			}
		} else {
			c.plane = planes.Get(c.bw * c.bh)[:c.bw*c.bh]
		}
		c.pred = 0
	}
	var acc uint64
	var n uint
	p := 0
	mcu, next := 0, 0
	for my := range mcuy {
		for mx := range mcux {
			if d.ri > 0 && mcu > 0 && mcu%d.ri == 0 {
				if next >= len(rst) || p*8-int(n) > rst[next]*8 {
					return FormatError("restart interval overruns its data")
				}
				p, acc, n = rst[next], 0, 0
				next++
				for i := range comps {
					comps[i].pred = 0
				}
			}
			mcu++
			for ci := range comps {
				c := &comps[ci]
				dc, ac := d.dc[c.td], d.ac[c.ta]
				q := int32(d.quant[c.tq][0])
				for by := range c.v {
					row := c.plane[(my*c.v+by)*c.bw+mx*c.h:]
					for bx := range c.h {
						acc, n, p = refill(b, acc, n, p)
						var l, s uint
						if e := dc.look[acc>>(64-dcBits)]; e != 0 {
							l, s = uint(e&31), uint(e>>8)
						} else {
							var err error
							if l, s, err = dc.slow(acc); err != nil {
								return err
							}
						}
						// The difference, without a branch: its s bits (none
						// when s is 0: Go's shift by 64 gives 0), negative
						// under 2^(s-1).
						acc <<= l & 63
						r := int32(acc >> (64 - s))
						acc <<= s
						r += (r - int32(1)<<(s-1)) >> 31 & (1 - int32(1)<<s)
						c.pred += r
						n -= l + s
						if c.idct2 {
							var err error
							if acc, n, p, err = d.idct2Block(c, my*c.v+by, mx*c.h+bx, acc, n, p, b, ac); err != nil {
								return err
							}
							continue
						}
						// libjpeg's 1×1 IDCT: the dequantised DC, descaled by 8.
						v := (c.pred*q+4)>>3 + 128
						row[bx] = byte(min(max(v, 0), 255))
						var ok bool
						if acc, n, p, ok = skipAC(ac, acc, n, p, b); !ok {
							if err := ac.err(acc); err != nil {
								return err
							}
							return FormatError("AC coefficients past the block's end")
						}
					}
				}
			}
			// Checked at every MCU: pad holds more than one MCU can read.
			if p*8-int(n) > nbits {
				return ErrTruncated
			}
		}
	}
	return nil
}

// natural is the position in a block of the kth coefficient in zigzag
// order, with 16 more entries so a corrupt run lands in range.
var natural = [64 + 16]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
}

// idct2Block reads the AC values of the block at (row, col) of c's
// blocks, whose DC is c.pred, and writes libjpeg's 2×2 IDCT of it
// (jidctred.c's jpeg_idct_2x2) into c's plane. The IDCT's first pass is
// linear in the coefficients up to its rounding, so readAC adds each
// coefficient it reads straight into that pass's sums, and the block is
// never laid out.
func (d *decoder) idct2Block(c *component, row, col int, acc uint64, n uint, p int, b []byte, ac *acTable) (uint64, uint, int, error) {
	t := d.idct2[c.tq]
	var sums idct2Sums
	sums[0] = int64(c.pred) * t.dc
	acc, n, p, ok := readAC(ac, t, &sums, acc, n, p, b)
	if !ok {
		if err := ac.err(acc); err != nil {
			return 0, 0, 0, err
		}
		return 0, 0, 0, FormatError("AC coefficients past the block's end")
	}
	sums.idct(c.plane[2*row*2*c.bw+2*col:], 2*c.bw)
	return acc, n, p, nil
}

// idct2Sums are jpeg_idct_2x2's first-pass sums for the five columns it
// reads (0, 1, 3, 5, 7): the dequantised row-0 coefficient of each
// (0–4), the weighted sum of its rows 1, 3, 5 and 7 (5–9), and one slot
// (10) where the coefficients it never reads go.
type idct2Sums [11]int64

// An idct2Table says, for one quantisation table, where each coefficient
// in zigzag order goes among idct2Sums and what it is multiplied by there:
// its quantiser, times its row's weight for rows 1, 3, 5 and 7.
type idct2Table struct {
	dc  int64
	sum [64]uint8
	mul [64]int64
}

func newIDCT2Table(q *[64]uint16) *idct2Table {
	t := &idct2Table{dc: int64(q[0])}
	slot := [8]int{0, 1, -1, 2, -1, 3, -1, 4}
	weight := [8]int64{1, fix3_624509785, 0, -fix1_272758580, 0, fix0_850430095, 0, -fix0_720959822}
	for k := range 64 {
		z := int(natural[k])
		r, c := z/8, z%8
		t.sum[k] = 10
		switch {
		case slot[c] < 0 || weight[r] == 0:
		case r == 0:
			t.sum[k], t.mul[k] = uint8(slot[c]), int64(q[k])
		default:
			t.sum[k], t.mul[k] = uint8(5+slot[c]), int64(q[k])*weight[r]
		}
	}
	return t
}

// readAC reads a block's AC values and adds each, as t says, to s. Like
// skipAC, its own function so that its variables stay in registers.
func readAC(ac *acTable, t *idct2Table, s *idct2Sums, acc uint64, n uint, p int, b []byte) (_ uint64, _ uint, _ int, ok bool) {
	for k := uint(1); k < 64; {
		acc, n, p = refill(b, acc, n, p)
		e := ac.val[acc>>(64-acBits)]
		if e == 0 {
			if e = ac.slowVal(acc); e == 0 {
				return acc, n, p, false
			}
		}
		// skip takes the code and the value: the value is the low sz
		// bits of the skip's, with one shift of acc after the lookup.
		skip, sz, r := uint(e)&31, uint(e>>5)&15, uint(e>>9)&15
		if sz == 0 {
			acc <<= skip & 63
			n -= skip
			if r != 15 {
				return acc, n, p, true // EOB
			}
			k += 16
			continue
		}
		k += r
		v := int32(acc>>((64-skip)&63)) & (int32(1)<<sz - 1)
		acc <<= skip & 63
		n -= skip
		// The value's sign, without a branch: under 2^(sz-1) is negative.
		v += (v - int32(1)<<(sz-1)) >> 31 & (1 - int32(1)<<sz)
		if k > 63 {
			return acc, n, p, false
		}
		s[t.sum[k]] += int64(v) * t.mul[k]
		k++
	}
	return acc, n, p, true
}

// libjpeg's constants for jpeg_idct_2x2, 13-bit fixed point.
const (
	fix0_720959822 = 5906
	fix0_850430095 = 6967
	fix1_272758580 = 10426
	fix3_624509785 = 29692
	constBits      = 13
	pass1Bits      = 2
)

func descale(x int64, n uint) int64 { return (x + 1<<(n-1)) >> n }

// idct finishes jpeg_idct_2x2 (libjpeg-turbo's jidctred.c) from the first
// pass's sums, writing 2×2 samples at out and out[stride:]. A column
// whose odd rows are all zero gives what libjpeg's shortcut for it gives:
// descale(x<<15, 13) is x<<2 exactly.
func (s *idct2Sums) idct(out []byte, stride int) {
	// The first pass, column by column into the two rows, in variables
	// rather than a workspace array so that they stay in registers.
	const shift1 = constBits - pass1Bits + 2
	col := func(j int) (top, bottom int64) {
		tmp10 := s[j] << (constBits + 2)
		return descale(tmp10+s[5+j], shift1), descale(tmp10-s[5+j], shift1)
	}
	a0, b0 := col(0)
	a1, b1 := col(1)
	a2, b2 := col(2)
	a3, b3 := col(3)
	a4, b4 := col(4)
	row := func(o []byte, w0, w1, w2, w3, w4 int64) {
		tmp10 := w0 << (constBits + 2)
		tmp0 := w4*-fix0_720959822 + w3*fix0_850430095 + w2*-fix1_272758580 + w1*fix3_624509785
		o = o[:2]
		o[0] = byte(min(max(descale(tmp10+tmp0, constBits+pass1Bits+3+2)+128, 0), 255))
		o[1] = byte(min(max(descale(tmp10-tmp0, constBits+pass1Bits+3+2)+128, 0), 255))
	}
	row(out, a0, a1, a2, a3, a4)
	row(out[stride:], b0, b1, b2, b3, b4)
}

// refill tops acc up to 56–63 bits (n | 56) with whole bytes from b[p:],
// without a branch: every read of a code and its value (at most 26 bits)
// starts with it. acc holds its n bits at the top, zeros below.
func refill(b []byte, acc uint64, n uint, p int) (uint64, uint, int) {
	acc |= binary.BigEndian.Uint64(b[p:]) >> (n & 63)
	return acc, n | 56, p + int(63-n)>>3
}

// skipAC reads past a block's AC coefficients: with the multi table (up
// to four symbols a lookup) while the symbols before an entry's last
// cannot end the block (they cover at most 16), then one a lookup. Two
// lookups follow each refill: an entry skips at most 26 bits (a 16-bit
// code and a 10-bit value, or a multi entry's codes, all inside the
// index, and one value), and refill leaves at least 56. It is its own
// function so that its few variables stay in registers. ok is false for
// a code it cannot read (acTable.err says why) or a run past the block.
func skipAC(ac *acTable, acc uint64, n uint, p int, b []byte) (uint64, uint, int, bool) {
	k := uint(1)
	for {
		acc, n, p = refill(b, acc, n, p)
		for range 2 {
			tab := &ac.multi
			if k >= 48 {
				tab = &ac.single
			}
			e := tab[acc>>(64-acBits)]
			if e == 0 {
				if e = ac.slowEntry(acc); e == 0 {
					return acc, n, p, false
				}
			}
			// The shift takes the skip from the entry's low six bits
			// itself, with no mask before it (x86 masks a shift count).
			acc <<= uint(e) & 63
			n -= uint(e) & 63
			k += uint(e >> acCountShift & 63) // 0 for an EOB
			if e&acEOB != 0 {
				return acc, n, p, k <= 64
			}
			if k >= 64 {
				return acc, n, p, k == 64
			}
		}
	}
}
