package image

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"math/bits"
	"runtime/debug"

	"github.com/ppool/ppool/jobs/kinds"
)

// MaxImageMemory bounds the memory one image task may ask for: what
// decoding its input allocates (the decoder's own image, its scratch, the
// working NRGBA copy and the upright copy) plus what the task's operation
// allocates (its output). It is checked against the file's header, before
// any pixel memory is allocated, because the decoders allocate the whole
// image at once: a 2 MB 16-bit PNG claims gigabytes in one call, faster
// than a memory limit that samples the worker can see it.
//
// In a worker whose Go memory limit is lower (GOMEMLIMIT, which ppool sets
// from the pool's MaxWorkerMemory), that limit is the bound instead.
const MaxImageMemory = 2 << 30

// A budget is what one decode may cost.
type budget struct {
	maxPixels int    // width × height
	maxMemory uint64 // bytes: decoding plus the operation
	// operation names what the task does with the image ("blur"), and
	// operationBytes says what it allocates for an upright image w×h, or
	// refuses that size; nil for Load alone.
	operation      string
	operationBytes func(w, h int) (uint64, error)
	// rows, if set, says which rows [y0, y1) of the upright image, h rows
	// tall, the task needs: only those are returned, and only those are
	// decoded where the format allows (see decodePNGRows).
	rows func(h int) (y0, y1 int)
	// decodeAtLeast, if set, says how small an upright image w×h may be
	// decoded for the task: a JPEG is then decoded at the smallest DCT
	// scale (1/2, 1/4, 1/8) that keeps it at least that size, where
	// libjpeg-turbo is available. full, if set, is told the image's
	// upright size before any scaling.
	decodeAtLeast func(w, h int) (minW, minH int)
	full          *image.Point
	// inputHash, if set, is given the hash of the file's bytes as read,
	// for the jobs journal (see readImageFile).
	inputHash *string
}

// loadBudget is the budget of a Load in this process.
func loadBudget() budget {
	return budget{maxPixels: MaxPixels, maxMemory: memoryLimit()}
}

// taskBudget is loadBudget within the task's job's memory: limit, less what
// the worker itself takes beside the image (a quarter of the limit, at most
// 64 MiB): over the limit the worker would be killed, and refusing from the
// header says why where a kill cannot.
func taskBudget(t *kinds.Task) budget {
	b := loadBudget()
	b.maxMemory = taskMemory(t, b.maxMemory)
	return b
}

// taskMemory is limit, lowered to what t's memory: leaves for an image.
func taskMemory(t *kinds.Task, limit uint64) uint64 {
	if t == nil || t.Memory == 0 {
		return limit
	}
	return min(limit, t.Memory-min(t.Memory/4, 64<<20))
}

// memoryLimit is MaxImageMemory, or the process's Go memory limit when that
// is lower. debug.SetMemoryLimit with a negative value only reads it.
func memoryLimit() uint64 {
	limit := uint64(MaxImageMemory)
	if soft := debug.SetMemoryLimit(-1); soft > 0 && soft < math.MaxInt64 {
		limit = min(limit, uint64(soft))
	}
	return limit
}

// decodeCost is what decoding one image allocates, as found in its header.
type decodeCost struct {
	layout string // how the file stores pixels, for messages: "16-bit RGBA", "progressive JPEG, 3 components"
	bytes  uint64 // the sum of everything decoding allocates (an upper bound of its peak)
}

// pngDecodeCost is what image/png and the conversion to NRGBA allocate for a
// w×h PNG whose IHDR and chunks before IDAT are in data (DecodeConfig has
// accepted it). The decoder returns Gray, Gray16, Paletted, RGBA, RGBA64,
// NRGBA or NRGBA64 by colour type, bit depth and tRNS; an interlaced file
// also allocates each pass as its own image before merging it. The file,
// fileSize bytes, is held whole while it is decoded (and the inflater
// allocates tables for each compressed block: less than the file again).
func pngDecodeCost(data []byte, fileSize, w, h, orientation int) decodeCost {
	const ihdr = len(pngMagic) + 8 // IHDR's data: width, height, depth, colour type, ...
	depth, colorType, interlaced := 8, 6, false
	if len(data) >= ihdr+13 {
		depth, colorType, interlaced = int(data[ihdr+8]), int(data[ihdr+9]), data[ihdr+12] != 0
	}
	trns := pngChunk(data, "tRNS") != nil
	layout := fmt.Sprintf("%d-bit %s", depth, pngColorTypes[colorType])
	if trns && colorType != 3 {
		layout += " with tRNS"
	}
	if interlaced {
		layout += ", interlaced"
	}
	bpp, nrgba := 8, false // bytes per pixel of what fastpng returns; is it used as NRGBA
	switch {
	case colorType == 3:
		bpp = 1
	case depth == 16 && colorType == 0 && !trns:
		bpp = 2
	case depth == 16:
		bpp = 8
	case colorType == 0 && !trns:
		bpp = 1
	default:
		// RGB without tRNS decodes opaque, and toNRGBA takes it as it is.
		bpp, nrgba = 4, true
	}
	px := uint64(w) * uint64(h)
	total := px * uint64(bpp)
	if interlaced {
		total += px * uint64(bpp) // the seven passes together
	}
	total += 2 * (uint64(w)*8 + 1) // the current and previous row
	total += 2 * uint64(fileSize)
	if !nrgba {
		total += 4 * px // toNRGBA's copy
	}
	if orientation >= 2 {
		total += 4 * px // orient's copy
	}
	return decodeCost{layout: layout, bytes: total}
}

var pngColorTypes = map[int]string{0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}

// jpegDecodeCost is what image/jpeg and the conversion to NRGBA allocate for
// a w×h JPEG whose frame header scanJPEG read into info. image/jpeg
// allocates its planes rounded up to whole MCUs, keeps the DCT
// coefficients of a progressive file (64 int32 per 8×8 block of each
// component: 4 bytes per sample, more than the pixels) until the end, and
// converts CMYK and RGB files into a new 4-byte-per-pixel image. The file,
// fileSize bytes, is held whole while it is decoded.
func jpegDecodeCost(info jpegInfo, fileSize, w, h, orientation int) decodeCost {
	n := len(info.comps)
	layout := fmt.Sprintf("JPEG, %d components", n)
	if info.progressive {
		layout = "progressive " + layout
	}
	px := uint64(w) * uint64(h)
	sampling := func(i int) (int, int) {
		if n == 1 { // image/jpeg ignores a lone component's factors
			return 1, 1
		}
		c := info.comps[i]
		return max(1, min(4, c.h)), max(1, min(4, c.v))
	}
	var total uint64
	if n > 0 {
		h0, v0 := sampling(0)
		mcusX := uint64((w + 8*h0 - 1) / (8 * h0))
		mcusY := uint64((h + 8*v0 - 1) / (8 * v0))
		planeW, planeH := 8*uint64(h0)*mcusX, 8*uint64(v0)*mcusY
		total = planeW * planeH // luma, or grey
		if n >= 3 {
			h1, v1 := sampling(1)
			hr, vr := uint64(max(1, h0/h1)), uint64(max(1, v0/v1))
			total += 2 * ((planeW + hr - 1) / hr) * ((planeH + vr - 1) / vr) // Cb, Cr
		}
		if n == 4 {
			h3, v3 := sampling(3)
			total += 64 * mcusX * mcusY * uint64(h3*v3) // black
		}
		if info.progressive {
			for i := range n {
				hi, vi := sampling(i)
				total += 64 * 4 * mcusX * mcusY * uint64(hi*vi)
			}
		}
		if n == 4 || n == 3 && !info.jfif && (info.adobe || info.rgbIDs) {
			total += 4 * px // CMYK or RGB image
		}
	}
	total += uint64(fileSize)
	if n == 4 && !info.adobe {
		total += uint64(fileSize) // withAdobeMarker's copy
	}
	total += 4 * px // toNRGBA's copy
	if orientation >= 2 {
		total += 4 * px // orient's copy
	}
	return decodeCost{layout: layout, bytes: total}
}

// pngChunk returns the data of the first chunk of type typ before the image
// data, or nil.
func pngChunk(data []byte, typ string) []byte {
	for i := len(pngMagic); i+8 <= len(data); {
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		t := string(data[i+4 : i+8])
		end := uint64(i) + 12 + n // length, type, data, CRC
		if t == "IDAT" || end > uint64(len(data)) {
			return nil
		}
		if t == typ {
			return data[i+8 : i+8+int(n)]
		}
		i = int(end)
	}
	return nil
}

// pngReachesIDAT reports whether data holds every chunk before the first
// IDAT.
func pngReachesIDAT(data []byte) bool {
	for i := len(pngMagic); i+8 <= len(data); {
		if string(data[i+4:i+8]) == "IDAT" {
			return true
		}
		i += 12 + int(binary.BigEndian.Uint32(data[i:]))
		if i < 0 { // a length past 2^31 on a 32-bit int
			return false
		}
	}
	return false
}

// checkMemory refuses an image whose decoding plus the operation would
// need more than the budget allows. w and h are the upright size.
func checkMemory(format string, w, h int, cost decodeCost, b budget) error {
	var op uint64
	if b.operationBytes != nil {
		var err error
		if op, err = b.operationBytes(w, h); err != nil {
			return err
		}
	}
	total, carry := bits.Add64(cost.bytes, op, 0)
	if carry == 0 && total <= b.maxMemory {
		return nil
	}
	need := "decoding it needs " + formatBytes(cost.bytes)
	if op > 0 {
		need += fmt.Sprintf(" and the %s %s more", b.operation, formatBytes(op))
	}
	return &decodeError{kind: ErrTooLarge, msg: fmt.Sprintf(
		"%s image is %d×%d pixels (%s): %s, over the limit of %s",
		format, w, h, cost.layout, need, formatBytes(b.maxMemory))}
}

// formatBytes writes a size in the largest binary unit it reaches, e.g.
// "3.0 GiB".
func formatBytes(n uint64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n), 0
	for v >= 1024 && u+1 < len(units) {
		v, u = v/1024, u+1
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// filterBudget is the budget of a filter task: the whole image, or with
// part set, one strip of it, which loads only the strip's input rows (see
// budget.rows) and is returned once the header has given the image's
// height. The filter allocates its output and its scratch and, for a strip
// cut from a whole decoded image, a copy of the strip's input rows.
func filterBudget(t *kinds.Task, name string, f Filter, part *kinds.Part) (budget, *Strip) {
	b := taskBudget(t)
	b.operation = name
	strip := new(Strip)
	if part != nil {
		b.rows = func(h int) (int, int) {
			*strip = Strip{Y0: part.Row0, Y1: part.Row1, Height: h}
			return strip.Input(f.Halo())
		}
	}
	b.operationBytes = func(w, h int) (uint64, error) {
		if part == nil {
			return 4*uint64(w)*uint64(h) + filterScratch(f, w, h), nil
		}
		s := Strip{Y0: part.Row0, Y1: part.Row1, Height: h}
		if err := s.valid(); err != nil {
			return 0, err
		}
		in0, in1 := s.Input(f.Halo())
		return 4*uint64(w)*uint64(in1-in0+s.Y1-s.Y0) + filterScratch(f, w, in1-in0), nil
	}
	return b, strip
}

// filterScratch is what a filter allocates besides its output to filter
// rows of an image w wide from rows input rows: the blur's ring of
// filtered rows (2·halo+1 rows, 16 bytes a pixel) is the big one.
func filterScratch(f Filter, w, rows int) uint64 {
	switch f.(type) {
	case GaussianBlur, Sharpen:
		r := f.Halo()
		slots := uint64(min(2*r+1, rows))
		return 16*uint64(w)*(slots+2) + 16*uint64(2*r) + 24*uint64(2*r+1)
	case Edges:
		return 12 * uint64(w+2)
	}
	return 0
}

// resizeBytes is what Resize allocates to scale an image w×h to tw×th: the
// output, the filter weights, and the ring of horizontally filtered rows,
// which holds as many rows as one output row reads: about six times the
// shrink factor, up to the whole source height.
func resizeBytes(w, h, tw, th int, filter Resample) uint64 {
	out := 4 * uint64(tw) * uint64(th)
	if filter == Nearest {
		return out + 8*uint64(tw)
	}
	_, support := filter.kernel()
	stride := func(in, out int) uint64 {
		return uint64(math.Ceil(support*max(1, float64(in)/float64(out))))*2 + 1
	}
	sx, sy := stride(w, tw), stride(h, th)
	weights := (4*sx+16)*uint64(tw) + (4*sy+16)*uint64(th)
	ring := min(sy, uint64(h)) * 16 * uint64(tw)
	return out + weights + ring + 16*uint64(w) + 32*uint64(tw) + reduceBytes(w, h, tw, th, filter)
}

// checkPixels refuses an output of more than MaxPixels: it must fit in
// what Load accepts, to be read back.
func checkPixels(operation string, w, h int) error {
	if uint64(w)*uint64(h) > MaxPixels {
		return &decodeError{kind: ErrTooLarge, msg: fmt.Sprintf(
			"%s output %d×%d is %d pixels, over the limit of %d", operation, w, h, uint64(w)*uint64(h), MaxPixels)}
	}
	return nil
}
