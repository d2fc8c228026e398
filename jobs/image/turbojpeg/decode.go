package turbojpeg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"runtime"
	"strings"
)

// A Colorspace is how a JPEG file stores its colours.
type Colorspace int

// The colour spaces, with TurboJPEG's numbering.
const (
	RGB   Colorspace = tjcsRGB
	YCbCr Colorspace = tjcsYCbCr
	Gray  Colorspace = tjcsGray
	CMYK  Colorspace = tjcsCMYK
	YCCK  Colorspace = tjcsYCCK
)

func (c Colorspace) String() string {
	switch c {
	case RGB:
		return "RGB"
	case YCbCr:
		return "YCbCr"
	case Gray:
		return "Gray"
	case CMYK:
		return "CMYK"
	case YCCK:
		return "YCCK"
	}
	return fmt.Sprintf("Colorspace(%d)", int(c))
}

// A Subsampling is the chroma subsampling of a JPEG file.
type Subsampling int

// The subsamplings, with TurboJPEG's numbering. SubsamplingOther is one the
// library decodes but does not name (unusual sampling factors).
const (
	Subsampling444   Subsampling = 0
	Subsampling422   Subsampling = 1
	Subsampling420   Subsampling = tjsamp420
	SubsamplingGray  Subsampling = tjsampGray
	Subsampling440   Subsampling = 4
	Subsampling411   Subsampling = 5
	SubsamplingOther Subsampling = -1
)

func (s Subsampling) String() string {
	switch s {
	case Subsampling444:
		return "4:4:4"
	case Subsampling422:
		return "4:2:2"
	case Subsampling420:
		return "4:2:0"
	case SubsamplingGray:
		return "gray"
	case Subsampling440:
		return "4:4:0"
	case Subsampling411:
		return "4:1:1"
	case SubsamplingOther:
		return "other"
	}
	return fmt.Sprintf("Subsampling(%d)", int(s))
}

// Config is what a JPEG file's header says.
type Config struct {
	Width, Height int // full size, in pixels
	Colorspace    Colorspace
	Subsampling   Subsampling
}

// DecodeOptions tune Decode. The zero value decodes at full size with
// DefaultMaxBytes.
type DecodeOptions struct {
	// MinWidth and MinHeight ask for the smallest DCT-scaled image that is
	// still at least this wide and this high; both 0 means full size, one
	// 0 leaves that side free. The result is the full-size image when no
	// scaling factor below 1 keeps both. They are
	// in the file's own orientation: a caller that applies an EXIF
	// rotation of 90° afterwards swaps them.
	MinWidth, MinHeight int
	// MaxBytes bounds the memory a decode takes, in Go's heap and in C's,
	// as estimated from the header (see the package documentation); 0
	// means DefaultMaxBytes. A larger file fails with ErrTooLarge before
	// anything is allocated.
	MaxBytes int64
}

// DefaultMaxBytes is the memory bound of a zero DecodeOptions: 1 GiB.
const DefaultMaxBytes = 1 << 30

// DecodeConfig reads a JPEG file's header.
func DecodeConfig(data []byte) (Config, error) {
	lib, err := load()
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	err = lib.withDecompressor(func(handle uintptr) error {
		cfg, err = lib.header(handle, data)
		return err
	})
	return cfg, err
}

// Decode decodes a JPEG file into an *image.Gray, *image.NRGBA or
// *image.CMYK (see the package documentation), scaled down in the DCT
// domain as far as opts allow.
func Decode(data []byte, opts DecodeOptions) (image.Image, error) {
	lib, err := load()
	if err != nil {
		return nil, err
	}
	var img image.Image
	err = lib.withDecompressor(func(handle uintptr) error {
		img, err = lib.decode(handle, data, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// ScaledSize returns the size Decode produces for a file of cfg's size
// asked for at least minWidth×minHeight.
func ScaledSize(cfg Config, minWidth, minHeight int) (width, height int) {
	lib, err := load()
	if err != nil {
		return cfg.Width, cfg.Height
	}
	_, width, height = lib.scale(cfg.Width, cfg.Height, minWidth, minHeight)
	return width, height
}

// withDecompressor runs fn with a new decompressor handle. A handle per
// call costs a few microseconds and keeps calls independent: libjpeg
// counts warnings per handle and prints only the first, which a reused
// handle could hide. The goroutine keeps its thread throughout, because
// libjpeg-turbo writes its messages to a thread-local buffer that
// tjGetErrorStr2 reads after the failed call returns.
func (lib *library) withDecompressor(fn func(handle uintptr) error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	handle := lib.initDecompress()
	if handle == 0 {
		return &Error{Op: "tjInitDecompress", Message: lib.getErrorStr2(0)}
	}
	defer lib.destroy(handle)
	return fn(handle)
}

func (lib *library) header(handle uintptr, data []byte) (Config, error) {
	if len(data) == 0 {
		return Config{}, &Error{Op: "tjDecompressHeader3", Message: "empty JPEG data", Kind: ErrTruncated}
	}
	var w, h, subsamp, colorspace int32
	if rc := lib.decompressHeader3(handle, data, uint64(len(data)), &w, &h, &subsamp, &colorspace); rc != 0 {
		err := lib.failure(handle, "tjDecompressHeader3", data)
		// TurboJPEG names only the usual subsamplings and fails the header
		// for others after filling in the rest; tjDecompress2 decodes
		// them all.
		if e, ok := err.(*Error); ok && strings.Contains(e.Message, "Could not determine subsampling type") && w > 0 && h > 0 {
			subsamp, err = int32(SubsamplingOther), nil
		}
		if err != nil {
			return Config{}, err
		}
	}
	if w <= 0 || h <= 0 {
		// A tables-only datastream, or (when libjpeg met the end of the
		// data while looking for a frame) the start of a file.
		kind := ErrCorrupt
		if !complete(data) {
			kind = ErrTruncated
		}
		return Config{}, &Error{Op: "tjDecompressHeader3", Message: "JPEG data has no image", Kind: kind}
	}
	return Config{Width: int(w), Height: int(h), Colorspace: Colorspace(colorspace), Subsampling: Subsampling(subsamp)}, nil
}

// scale picks the smallest DCT scaling factor that keeps the image at
// least minW×minH, and returns the scaled size (TJSCALED: rounded up).
func (lib *library) scale(w, h, minW, minH int) (scalingFactor, int, int) {
	if minW <= 0 && minH <= 0 {
		return scalingFactor{1, 1}, w, h
	}
	for _, f := range lib.factors { // smallest first; the last is 1/1
		sw := (w*int(f.num) + int(f.denom) - 1) / int(f.denom)
		sh := (h*int(f.num) + int(f.denom) - 1) / int(f.denom)
		if sw >= minW && sh >= minH || f == (scalingFactor{1, 1}) {
			return f, sw, sh
		}
	}
	return scalingFactor{1, 1}, w, h
}

func (lib *library) decode(handle uintptr, data []byte, opts DecodeOptions) (image.Image, error) {
	cfg, err := lib.header(handle, data)
	if err != nil {
		return nil, err
	}
	_, w, h := lib.scale(cfg.Width, cfg.Height, opts.MinWidth, opts.MinHeight)
	pixelFormat, pixelSize := int32(tjpfRGBA), 4
	switch cfg.Colorspace {
	case Gray:
		pixelFormat, pixelSize = tjpfGray, 1
	case CMYK, YCCK:
		pixelFormat = tjpfCMYK
	}
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	out := int64(w) * int64(h) * int64(pixelSize)
	if need := out + workingBytes(data, cfg); need > maxBytes {
		return nil, &Error{Op: "tjDecompress2", Kind: ErrTooLarge, Message: fmt.Sprintf(
			"%d×%d JPEG image (decoded at %d×%d) needs about %d MiB, over the limit of %d MiB",
			cfg.Width, cfg.Height, w, h, need>>20, maxBytes>>20)}
	}
	pix := make([]byte, out)
	stride := w * pixelSize
	if rc := lib.decompress2(handle, data, uint64(len(data)), pix, int32(w), int32(stride), int32(h), pixelFormat, tjflagLimitScans); rc != 0 {
		if err := lib.failure(handle, "tjDecompress2", data); err != nil {
			return nil, err
		}
	}
	rect := image.Rect(0, 0, w, h)
	switch pixelFormat {
	case tjpfGray:
		return &image.Gray{Pix: pix, Stride: stride, Rect: rect}, nil
	case tjpfCMYK:
		// libjpeg returns the values as stored, which for every CMYK JPEG
		// in practice is Photoshop's inverted form (255 = no ink), and
		// turns YCCK into that form too. image/jpeg inverts all four
		// channels back (0 = no ink), and so does this.
		for i := range pix {
			pix[i] = 255 - pix[i]
		}
		return &image.CMYK{Pix: pix, Stride: stride, Rect: rect}, nil
	}
	return &image.NRGBA{Pix: pix, Stride: stride, Rect: rect}, nil
}

// failure turns a failed call's status into an error, or nil for a
// warning that loses nothing.
func (lib *library) failure(handle uintptr, op string, data []byte) error {
	msg := lib.getErrorStr2(handle)
	warning := lib.getErrorCode(handle) == tjerrWarning
	// libjpeg shows only the first warning of a decode, so a harmless
	// first one could hide a later "Premature end of JPEG file": it
	// counts only when the data also runs to its end marker.
	if warning && harmless(msg) && complete(data) {
		return nil
	}
	kind := ErrCorrupt
	if strings.Contains(msg, "Premature end of JPEG file") || isJPEG(data) && !complete(data) {
		kind = ErrTruncated
	}
	return &Error{Op: op, Message: msg, Warning: warning, Kind: kind}
}

// harmless reports whether a libjpeg warning leaves the image whole: data
// image/jpeg also skips (stray bytes between segments, a damaged ICC
// profile, which neither decoder applies) or an unusual header value read
// the way image/jpeg reads it (an unknown Adobe transform means YCCK).
func harmless(msg string) bool {
	for _, s := range []string{
		"extraneous bytes before marker",
		"Unknown Adobe color transform code",
		"bad ICC marker",
		"unknown JFIF revision number",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isJPEG(data []byte) bool { return len(data) >= 2 && data[0] == 0xff && data[1] == 0xd8 }

// complete reports whether data has an EOI marker after its first SOS
// marker: the end of a JPEG file that is not cut short. Entropy-coded
// data escapes 0xff bytes, so no false EOI hides there.
func complete(data []byte) bool {
	sos := bytes.Index(data, []byte{0xff, 0xda})
	return sos >= 0 && bytes.Contains(data[sos:], []byte{0xff, 0xd9})
}

// workingBytes estimates libjpeg's own memory for decoding data: for a
// progressive or other multi-scan file, a coefficient buffer of 2 bytes per
// sample of the full-size image (jdcoefct.c); for others a few rows of
// blocks, counted as nothing. When the header cannot be read here, it
// assumes the worst: multi-scan, four full-resolution components.
func workingBytes(data []byte, cfg Config) int64 {
	frame, ok := scanFrame(data)
	if !ok {
		return 2 * 4 * int64(cfg.Width) * int64(cfg.Height)
	}
	if !frame.multiScan {
		return 0
	}
	var hmax, vmax int64 = 1, 1
	for _, c := range frame.sampling {
		hmax, vmax = max(hmax, int64(c[0])), max(vmax, int64(c[1]))
	}
	var total int64
	for _, c := range frame.sampling {
		// Blocks of the component, padded to whole MCUs.
		bw := ceilDiv(ceilDiv(int64(cfg.Width)*int64(c[0]), hmax), 8)
		bh := ceilDiv(ceilDiv(int64(cfg.Height)*int64(c[1]), vmax), 8)
		bw = ceilDiv(bw, int64(c[0])) * int64(c[0])
		bh = ceilDiv(bh, int64(c[1])) * int64(c[1])
		total += bw * bh * 64 * 2
	}
	return total
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

type frameInfo struct {
	sampling  [][2]uint8 // each component's horizontal, vertical factor
	multiScan bool
}

// scanFrame reads the frame header and the first scan header the way
// libjpeg decides to buffer the whole image: progressive, or a first scan
// that does not hold every component (jdinput.c).
func scanFrame(data []byte) (frameInfo, bool) {
	var info frameInfo
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return info, false
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			i++ // stray bytes, which libjpeg skips with a warning
			continue
		}
		marker := data[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xd0 && marker <= 0xd8: // no length
			i += 2
			continue
		case marker == 0xd9:
			return info, false
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		seg := data[i+4:]
		if n < 2 || len(seg) < n-2 {
			return info, false
		}
		seg = seg[:n-2]
		switch {
		case marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc:
			if info.sampling != nil || len(seg) < 6 || len(seg) < 6+3*int(seg[5]) || seg[5] == 0 {
				return info, false
			}
			for c := range int(seg[5]) {
				hv := seg[6+3*c+1]
				info.sampling = append(info.sampling, [2]uint8{max(hv>>4, 1), max(hv&15, 1)})
			}
			info.multiScan = marker&3 == 2 // SOF2, SOF6, SOF10, SOF14
		case marker == 0xda:
			if info.sampling == nil || len(seg) < 1 {
				return info, false
			}
			info.multiScan = info.multiScan || int(seg[0]) < len(info.sampling)
			return info, true
		}
		i += 2 + n
	}
	return info, false
}
