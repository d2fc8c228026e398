package image

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io"
)

// Decoding a band of rows of a PNG, for a strip of a split task, without
// the whole image in memory.
//
// A PNG that is not interlaced stores its rows top to bottom in one zlib
// stream, each row filtered against the one above it. decodePNGRows
// inflates and unfilters the rows above the band one at a time, two rows in
// memory, keeps the band's rows, and stops reading below it. To turn the
// band's bytes into pixels exactly as the whole image's decoding would, it
// does not reimplement image/png's conversions: it wraps the band, now
// unfiltered, in a PNG of its own (the same IHDR but for the height, the
// same PLTE and tRNS, one stored zlib stream) and hands that to png.Decode.
// Memory is the file, the band's rows twice and the band's pixels, however
// tall the image.

// pngStreamable reports whether decodePNGRows can decode rows of data: a PNG
// that is not interlaced. (The caller also needs orientation 1, so that the
// stored rows are the upright rows.)
func pngStreamable(data []byte) bool {
	const ihdr = len(pngMagic) + 8
	return len(data) >= ihdr+13 && data[ihdr+12] == 0
}

// pngRowBytes is the size of one stored row of a PNG w pixels wide, less
// its filter byte, and the bytes per pixel the filters work with.
func pngRowBytes(data []byte, w int) (rowBytes, filterBytes int) {
	const ihdr = len(pngMagic) + 8
	depth, colorType := int(data[ihdr+8]), int(data[ihdr+9])
	channels := map[int]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colorType]
	bits := depth * max(channels, 1)
	return (bits*w + 7) / 8, (bits + 7) / 8
}

// pngRowsCost is what decodePNGRows allocates for rows [y0, y1) of a
// streamable PNG w wide: the band's stored rows and the PNG wrapping them,
// the band decoded as png.Decode returns it and converted to NRGBA, and
// the file, held whole.
func pngRowsCost(data []byte, fileSize, w, y0, y1 int) decodeCost {
	rowBytes, _ := pngRowBytes(data, w)
	rows := uint64(y1 - y0)
	cost := pngDecodeCost(data, fileSize, w, y1-y0, 1)
	cost.bytes += 2*rows*uint64(rowBytes+1) + 4*uint64(rowBytes+1) // the band, its PNG; the rows above
	cost.layout += ", rows decoded alone"
	return cost
}

// decodePNGRows returns rows [y0, y1) of a streamable PNG (see
// pngStreamable) w×h pixels, byte-identical to the same rows of decode.
// When y1 is the last row it also checks, as the whole decoding does after
// the pixels, the zlib checksum, that no pixel data is left over, and that
// the file runs to IEND.
func decodePNGRows(data []byte, w, h, y0, y1 int) (*image.NRGBA, error) {
	rowBytes, bpp := pngRowBytes(data, w)
	// The chunks that say how to read pixels are copied into the band's
	// PNG; the image data is read where it lies.
	var keep [][]byte
	idat := &idatReader{}
	for i := len(pngMagic); ; {
		if i+8 > len(data) {
			return nil, io.ErrUnexpectedEOF
		}
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		end := uint64(i) + 12 + n
		if end > uint64(len(data)) {
			return nil, io.ErrUnexpectedEOF
		}
		chunk := data[i:end]
		typ := string(chunk[4:8])
		if typ == "IDAT" {
			idat.data = data[i:]
			break
		}
		if typ == "IHDR" || typ == "PLTE" || typ == "tRNS" {
			keep = append(keep, chunk)
		}
		i = int(end)
	}
	zr, err := zlib.NewReader(idat)
	if err != nil {
		return nil, err
	}
	defer zr.Close()

	band := newPNGWriter(keep, w, y1-y0, (y1-y0)*(rowBytes+1))
	cr, pr := make([]byte, rowBytes+1), make([]byte, rowBytes+1)
	for y := range y1 {
		if _, err := io.ReadFull(zr, cr); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if err := unfilter(cr, pr, bpp); err != nil {
			return nil, err
		}
		if y >= y0 {
			cr[0] = 0 // filter: none
			band.write(cr)
		}
		pr, cr = cr, pr
	}
	if y1 == h {
		// What png.Decode checks after the last row.
		if n, err := zr.Read(cr[:1]); n != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = errors.New("too much pixel data")
			}
			return nil, err
		}
		if !complete("PNG", data) {
			return nil, io.ErrUnexpectedEOF
		}
	}
	m, err := guard("PNG", func() (image.Image, error) { return png.Decode(bytes.NewReader(band.close())) })
	if err != nil {
		return nil, err
	}
	return toNRGBA(m), nil
}

// unfilter undoes a row's PNG filter (its first byte) in place, given the
// previous row, unfiltered; as image/png does.
func unfilter(cr, pr []byte, bpp int) error {
	cdat, pdat := cr[1:], pr[1:]
	switch cr[0] {
	case 0: // none
	case 1: // sub
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += cdat[i-bpp]
		}
	case 2: // up
		for i, p := range pdat {
			cdat[i] += p
		}
	case 3: // average
		for i := 0; i < bpp && i < len(cdat); i++ {
			cdat[i] += pdat[i] / 2
		}
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
		}
	case 4: // Paeth
		for i := range cdat {
			var a, c int
			if i >= bpp {
				a, c = int(cdat[i-bpp]), int(pdat[i-bpp])
			}
			b := int(pdat[i])
			pa, pb, pc := absInt(b-c), absInt(a-c), absInt(a+b-2*c)
			switch {
			case pa <= pb && pa <= pc:
				cdat[i] += uint8(a)
			case pb <= pc:
				cdat[i] += uint8(b)
			default:
				cdat[i] += uint8(c)
			}
		}
	default:
		return errors.New("bad filter type")
	}
	return nil
}

func absInt(x int) int { return max(x, -x) }

// idatReader reads the payload of consecutive IDAT chunks, from the first
// one's start, checking each chunk's CRC; the stream ends at the first
// other chunk, as in image/png.
type idatReader struct {
	data []byte // from the current chunk's start
	off  int    // into the current chunk's payload
}

func (r *idatReader) Read(p []byte) (int, error) {
	for {
		if len(r.data) < 8 {
			return 0, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint32(r.data))
		if string(r.data[4:8]) != "IDAT" {
			return 0, io.EOF
		}
		if uint64(n)+12 > uint64(len(r.data)) {
			return 0, io.ErrUnexpectedEOF
		}
		if r.off == 0 && crc32.ChecksumIEEE(r.data[4:8+n]) != binary.BigEndian.Uint32(r.data[8+n:]) {
			return 0, errors.New("invalid checksum")
		}
		if r.off < n {
			k := copy(p, r.data[8+r.off:8+n])
			r.off += k
			return k, nil
		}
		r.data, r.off = r.data[12+n:], 0
	}
}

// pngWriter builds the band's PNG in one buffer: the kept chunks (IHDR with
// the band's height), one IDAT holding a stored (uncompressed) zlib stream,
// and IEND.
type pngWriter struct {
	buf  []byte
	idat int // where the IDAT chunk starts
	zw   *zlib.Writer
}

func newPNGWriter(keep [][]byte, w, h, rawBytes int) *pngWriter {
	size := len(pngMagic) + 12 + 12 + rawBytes + rawBytes/16384*5 + 64
	for _, c := range keep {
		size += len(c)
	}
	pw := &pngWriter{buf: make([]byte, 0, size)}
	pw.buf = append(pw.buf, pngMagic...)
	for _, c := range keep {
		if string(c[4:8]) == "IHDR" {
			c = bytes.Clone(c)
			binary.BigEndian.PutUint32(c[8:], uint32(w))
			binary.BigEndian.PutUint32(c[12:], uint32(h))
			binary.BigEndian.PutUint32(c[len(c)-4:], crc32.ChecksumIEEE(c[4:len(c)-4]))
		}
		pw.buf = append(pw.buf, c...)
	}
	pw.idat = len(pw.buf)
	pw.buf = append(pw.buf, 0, 0, 0, 0, 'I', 'D', 'A', 'T')
	pw.zw, _ = zlib.NewWriterLevel(pw, zlib.NoCompression) // the level is valid
	return pw
}

// Write appends the zlib stream's bytes to the IDAT chunk.
func (pw *pngWriter) Write(p []byte) (int, error) {
	pw.buf = append(pw.buf, p...)
	return len(p), nil
}

func (pw *pngWriter) write(row []byte) { pw.zw.Write(row) } // never fails: it writes to memory

func (pw *pngWriter) close() []byte {
	pw.zw.Close()
	n := len(pw.buf) - pw.idat - 8
	binary.BigEndian.PutUint32(pw.buf[pw.idat:], uint32(n))
	pw.buf = binary.BigEndian.AppendUint32(pw.buf, crc32.ChecksumIEEE(pw.buf[pw.idat+4:]))
	pw.buf = append(pw.buf, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82)
	return pw.buf
}
