package image

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"unsafe"

	"github.com/ppool/ppool/internal/bufpool"
	"github.com/ppool/ppool/jobs/image/fastpng"
	"github.com/ppool/ppool/jobs/image/jpegdc"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
	"github.com/ppool/ppool/jobs/kinds"
)

// Limits on the images Load and Decode accept. They are checked against the
// header before any pixel memory is allocated, so a small hostile file
// cannot claim a huge image and exhaust memory. MaxImageMemory, the bound
// in bytes, is usually the one that binds: an image of MaxPixels is 1 GiB
// as NRGBA alone.
const (
	MaxDimension = 30000   // pixels, width or height
	MaxPixels    = 1 << 28 // width × height
)

// Conditions Load and Decode report, matched with errors.Is. The error
// itself says more: which file, which format, and what was found.
var (
	ErrEmpty     = errors.New("empty file")
	ErrNotImage  = errors.New("not a PNG or JPEG file")
	ErrTruncated = errors.New("truncated image data")
	ErrTooLarge  = errors.New("image too large")
	ErrCorrupt   = errors.New("invalid image data")
)

// A FileError records a file that could not be loaded or saved.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// decodeError phrases a condition for one format ("truncated JPEG data")
// and still matches the condition's sentinel and the decoder's own error.
type decodeError struct {
	kind  error
	msg   string
	cause error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// Load reads a PNG or JPEG file into the package's working format,
// *image.NRGBA, upright: an EXIF orientation (JPEG APP1 or PNG eXIf) is
// applied. The format is recognised by content, not by the file's name,
// and every variant cameras and editors write is handled (see the package
// documentation). Errors are *FileError values naming the file, wrapping
// ErrEmpty, ErrNotImage, ErrTruncated, ErrTooLarge or ErrCorrupt, or the
// error opening the file.
func Load(path string) (*image.NRGBA, error) {
	return load(path, loadBudget())
}

// load is Load within a budget, which can count what the task does with
// the image after loading it.
func load(path string, b budget) (*image.NRGBA, error) {
	data, err := readImageFile(path, b.inputHash)
	if err != nil {
		return nil, err
	}
	img, err := decode(data, b)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	// Every decoder makes its pixels anew (checked here all the same),
	// so the file's bytes can serve the next file.
	if !overlaps(img.Pix, data[:cap(data)]) {
		fileBufs.Put(data)
	}
	return img, nil
}

// fileBufs are readImageFile's buffers, reused: a worker reads file after
// file of about one size.
var fileBufs bufpool.Pool

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// readImageFile reads an image file whole into one buffer of at least
// its size (no growing copies; reused from fileBufs), after its first bytes showed it is a PNG or JPEG
// file, so that a large file of the wrong kind is not read. If sum is not
// nil, it is set to the hash of the bytes read, as the jobs journal
// records it: the one read serves the decoder and the journal.
func readImageFile(path string, sum *string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *os.PathError already names the file
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	// One byte more than the size, so that reaching the end takes no
	// second buffer; a file that grew since Stat still reads whole.
	data := fileBufs.Get(int(max(st.Size(), int64(len(pngMagic))) + 1))
	for checked := false; ; {
		end := cap(data)
		if !checked {
			end = min(end, 4096) // the magic bytes first
		}
		n, err := f.Read(data[len(data):end])
		data = data[:len(data)+n]
		if !checked && (len(data) >= len(pngMagic) || err != nil) {
			checked = true
			if _, err := sniff(data); err != nil && len(data) >= len(pngMagic) {
				return nil, &FileError{Path: path, Err: err}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &FileError{Path: path, Err: err}
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	if sum != nil {
		h := kinds.NewHasher()
		h.Write(data)
		*sum = h.Sum()
	}
	return data, nil
}

// Decode is Load for a reader. Its errors do not name a file.
//
// Why *image.NRGBA as the one working format: it is 8 bits per channel,
// interleaved, with straight (non-premultiplied) alpha, which is how PNG
// stores pixels and what Pillow calls "RGBA", so results compare directly
// with Pillow and libvips and encode without conversion. Four bytes per
// pixel suit the kernels: the blur packs a pixel into two 64-bit words and
// works on two channels per multiply. Operations that mix neighbouring
// pixels work internally on 16-bit premultiplied values, so precision is
// kept and transparent pixels do not bleed. 16-bit inputs are reduced to
// their high byte, as image/color does.
func Decode(r io.Reader) (*image.NRGBA, error) {
	return decodeFrom(r, loadBudget())
}

func decodeFrom(r io.Reader, b budget) (*image.NRGBA, error) {
	br := bufio.NewReader(r)
	// Look at the magic bytes before reading the rest, so that a large
	// file of the wrong kind is rejected without being read.
	head, err := br.Peek(len(pngMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if _, err := sniff(head); err != nil && len(head) == len(pngMagic) {
		return nil, err
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	return decode(data, b)
}

const (
	pngMagic  = "\x89PNG\r\n\x1a\n"
	jpegMagic = "\xff\xd8\xff"
)

// sniff names the format of data from its first bytes.
func sniff(data []byte) (string, error) {
	switch {
	case len(data) == 0:
		return "", errEmpty
	case bytes.HasPrefix(data, []byte(pngMagic)):
		return "PNG", nil
	case bytes.HasPrefix(data, []byte(jpegMagic)):
		return "JPEG", nil
	case bytes.HasPrefix([]byte(pngMagic), data):
		return "PNG", truncated("PNG", nil)
	case bytes.HasPrefix([]byte(jpegMagic), data):
		return "JPEG", truncated("JPEG", nil)
	}
	return "", ErrNotImage
}

// errEmpty is ErrEmpty, said so that a user who named the wrong file sees
// why it is not an image.
var errEmpty error = &decodeError{kind: ErrEmpty, msg: "empty file (0 bytes), not a PNG or JPEG image"}

func truncated(format string, cause error) error {
	return &decodeError{kind: ErrTruncated, msg: "truncated " + format + " data", cause: cause}
}

// decode is the whole decoding path, shared by Load, Decode and FuzzLoad.
// The budget is a parameter so the fuzzer can use a smaller one.
func decode(data []byte, b budget) (*image.NRGBA, error) {
	hd, err := readHeader(data, len(data), b)
	if err != nil {
		return nil, err
	}
	if hd.rowsAlone {
		img, err := decodePNGRows(hd.data, hd.width, hd.height, hd.y0, hd.y1)
		if err != nil {
			return nil, decoderError(hd.format, err, !complete(hd.format, hd.data))
		}
		return img, nil
	}
	if b.full != nil {
		*b.full = image.Pt(hd.width, hd.height)
	}
	if img, ok := decodeEighth(hd, b); ok {
		return orient(img, hd.orientation), nil
	}
	var m image.Image
	if hd.format == "JPEG" && useTurbo() {
		if m, err = decodeTurbo(hd, b); err != nil {
			return nil, err
		}
	} else if m, err = guard(hd.format, func() (image.Image, error) { return hd.decodeImage(bytes.NewReader(hd.data)) }); err != nil {
		return nil, decoderError(hd.format, err, !complete(hd.format, hd.data))
	}
	img := orient(toNRGBA(m), hd.orientation)
	if b.rows != nil {
		img = Crop(img, image.Rect(0, hd.y0, hd.width, hd.y1))
	}
	return img, nil
}

// decodeMin is the smallest size, in the file's own orientation, the
// budget lets a JPEG be decoded at; ok is false when it must be whole.
func decodeMin(hd header, b budget) (minW, minH int, ok bool) {
	if b.decodeAtLeast == nil || b.rows != nil {
		return 0, 0, false
	}
	minW, minH = b.decodeAtLeast(hd.width, hd.height)
	if hd.orientation >= 5 { // the file's own orientation
		minW, minH = minH, minW
	}
	return max(minW, 1), max(minH, 1), true
}

// decodeEighth decodes a JPEG at 1/8 of its size from its DC coefficients
// alone (jpegdc) when the task shrinks it that much: the pixels
// libjpeg-turbo's own 1/8 decode gives, in less time, and the same
// without libjpeg-turbo. ok is false when the budget asks for more, or
// jpegdc does not read the file (progressive, CMYK, corrupt...): the
// caller then decodes it as before, and reports its errors.
func decodeEighth(hd header, b budget) (*image.NRGBA, bool) {
	minW, minH, ok := decodeMin(hd, b)
	if !ok || hd.format != "JPEG" {
		return nil, false
	}
	w, h := hd.width, hd.height
	if hd.orientation >= 5 {
		w, h = h, w
	}
	if (w+7)/8 < minW || (h+7)/8 < minH {
		return nil, false
	}
	img, err := jpegdc.Decode(hd.data)
	return img, err == nil
}

// useTurbo reports whether JPEG files go through libjpeg-turbo: when it is
// installed, unless PPOOL_JPEG=go says otherwise.
func useTurbo() bool {
	ok, _ := turbojpeg.Available()
	return ok
}

// decodeTurbo decodes a JPEG through libjpeg-turbo, at a reduced DCT scale
// when the budget says the task shrinks the image enough, and maps its
// errors onto this package's.
func decodeTurbo(hd header, b budget) (image.Image, error) {
	minW, minH, _ := decodeMin(hd, b)
	m, err := turbojpeg.Decode(hd.data, turbojpeg.DecodeOptions{MinWidth: minW, MinHeight: minH, MaxBytes: int64(min(b.maxMemory, math.MaxInt64))})
	if err == nil {
		return m, nil
	}
	switch {
	case errors.Is(err, turbojpeg.ErrTruncated):
		return nil, truncated("JPEG", err)
	case errors.Is(err, turbojpeg.ErrTooLarge):
		return nil, &decodeError{kind: ErrTooLarge, msg: err.Error(), cause: err}
	}
	return nil, &decodeError{kind: ErrCorrupt, msg: "corrupt JPEG data: " + err.Error(), cause: err}
}

// A header is what an image file's first bytes say about it, once they
// have been checked against a budget.
type header struct {
	format        string // "PNG" or "JPEG"
	width, height int    // upright: EXIF orientation applied
	orientation   int    // EXIF, 1 to 8
	data          []byte // the bytes to decode (a CMYK JPEG gains an Adobe marker)
	decodeImage   func(io.Reader) (image.Image, error)
	// The rows the budget asks for, [y0, y1), and whether they are
	// decoded alone rather than cut from the whole image.
	y0, y1    int
	rowsAlone bool
}

// readHeader reads data's header, all of the file or at least the part
// before the pixels, and refuses an image over the budget: too many pixels,
// or more memory than the budget allows for decoding it as image/png or
// image/jpeg will (see pngDecodeCost, jpegDecodeCost) plus the budget's
// operation. fileSize is the whole file's size.
func readHeader(data []byte, fileSize int, b budget) (header, error) {
	format, err := sniff(data)
	if err != nil {
		return header{}, err
	}
	hd := header{format: format, data: data, decodeImage: fastpng.Decode}
	decodeConfig := png.DecodeConfig
	var exif []byte
	var info jpegInfo
	if format == "JPEG" {
		decodeConfig, hd.decodeImage = jpeg.DecodeConfig, jpeg.Decode
		info = scanJPEG(data)
		exif = info.exif
		if info.components == 4 && !info.adobe {
			hd.data = withAdobeMarker(data)
		}
	} else {
		exif = pngExif(data)
		if len(data) < fileSize && !pngReachesIDAT(data) {
			// A part of the file without all the chunks before the
			// pixels (tRNS changes the layout, eXIf the orientation).
			return header{}, truncated(format, nil)
		}
	}
	cfg, err := guard(format, func() (image.Config, error) { return decodeConfig(bytes.NewReader(hd.data)) })
	if err != nil {
		return header{}, decoderError(format, err, false)
	}
	if err := checkSize(format, cfg.Width, cfg.Height, b.maxPixels); err != nil {
		return header{}, err
	}
	hd.orientation = exifOrientation(exif)
	var cost decodeCost
	if format == "JPEG" {
		cost = jpegDecodeCost(info, fileSize, cfg.Width, cfg.Height, hd.orientation)
	} else {
		cost = pngDecodeCost(data, fileSize, cfg.Width, cfg.Height, hd.orientation)
	}
	hd.width, hd.height = cfg.Width, cfg.Height
	if hd.orientation >= 5 {
		hd.width, hd.height = cfg.Height, cfg.Width
	}
	hd.y0, hd.y1 = 0, hd.height
	if b.rows != nil {
		hd.y0, hd.y1 = b.rows(hd.height)
		if hd.y0 < 0 || hd.y0 >= hd.y1 || hd.y1 > hd.height {
			return header{}, fmt.Errorf("rows [%d,%d) are not in the %d×%d image", hd.y0, hd.y1, hd.width, hd.height)
		}
		// Stored rows are upright rows only without EXIF rotation.
		if format == "PNG" && hd.orientation == 1 && pngStreamable(data) {
			hd.rowsAlone = true
			cost = pngRowsCost(data, fileSize, hd.width, hd.y0, hd.y1)
		}
	}
	if err := checkMemory(format, hd.width, hd.height, cost, b); err != nil {
		return header{}, err
	}
	return hd, nil
}

// guard runs one call into a standard decoder. They are fuzzed upstream,
// but a worker that panics takes its whole process down, and a bad file
// must fail alone. Only the decoders are guarded: a panic in this package's
// own code is a bug that FuzzLoad should see.
func guard[T any](format string, decode func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s decoder panic: %v", format, p)
		}
	}()
	return decode()
}

func checkSize(format string, w, h, maxPixels int) error {
	if w < 1 || h < 1 || w > MaxDimension || h > MaxDimension || w*h > maxPixels {
		return &decodeError{kind: ErrTooLarge, msg: fmt.Sprintf(
			"%s image is %d×%d pixels, over the limit of %d×%d and %d pixels",
			format, w, h, MaxDimension, MaxDimension, maxPixels)}
	}
	return nil
}

// decoderError classifies a decoder's error. The decoders report pixel
// data cut short in several ways (unexpected EOF, "not enough pixel data",
// "short Huffman data"), so the caller also says whether the file's own
// structure is incomplete.
func decoderError(format string, err error, incomplete bool) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || incomplete {
		return truncated(format, err)
	}
	return &decodeError{kind: ErrCorrupt, msg: fmt.Sprintf("invalid %s data: %v", format, err), cause: err}
}

// complete reports whether data runs to its format's end marker: a PNG's
// chunks lead to IEND within the data; a JPEG has an EOI marker after its
// first scan (entropy-coded data escapes 0xff, so no false EOI hides
// there, and an EXIF thumbnail's EOI comes before the first scan).
func complete(format string, data []byte) bool {
	if format == "JPEG" {
		sos := bytes.Index(data, []byte{0xff, 0xda})
		return sos >= 0 && bytes.Contains(data[sos:], []byte{0xff, 0xd9})
	}
	for i := len(pngMagic); i+8 <= len(data); {
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		end := uint64(i) + 12 + n
		if end > uint64(len(data)) {
			return false
		}
		if string(data[i+4:i+8]) == "IEND" {
			return true
		}
		i = int(end)
	}
	return false
}

// withAdobeMarker returns a copy of a 4-component JPEG with an Adobe APP14
// segment (transform 0: plain CMYK) after the SOI marker. image/jpeg refuses
// 4-component files without one; libjpeg and Pillow read them as
// Adobe-style inverted CMYK, which is what the marker makes image/jpeg do.
func withAdobeMarker(data []byte) []byte {
	app14 := []byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}
	out := make([]byte, 0, len(data)+len(app14))
	out = append(out, data[:2]...)
	out = append(out, app14...)
	return append(out, data[2:]...)
}
