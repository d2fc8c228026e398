package jpegdc

import "encoding/binary"

// header reads the markers up to the start of the scan and returns the
// offset of its entropy-coded data.
func (d *decoder) header() (int, error) {
	data := d.data
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return 0, FormatError("missing SOI marker")
	}
	p := 2
	for {
		if p+2 > len(data) {
			return 0, ErrTruncated
		}
		if data[p] != 0xFF {
			return 0, FormatError("expected a marker")
		}
		m := data[p+1]
		if m == 0xFF { // fill byte
			p++
			continue
		}
		p += 2
		switch {
		case m == 0xD9:
			return 0, FormatError("EOI before the image")
		case m == 0x01 || m >= 0xD0 && m <= 0xD8:
			return 0, FormatError("unexpected marker before the scan")
		}
		if p+2 > len(data) {
			return 0, ErrTruncated
		}
		n := int(binary.BigEndian.Uint16(data[p:]))
		if n < 2 {
			return 0, FormatError("segment length under 2")
		}
		if p+n > len(data) {
			return 0, ErrTruncated
		}
		seg := data[p+2 : p+n]
		var err error
		switch m {
		case 0xC0, 0xC1: // baseline, extended sequential Huffman
			err = d.sof(seg)
		case 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
			return 0, ErrUnsupported // progressive, lossless, hierarchical, arithmetic
		case 0xC4:
			err = d.dht(seg)
		case 0xDB:
			err = d.dqt(seg)
		case 0xDD:
			if len(seg) != 2 {
				return 0, FormatError("DRI segment length")
			}
			d.ri = int(binary.BigEndian.Uint16(seg))
		case 0xEE: // APP14: Adobe's colour transform
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.transf = int(seg[11])
			}
		case 0xDA:
			if err := d.sos(seg); err != nil {
				return 0, err
			}
			return p + n, nil
		}
		if err != nil {
			return 0, err
		}
		p += n
	}
}

func (d *decoder) sof(seg []byte) error {
	if d.comps != nil {
		return ErrUnsupported // several frames
	}
	if len(seg) < 6 {
		return FormatError("SOF segment too short")
	}
	if seg[0] != 8 {
		return ErrUnsupported // 12-bit samples
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if d.height == 0 || d.width == 0 {
		return ErrUnsupported // height from a DNL marker
	}
	if nc != 1 && nc != 3 {
		return ErrUnsupported // CMYK, or two components
	}
	if len(seg) != 6+3*nc {
		return FormatError("SOF segment length")
	}
	d.comps = make([]component, nc)
	for i := range d.comps {
		c := &d.comps[i]
		b := seg[6+3*i:]
		c.id, c.h, c.v, c.tq = b[0], int(b[1]>>4), int(b[1]&15), int(b[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return FormatError("bad component parameters")
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return FormatError("repeated component id")
			}
		}
	}
	if nc == 1 {
		d.comps[0].h, d.comps[0].v = 1, 1 // one component: one block per MCU
	} else {
		// Luma at 1 or 2 per chroma sample, chroma alike: the layouts
		// encoders write (4:4:4, 4:2:2, 4:2:0, 4:4:0).
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		if y.h > 2 || y.v > 2 || cb.h != 1 || cb.v != 1 || cr.h != 1 || cr.v != 1 {
			return ErrUnsupported // rarer layouts
		}
		// At 1/8, libjpeg gives 4:2:0 chroma its 2×2 IDCT rather than
		// upsampling it (jdmaster.c: only when both directions are
		// halved); 4:2:2 and 4:4:0 chroma is upsampled.
		if y.h == 2 && y.v == 2 {
			d.comps[1].idct2, d.comps[2].idct2 = true, true
		}
		// R, G, B component ids without JFIF mean RGB to libjpeg.
		if y.id == 'R' && cb.id == 'G' && cr.id == 'B' {
			return ErrUnsupported
		}
	}
	d.hmax, d.vmax = d.comps[0].h, d.comps[0].v
	return nil
}

func (d *decoder) dqt(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return FormatError("bad DQT table")
		}
		n := 64 << pq
		if len(seg) < 1+n {
			return FormatError("DQT segment too short")
		}
		for i := range 64 {
			if pq == 0 {
				d.quant[tq][i] = uint16(seg[1+i])
			} else {
				d.quant[tq][i] = binary.BigEndian.Uint16(seg[1+2*i:])
			}
		}
		d.hasQ[tq] = true
		seg = seg[1+n:]
	}
	return nil
}

func (d *decoder) dht(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return FormatError("DHT segment too short")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return FormatError("bad DHT table")
		}
		var counts [17]int
		total := 0
		for l := 1; l <= 16; l++ {
			counts[l] = int(seg[l])
			total += counts[l]
		}
		if total > 256 || len(seg) < 17+total {
			return FormatError("DHT segment too short")
		}
		var h huffman
		if err := h.build(&counts, seg[17:17+total]); err != nil {
			return err
		}
		if tc == 0 {
			d.dc[th] = newDCTable(&h)
		} else {
			d.ac[th] = cachedACTable(seg[1:17+total], &h)
		}
		seg = seg[17+total:]
	}
	return nil
}

func (d *decoder) sos(seg []byte) error {
	if d.comps == nil {
		return FormatError("SOS before SOF")
	}
	if len(seg) < 1 {
		return FormatError("SOS segment too short")
	}
	ns := int(seg[0])
	if len(seg) != 4+2*ns {
		return FormatError("SOS segment length")
	}
	if ns != len(d.comps) {
		return ErrUnsupported // components in separate scans
	}
	for i := range ns {
		cs, t := seg[1+2*i], seg[2+2*i]
		c := &d.comps[i]
		if c.id != cs {
			return ErrUnsupported // scan order differs from the frame's
		}
		c.td, c.ta = int(t>>4), int(t&15)
		if c.td > 3 || c.ta > 3 || d.dc[c.td] == nil || d.ac[c.ta] == nil {
			return FormatError("scan uses an undefined Huffman table")
		}
		if !d.hasQ[c.tq] {
			return FormatError("component uses an undefined quantisation table")
		}
	}
	ss, se, a := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || a != 0 {
		return FormatError("spectral selection in a sequential scan")
	}
	if len(d.comps) == 3 && d.transf == 0 {
		return ErrUnsupported // Adobe: RGB, not YCbCr
	}
	return nil
}
