package matrix

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// npyMagic starts every .npy file, followed by the format version.
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header a reader accepts. Headers of the arrays
// this package reads are under 200 bytes; NumPy's own loader refuses
// headers over 10000 bytes unless told otherwise.
const maxNPYHeader = 1 << 16

// ReadNPY reads a 1-D or 2-D array from a NumPy .npy file; see [DecodeNPY]
// for what is accepted. Errors name the file.
func ReadNPY(path string) (*mat.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := DecodeNPY(bufio.NewReaderSize(f, 1<<16), info.Size())
	return m, withFile(err, path)
}

// DecodeNPY reads one array in NumPy's .npy format from r, which holds
// exactly size bytes (the file's size).
//
// It accepts format versions 1.0, 2.0 and 3.0; dtypes float64, float32,
// float16, int8 to int64, uint8 to uint64 and bool, little- or big-endian;
// C or Fortran order. Values are converted to float64: integers beyond 2⁵³
// are rounded as NumPy's astype(float64) rounds them. A 1-D array of n
// elements becomes an n×1 column; a 2-D array a matrix. Anything else (0-D
// or 3-D and up, empty arrays, complex, object, string or structured dtypes)
// is a [*FormatError] that says what was found.
//
// The header and the shape are checked against size before anything large
// is allocated, so a crafted header cannot make DecodeNPY allocate more
// than about 8×size bytes.
func DecodeNPY(r io.Reader, size int64) (*mat.Dense, error) {
	header, err := readNPYHeader(r, size)
	if err != nil {
		return nil, err
	}
	data := make([]float64, header.rows*header.cols)
	if err := readNPYData(r, header, data); err != nil {
		return nil, err
	}
	return mat.NewDense(header.rows, header.cols, data), nil
}

// ReadNPYShape returns the rows and columns of the array in a .npy file,
// reading only its header: [DecodeNPYShape] on the file. Errors name the
// file.
func ReadNPYShape(path string) (rows, cols int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	rows, cols, err = DecodeNPYShape(f, info.Size())
	return rows, cols, withFile(err, path)
}

// DecodeNPYShape returns the dimensions that [DecodeNPY] would give the
// array in r, which holds size bytes, reading only the header: at most
// 64 KiB, whatever the array's size. It fails as DecodeNPY does on
// anything wrong with the header or with the data's size, so it succeeds
// exactly when DecodeNPY does, but for I/O errors past the header.
func DecodeNPYShape(r io.Reader, size int64) (rows, cols int, err error) {
	header, err := readNPYHeader(r, size)
	if err != nil {
		return 0, 0, err
	}
	return header.rows, header.cols, nil
}

// readNPYBlock reads rows and columns of the array in a .npy file, each
// the whole dimension when its span is zero, seeking to the elements it
// needs: in C order each row of the block is one run of bytes, in Fortran
// order each column. It reads no more than the block, and allocates the
// block and a buffer of at most 64 KiB or one run.
func readNPYBlock(path string, rowSpan, colSpan span) (*mat.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err := readNPYHeader(bufio.NewReaderSize(f, 512), info.Size())
	if err != nil {
		return nil, withFile(err, path)
	}
	r0, r1 := rowSpan.resolve(h.rows)
	c0, c1 := colSpan.resolve(h.cols)
	if err := checkBlock(h.rows, h.cols, r0, r1, c0, c1); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := mat.NewDense(r1-r0, c1-c0, nil)
	raw := out.RawMatrix()
	var order binary.ByteOrder = binary.LittleEndian
	if h.dtype.bigEndian {
		order = binary.BigEndian
	}
	decode := elementDecoder(h.dtype, order)
	size := h.dtype.size
	// A run is one row's columns [c0, c1) (C order) or one column's rows
	// [r0, r1) (Fortran order); run o of the file starts at element
	// o·runLength.
	fortran := h.fortran && h.rows > 1 && h.cols > 1
	outer0, outer1, inner0, inner1, runLength := r0, r1, c0, c1, h.cols
	if fortran {
		outer0, outer1, inner0, inner1, runLength = c0, c1, r0, r1, h.rows
	}
	run := inner1 - inner0
	// Whole runs are adjacent in the file: read as many as fit in 64 KiB
	// at once.
	perRead := 1
	if run == runLength {
		perRead = max(1, (1<<16)/(run*size))
	}
	buf := make([]byte, min(perRead, outer1-outer0)*run*size)
	for o := outer0; o < outer1; {
		n := min(perRead, outer1-o)
		chunk := buf[:n*run*size]
		offset := h.length + (int64(o)*int64(runLength)+int64(inner0))*int64(size)
		if _, err := f.ReadAt(chunk, offset); err != nil {
			return nil, withFile(&FormatError{Msg: "reading .npy data", Err: err}, path)
		}
		for q := range n {
			for x := range run {
				v := decode(chunk[(q*run+x)*size:])
				if fortran {
					raw.Data[x*raw.Stride+o+q-outer0] = v
				} else {
					raw.Data[(o+q-outer0)*raw.Stride+x] = v
				}
			}
		}
		o += n
	}
	return out, nil
}

type npyHeader struct {
	length     int64 // bytes before the data: magic, version, length, header
	descr      string
	dtype      npyDtype
	fortran    bool
	rows, cols int
	shapeText  string // as in the file, for messages
}

func readNPYHeader(r io.Reader, size int64) (npyHeader, error) {
	var h npyHeader
	var preamble [12]byte
	if size < 10 {
		return h, &FormatError{Msg: fmt.Sprintf("not a .npy file: %d bytes is too short", size)}
	}
	if _, err := io.ReadFull(r, preamble[:8]); err != nil {
		return h, &FormatError{Msg: "reading .npy preamble", Err: err}
	}
	if string(preamble[:6]) != npyMagic {
		return h, &FormatError{Msg: "not a .npy file: it does not start with \\x93NUMPY"}
	}
	major, minor := preamble[6], preamble[7]
	var headerLen int64
	switch major {
	case 1:
		if _, err := io.ReadFull(r, preamble[8:10]); err != nil {
			return h, &FormatError{Msg: "reading .npy header length", Err: err}
		}
		headerLen = int64(binary.LittleEndian.Uint16(preamble[8:10]))
		h.length = 10
	case 2, 3:
		if size < 12 {
			return h, &FormatError{Msg: fmt.Sprintf("not a .npy file: %d bytes is too short", size)}
		}
		if _, err := io.ReadFull(r, preamble[8:12]); err != nil {
			return h, &FormatError{Msg: "reading .npy header length", Err: err}
		}
		headerLen = int64(binary.LittleEndian.Uint32(preamble[8:12]))
		h.length = 12
	default:
		return h, &FormatError{Msg: fmt.Sprintf("unsupported .npy format version %d.%d; want 1.0, 2.0 or 3.0", major, minor)}
	}
	if headerLen > size-h.length {
		return h, &FormatError{Msg: fmt.Sprintf("bad .npy header: its length %d exceeds the %d bytes left in the file", headerLen, size-h.length)}
	}
	if headerLen > maxNPYHeader {
		return h, &FormatError{Msg: fmt.Sprintf("bad .npy header: its length %d exceeds the limit of %d bytes", headerLen, maxNPYHeader)}
	}
	h.length += headerLen
	text := make([]byte, headerLen)
	if _, err := io.ReadFull(r, text); err != nil {
		return h, &FormatError{Msg: "reading .npy header", Err: err}
	}
	dict, err := parsePythonDict(string(text))
	if err != nil {
		return h, &FormatError{Msg: "bad .npy header " + quoteExcerpt(strings.TrimSpace(string(text))), Err: err}
	}
	if len(dict) != 3 || dict["descr"] == nil || dict["fortran_order"] == nil || dict["shape"] == nil {
		return h, &FormatError{Msg: "bad .npy header " + quoteExcerpt(strings.TrimSpace(string(text))) + ": want exactly the keys 'descr', 'fortran_order' and 'shape'"}
	}
	switch descr := dict["descr"].(type) {
	case string:
		h.descr = descr
	case []any:
		return h, &FormatError{Msg: "structured dtype (a record array) is not supported; want a numeric dtype"}
	default:
		return h, &FormatError{Msg: fmt.Sprintf("bad .npy header: 'descr' is %s, want a string", excerpt(fmt.Sprint(descr)))}
	}
	if h.dtype, err = parseDtype(h.descr); err != nil {
		return h, &FormatError{Msg: err.Error()}
	}
	fortran, ok := dict["fortran_order"].(bool)
	if !ok {
		return h, &FormatError{Msg: "bad .npy header: 'fortran_order' is not True or False"}
	}
	h.fortran = fortran
	if h.rows, h.cols, h.shapeText, err = parseShape(dict["shape"], size, h.dtype.size); err != nil {
		return h, &FormatError{Msg: err.Error()}
	}
	dataSize := size - h.length
	need := int64(h.rows) * int64(h.cols) * int64(h.dtype.size) // cannot overflow: see parseShape
	if dataSize < need {
		return h, &FormatError{Msg: fmt.Sprintf("truncated .npy: shape %s of %s needs %d data bytes, the file has %d",
			h.shapeText, excerpt(h.descr), need, dataSize)}
	}
	if dataSize > need {
		return h, &FormatError{Msg: fmt.Sprintf("%d unexpected bytes after the data of shape %s of %s",
			dataSize-need, h.shapeText, excerpt(h.descr))}
	}
	return h, nil
}

// parseShape turns the header's shape tuple into matrix dimensions. A shape
// whose data could not fit in size bytes is rejected here, which also keeps
// rows*cols*itemSize far from overflowing.
func parseShape(value any, size int64, itemSize int) (rows, cols int, text string, err error) {
	tuple, ok := value.(pyTuple)
	if !ok {
		return 0, 0, "", fmt.Errorf("bad .npy header: 'shape' is %s, want a tuple", excerpt(fmt.Sprint(value)))
	}
	dims := make([]string, len(tuple))
	for i, d := range tuple {
		dims[i] = strconv.FormatInt(d, 10)
	}
	text = "(" + strings.Join(dims, ", ") + ")"
	if len(tuple) == 1 {
		text = "(" + dims[0] + ",)"
	}
	text = excerpt(text) // a header may list thousands of dimensions
	switch len(tuple) {
	case 0:
		return 0, 0, text, errors.New("0-D (scalar) arrays are not supported; want 1-D or 2-D")
	case 1:
		tuple = pyTuple{tuple[0], 1} // a column
	case 2:
	default:
		return 0, 0, text, fmt.Errorf("%d-D arrays are not supported (shape %s); want 1-D or 2-D", len(tuple), text)
	}
	r, c := tuple[0], tuple[1]
	if r < 0 || c < 0 {
		return 0, 0, text, fmt.Errorf("bad .npy header: negative dimension in shape %s", text)
	}
	if r == 0 || c == 0 {
		return 0, 0, text, fmt.Errorf("empty arrays are not supported (shape %s)", text)
	}
	if r > size || c > size || r > size/c || r*c > size/int64(itemSize) {
		return 0, 0, text, fmt.Errorf("shape %s does not fit in a file of %d bytes", text, size)
	}
	return int(r), int(c), text, nil
}

// npyDtype is a supported element type.
type npyDtype struct {
	kind      byte // 'f', 'i', 'u' or 'b'
	size      int  // bytes per element
	bigEndian bool
}

// parseDtype accepts the descr strings NumPy writes for plain numeric
// types, such as '<f8', '>i4' and '|b1'.
func parseDtype(descr string) (npyDtype, error) {
	var d npyDtype
	s := descr
	order := byte('|')
	if s != "" && strings.IndexByte("<>|=", s[0]) >= 0 {
		order, s = s[0], s[1:]
	}
	if s == "" {
		return d, fmt.Errorf("unsupported dtype %q", excerpt(descr))
	}
	d.kind = s[0]
	size, err := strconv.Atoi(s[1:])
	if err != nil {
		size = 0 // reported below, after the kinds with a message of their own
	}
	d.size = size
	switch {
	case d.kind == 'f' && (size == 2 || size == 4 || size == 8),
		(d.kind == 'i' || d.kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8),
		d.kind == 'b' && size == 1:
	case d.kind == 'c':
		return d, fmt.Errorf("complex dtype %q is not supported; want a real dtype", excerpt(descr))
	case d.kind == 'O':
		return d, fmt.Errorf("object dtype %q is not supported; want a numeric dtype", excerpt(descr))
	case d.kind == 'U' || d.kind == 'S' || d.kind == 'a':
		return d, fmt.Errorf("string dtype %q is not supported; want a numeric dtype", excerpt(descr))
	default:
		return d, fmt.Errorf("unsupported dtype %q; want float, int, uint or bool", excerpt(descr))
	}
	switch order {
	case '<':
	case '>':
		d.bigEndian = true
	case '|':
		if size != 1 {
			return d, fmt.Errorf("dtype %q has no byte order", excerpt(descr))
		}
	case '=':
		// NumPy resolves '=' to '<' or '>' when it writes a header, so '='
		// means a writer whose machine order is unknown here.
		if size != 1 {
			return d, fmt.Errorf("dtype %q has native byte order, which a file cannot tell", excerpt(descr))
		}
	}
	return d, nil
}

// readNPYData converts the elements of r into data, in row-major order.
func readNPYData(r io.Reader, h npyHeader, data []float64) error {
	var order binary.ByteOrder = binary.LittleEndian
	if h.dtype.bigEndian {
		order = binary.BigEndian
	}
	decode := elementDecoder(h.dtype, order)
	size := h.dtype.size
	buf := make([]byte, min(1<<16, len(data)*size)) // a multiple of every item size
	for done := 0; done < len(data); {
		n := min(len(buf)/size, len(data)-done)
		chunk := buf[:n*size]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return &FormatError{Msg: "reading .npy data", Err: err}
		}
		if !h.fortran || h.cols == 1 {
			for i := range n {
				data[done+i] = decode(chunk[i*size:])
			}
		} else {
			// Fortran order lists the matrix column by column.
			for i := range n {
				t := done + i
				data[(t%h.rows)*h.cols+t/h.rows] = decode(chunk[i*size:])
			}
		}
		done += n
	}
	return nil
}

func elementDecoder(d npyDtype, order binary.ByteOrder) func([]byte) float64 {
	switch d.kind {
	case 'f':
		switch d.size {
		case 2:
			return func(b []byte) float64 { return halfToFloat64(order.Uint16(b)) }
		case 4:
			return func(b []byte) float64 { return float64(math.Float32frombits(order.Uint32(b))) }
		default:
			return func(b []byte) float64 { return math.Float64frombits(order.Uint64(b)) }
		}
	case 'i':
		switch d.size {
		case 1:
			return func(b []byte) float64 { return float64(int8(b[0])) }
		case 2:
			return func(b []byte) float64 { return float64(int16(order.Uint16(b))) }
		case 4:
			return func(b []byte) float64 { return float64(int32(order.Uint32(b))) }
		default:
			return func(b []byte) float64 { return float64(int64(order.Uint64(b))) }
		}
	case 'u':
		switch d.size {
		case 1:
			return func(b []byte) float64 { return float64(b[0]) }
		case 2:
			return func(b []byte) float64 { return float64(order.Uint16(b)) }
		case 4:
			return func(b []byte) float64 { return float64(order.Uint32(b)) }
		default:
			return func(b []byte) float64 { return float64(order.Uint64(b)) }
		}
	default: // 'b': NumPy stores bools as 0 or 1; any non-zero byte is true
		return func(b []byte) float64 {
			if b[0] != 0 {
				return 1
			}
			return 0
		}
	}
}

// halfToFloat64 converts an IEEE 754 binary16 value.
func halfToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exponent := int(h>>10) & 0x1f
	fraction := float64(h & 0x3ff)
	switch exponent {
	case 0:
		return sign * math.Ldexp(fraction, -24) // zero or subnormal
	case 0x1f:
		if fraction != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+fraction, exponent-25)
}

// WriteNPY writes m to path as a NumPy .npy file (format 1.0, little-endian
// float64, C order) that numpy.load reads. A [mat.Vector] is written as a
// 1-D array of shape (n,), any other matrix as 2-D. The file is replaced
// atomically: readers see the old file or the whole new one, never a part.
func WriteNPY(path string, m mat.Matrix) error {
	return writeFileAtomic(path, func(w io.Writer) error { return EncodeNPY(w, m) })
}

// EncodeNPY writes m to w in the .npy format that [WriteNPY] describes.
func EncodeNPY(w io.Writer, m mat.Matrix) error {
	rows, cols := m.Dims()
	shape := fmt.Sprintf("(%d, %d)", rows, cols)
	if _, ok := m.(mat.Vector); ok && cols == 1 {
		shape = fmt.Sprintf("(%d,)", rows)
	}
	dict := "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }"
	// NumPy pads the header with spaces and a newline so that the data
	// starts on a multiple of 64 bytes, for aligned memory mapping.
	total := 10 + len(dict) + 1
	padded := (total + 63) / 64 * 64
	header := make([]byte, 0, padded)
	header = append(header, npyMagic...)
	header = append(header, 1, 0)
	header = binary.LittleEndian.AppendUint16(header, uint16(padded-10))
	header = append(header, dict...)
	for len(header) < padded-1 {
		header = append(header, ' ')
	}
	header = append(header, '\n')
	if _, err := w.Write(header); err != nil {
		return err
	}
	buf := make([]byte, 0, 8*min(cols, 8192))
	for i := range rows {
		for j := range cols {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(m.At(i, j)))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	_, err := w.Write(buf)
	return err
}
