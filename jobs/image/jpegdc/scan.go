package jpegdc

import (
	"bytes"
	"encoding/binary"
)

// pad is the zero bytes after a scan's data: more than an MCU of the
// longest codes (6 blocks of at most 27 + 63×26 bits), so the decoder
// reads past the end of corrupt data only into them, and finds out at the
// end of the MCU.
const pad = 2048

// unstuff copies a scan's entropy-coded data without its stuffed zero
// bytes and fill bytes, and notes where each restart interval begins.
func unstuff(data []byte) (scan []byte, rst []int, err error) {
	scan = make([]byte, 0, len(data)+pad)
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
			c.plane = make([]byte, 4*c.bw*c.bh)
		} else {
			c.plane = make([]byte, c.bw*c.bh)
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
						acc <<= l & 63
						if s > 0 {
							r := int32(acc >> (64 - s))
							acc <<= s
							if r < 1<<(s-1) {
								r += -1<<s + 1
							}
							c.pred += r
						}
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
// (jidctred.c's jpeg_idct_2x2) into c's plane.
func (d *decoder) idct2Block(c *component, row, col int, acc uint64, n uint, p int, b []byte, ac *acTable) (uint64, uint, int, error) {
	q := &d.quant[c.tq]
	var blk [64]int32
	blk[0] = c.pred * int32(q[0])
	acc, n, p, used, ok := readAC(ac, q, &blk, acc, n, p, b)
	if !ok {
		if err := ac.err(acc); err != nil {
			return 0, 0, 0, err
		}
		return 0, 0, 0, FormatError("AC coefficients past the block's end")
	}
	out := c.plane[2*row*2*c.bw+2*col:]
	if used == 0 { // what idct2x2 gives a flat block, as jpeg_idct_1x1 does
		v := byte(min(max((blk[0]+4)>>3+128, 0), 255))
		out[0], out[1], out[2*c.bw], out[2*c.bw+1] = v, v, v, v
	} else {
		idct2x2(&blk, out, 2*c.bw)
	}
	return acc, n, p, nil
}

// readAC reads a block's AC values, dequantised, into blk in natural
// order. used is not 0 when one of them is a coefficient idct2x2 reads.
// Like skipAC, its own function so that its variables stay in registers.
func readAC(ac *acTable, q *[64]uint16, blk *[64]int32, acc uint64, n uint, p int, b []byte) (_ uint64, _ uint, _ int, used uint64, ok bool) {
	for k := uint(1); k < 64; {
		acc, n, p = refill(b, acc, n, p)
		e := ac.val[acc>>(64-acBits)]
		if e == 0 {
			if e = ac.slowVal(acc); e == 0 {
				return acc, n, p, used, false
			}
		}
		l, s, r := uint(e)&31, uint(e>>5)&15, uint(e>>9)&15
		if s == 0 {
			acc <<= l
			n -= l
			if r != 15 {
				return acc, n, p, used, true // EOB
			}
			k += 16
			continue
		}
		k += r
		v := int32(acc << l >> (64 - s))
		acc <<= (l + s) & 63
		n -= l + s
		// The value's sign, without a branch: under 2^(s-1) is negative.
		v += (v - int32(1)<<(s-1)) >> 31 & (1 - int32(1)<<s)
		if k > 63 {
			return acc, n, p, used, false
		}
		z := natural[k]
		blk[z] = v * int32(q[k]) // idct2x2 reads only its own positions
		used |= idct2Mask >> z & 1
		k++
	}
	return acc, n, p, used, true
}

// idct2Mask has bit z set for the coefficients jpeg_idct_2x2 reads, in
// natural order, besides the DC: rows and columns 0, 1, 3, 5 and 7.
var idct2Mask = func() (m uint64) {
	odd := func(i int) bool { return i == 0 || i%2 == 1 }
	for z := 1; z < 64; z++ {
		if odd(z/8) && odd(z%8) {
			m |= 1 << z
		}
	}
	return m
}()

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

// idct2x2 is jpeg_idct_2x2 (libjpeg-turbo's jidctred.c) on a dequantised
// block in natural order, writing 2×2 samples at out and out[stride:].
func idct2x2(blk *[64]int32, out []byte, stride int) {
	var ws [2][8]int64
	for col := 0; col < 8; col++ {
		if col == 2 || col == 4 || col == 6 {
			continue
		}
		if blk[8+col] == 0 && blk[24+col] == 0 && blk[40+col] == 0 && blk[56+col] == 0 {
			dc := int64(blk[col]) << pass1Bits
			ws[0][col], ws[1][col] = dc, dc
			continue
		}
		tmp10 := int64(blk[col]) << (constBits + 2)
		tmp0 := int64(blk[56+col])*-fix0_720959822 + int64(blk[40+col])*fix0_850430095 +
			int64(blk[24+col])*-fix1_272758580 + int64(blk[8+col])*fix3_624509785
		ws[0][col] = descale(tmp10+tmp0, constBits-pass1Bits+2)
		ws[1][col] = descale(tmp10-tmp0, constBits-pass1Bits+2)
	}
	for r := range 2 {
		w := &ws[r]
		tmp10 := w[0] << (constBits + 2)
		tmp0 := w[7]*-fix0_720959822 + w[5]*fix0_850430095 + w[3]*-fix1_272758580 + w[1]*fix3_624509785
		o := out[r*stride : r*stride+2]
		o[0] = byte(min(max(descale(tmp10+tmp0, constBits+pass1Bits+3+2)+128, 0), 255))
		o[1] = byte(min(max(descale(tmp10-tmp0, constBits+pass1Bits+3+2)+128, 0), 255))
	}
}

// refill tops acc up to 56–63 bits (n | 56) with whole bytes from b[p:],
// without a branch: every read of a code and its value (at most 26 bits)
// starts with it. acc holds its n bits at the top, zeros below.
func refill(b []byte, acc uint64, n uint, p int) (uint64, uint, int) {
	acc |= binary.BigEndian.Uint64(b[p:]) >> (n & 63)
	return acc, n | 56, p + int(63-n)>>3
}

// skipAC reads past a block's AC coefficients: with the pair table (two
// symbols a lookup) while the first symbol cannot end the block (a run
// covers at most 16), then one a lookup. It is its own function so that
// its few variables stay in registers. ok is false for a code it cannot
// read (acTable.err says why) or a run past the block.
func skipAC(ac *acTable, acc uint64, n uint, p int, b []byte) (uint64, uint, int, bool) {
	k := uint(1)
	for k < 64 {
		tab := &ac.pair
		if k >= 48 {
			tab = &ac.single
		}
		acc, n, p = refill(b, acc, n, p)
		e := tab[acc>>(64-acBits)]
		if e == 0 {
			if e = ac.slowEntry(acc); e == 0 {
				return acc, n, p, false
			}
		}
		skip := uint(e) & 31
		acc <<= skip
		n -= skip
		k += uint(e >> 5 & 63) // 0 for an EOB
		if e&acEOB != 0 {
			return acc, n, p, k <= 64
		}
	}
	return acc, n, p, k == 64
}
