package image

import (
	"bytes"
	"encoding/binary"
	"image"
)

// jpegInfo is what the decoder needs from a JPEG's header segments.
type jpegInfo struct {
	exif       []byte // TIFF data of the first APP1 Exif segment
	adobe      bool   // an Adobe APP14 segment image/jpeg will accept
	components int    // from the frame header (SOFn)
	// What decoding will allocate depends on these, also from the frame
	// header, and on whether image/jpeg will convert from RGB (it does
	// unless a JFIF APP0 segment says YCbCr).
	progressive bool // SOF2 (or another progressive SOF)
	comps       []jpegComponent
	jfif        bool // a JFIF APP0 segment
	rgbIDs      bool // component identifiers 'R', 'G', 'B'
}

// jpegComponent is one component's sampling factors.
type jpegComponent struct{ h, v int }

// scanJPEG walks the marker segments before the first scan. It reads only
// within data and stops quietly at anything it does not understand; the
// real decoder reports real errors.
func scanJPEG(data []byte) jpegInfo {
	var info jpegInfo
	i := 2 // after SOI
	for i+4 <= len(data) {
		if data[i] != 0xff {
			break
		}
		marker := data[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0x01 || marker == 0xd8 || 0xd0 <= marker && marker <= 0xd7: // no length
			i += 2
			continue
		case marker == 0xda || marker == 0xd9: // SOS, EOI: the header is over
			return info
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 || i+2+n > len(data) {
			break
		}
		payload := data[i+4 : i+2+n]
		switch {
		case marker == 0xe1 && info.exif == nil && bytes.HasPrefix(payload, []byte("Exif\x00\x00")):
			info.exif = payload[6:]
		case marker == 0xee && len(payload) >= 12 && bytes.HasPrefix(payload, []byte("Adobe")):
			info.adobe = true
		case marker == 0xe0 && bytes.HasPrefix(payload, []byte("JFIF\x00")):
			info.jfif = true
		case isSOF(marker) && len(payload) >= 6 && info.comps == nil:
			info.components = int(payload[5])
			// SOF2, SOF6, SOF10 and SOF14 are progressive.
			info.progressive = marker&0x3 == 2
			info.comps = []jpegComponent{}
			for c := payload[6:]; len(c) >= 3 && len(info.comps) < min(info.components, 4); c = c[3:] {
				info.comps = append(info.comps, jpegComponent{h: int(c[1] >> 4), v: int(c[1] & 0xf)})
			}
			if p := payload[6:]; info.components == 3 && len(p) >= 9 {
				info.rgbIDs = p[0] == 'R' && p[3] == 'G' && p[6] == 'B'
			}
		}
		i += 2 + n
	}
	return info
}

// isSOF reports whether marker starts a frame (SOF0–SOF15 less DHT, JPG, DAC).
func isSOF(marker byte) bool {
	return 0xc0 <= marker && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc
}

// pngExif returns the TIFF data of a PNG's eXIf chunk (PNG 1.5 extension),
// or nil. Only chunks before the image data count, as the extension says.
func pngExif(data []byte) []byte {
	return pngChunk(data, "eXIf")
}

// exifOrientation returns the Orientation tag (0x0112) of IFD0 in TIFF data
// of either byte order: 1 (upright) to 8. Anything missing, malformed or out
// of range counts as 1.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	size := uint64(len(tiff))
	ifd := uint64(order.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > size {
		return 1
	}
	count := uint64(order.Uint16(tiff[ifd:]))
	for i := range count {
		e := ifd + 2 + 12*i
		if e+12 > size {
			return 1
		}
		if order.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		var v uint64
		switch order.Uint16(tiff[e+2:]) { // type
		case 3: // SHORT, left-justified in the value field
			v = uint64(order.Uint16(tiff[e+8:]))
		case 4: // LONG, which a few writers use
			v = uint64(order.Uint32(tiff[e+8:]))
		}
		if 1 <= v && v <= 8 {
			return int(v)
		}
		return 1
	}
	return 1
}

// orient returns img turned upright for an EXIF orientation:
//
//	1 as stored     2 mirrored left-right   3 rotated 180°   4 mirrored top-bottom
//	5 transposed    6 rotated 90° clockwise 7 transversed    8 rotated 90° anticlockwise
//
// (for 5–8 the result is img's height wide). img must have origin (0, 0)
// and a packed stride, as toNRGBA returns.
func orient(img *image.NRGBA, orientation int) *image.NRGBA {
	if orientation < 2 || orientation > 8 {
		return img
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	ow, oh := w, h
	if orientation >= 5 {
		ow, oh = h, w
	}
	// Walk the output in order; (start, stepX, stepY) say where in the
	// source the first output pixel is and how far to move, in bytes, for
	// one output pixel right and one output row down.
	last, row := 4*(w-1), img.Stride*(h-1)
	var start, stepX, stepY int
	switch orientation {
	case 2:
		start, stepX, stepY = last, -4, img.Stride
	case 3:
		start, stepX, stepY = row+last, -4, -img.Stride
	case 4:
		start, stepX, stepY = row, 4, -img.Stride
	case 5:
		start, stepX, stepY = 0, img.Stride, 4
	case 6:
		start, stepX, stepY = row, -img.Stride, 4
	case 7:
		start, stepX, stepY = row+last, -img.Stride, -4
	case 8:
		start, stepX, stepY = last, img.Stride, -4
	}
	dst := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := range oh {
		d := pixRow(dst, y)
		s := start + y*stepY
		for x := 0; x < len(d); x += 4 {
			copy(d[x:x+4], img.Pix[s:s+4])
			s += stepX
		}
	}
	return dst
}
