package matrix

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"gonum.org/v1/gonum/mat"
)

// ReadCSV reads a matrix from a comma-separated file; see [DecodeCSV].
// Errors name the file and line, as "data.csv:7: ...".
func ReadCSV(path string) (*mat.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := DecodeCSV(f)
	return m, withFile(err, path)
}

// DecodeCSV reads a matrix from comma-separated text: one row per line,
// the same number of fields on every line. Fields are numbers as Go's
// strconv.ParseFloat reads them (which includes NaN and Inf in any case),
// with surrounding spaces allowed. Blank lines and lines starting with '#'
// (NumPy's savetxt header) are skipped, and so is a first line none of whose
// fields is a number: a header of column names. A byte order mark at the
// start is ignored. Quoting follows RFC 4180, as encoding/csv reads it.
// Errors are [*FormatError] values with the line number.
func DecodeCSV(r io.Reader) (*mat.Dense, error) {
	s := newCSVScanner(r)
	var data chunkedFloats
	for {
		err := s.next(func(_ int, v float64) { data.add(v) })
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if s.rows == 0 {
		return nil, &FormatError{Msg: "no data rows"}
	}
	return mat.NewDense(s.rows, s.cols, data.slice()), nil
}

// ReadCSVShape returns the rows and columns of the matrix in a CSV file:
// [DecodeCSVShape] on the file. Errors name the file and line.
func ReadCSVShape(path string) (rows, cols int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	rows, cols, err = DecodeCSVShape(f)
	return rows, cols, withFile(err, path)
}

// DecodeCSVShape returns the dimensions that [DecodeCSV] would give the
// matrix in r, with the same errors, reading it as a stream: it holds one
// line at a time, never the matrix.
func DecodeCSVShape(r io.Reader) (rows, cols int, err error) {
	s := newCSVScanner(r)
	for {
		err := s.next(func(int, float64) {})
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if s.rows == 0 {
		return 0, 0, &FormatError{Msg: "no data rows"}
	}
	return s.rows, s.cols, nil
}

// readCSVBlock reads rows and columns of the matrix in a CSV file, each
// the whole dimension when its span is zero, holding one line at a time
// besides the block. It checks every line up to the block's last row, and
// stops there.
func readCSVBlock(path string, rowSpan, colSpan span) (*mat.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := newCSVScanner(f)
	var data chunkedFloats
	r0, r1 := rowSpan.from, rowSpan.to
	c0, c1 := colSpan.from, colSpan.to
	for rowSpan == (span{}) || s.rows < r1 {
		row := s.rows
		err := s.next(func(j int, v float64) {
			if row >= r0 && (colSpan == (span{}) || j >= c0 && j < c1) {
				data.add(v)
			}
		})
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, withFile(err, path)
		}
		if s.rows == 1 && rowSpan != (span{}) {
			_, c1 := colSpan.resolve(s.cols)
			data.expect((r1 - r0) * max(0, c1-c0))
		}
	}
	if s.rows == 0 {
		return nil, withFile(&FormatError{Msg: "no data rows"}, path)
	}
	// s.rows is the matrix's rows, or r1 if the reading stopped there.
	r0, r1 = rowSpan.resolve(s.rows)
	c0, c1 = colSpan.resolve(s.cols)
	if err := checkBlock(s.rows, s.cols, r0, r1, c0, c1); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mat.NewDense(r1-r0, c1-c0, data.slice()), nil
}

// chunkedFloats collects values in chunks of a fixed size and copies them
// into one slice at the end, allocating twice their size in all: a slice
// that grows as values are appended allocates about five times its final
// size, growing by a quarter at a time.
type chunkedFloats struct {
	full  [][]float64
	last  []float64
	n     int
	exact []float64 // when the number of values is known: all of them
}

// expect says that n values will be added in all, so that they can go
// straight into a slice of their own.
func (c *chunkedFloats) expect(n int) {
	c.exact = append(make([]float64, 0, max(n, c.n)), c.slice()...)
	c.full, c.last = nil, nil
}

func (c *chunkedFloats) add(v float64) {
	if c.exact != nil {
		c.exact = append(c.exact, v)
		c.n++
		return
	}
	if len(c.last) == cap(c.last) {
		if c.last != nil {
			c.full = append(c.full, c.last)
		}
		c.last = make([]float64, 0, 1<<13)
	}
	c.last = append(c.last, v)
	c.n++
}

// slice returns the values in the order added.
func (c *chunkedFloats) slice() []float64 {
	if c.exact != nil {
		return c.exact
	}
	out := make([]float64, 0, c.n)
	for _, chunk := range c.full {
		out = append(out, chunk...)
	}
	return append(out, c.last...)
}

// csvScanner reads the data rows of a CSV matrix one by one, checking them
// as it goes, and holds one line at a time. It reads lines itself as
// encoding/csv does (a final "\r\n" read as "\n"; "\r" dropped before the
// end of input) and splits those without a quote at their commas, which
// allocates nothing per line; from the first line with a quote on, it
// hands the rest of the input to an encoding/csv reader, which handles
// quoted fields and their line breaks.
type csvScanner struct {
	in       *bufio.Reader
	line     int    // lines read so far
	long     []byte // a line longer than in's buffer
	fields   [][]byte
	quoted   *csv.Reader // from the first line with a quote on
	lineBase int         // lines read before quoted took over
	started  bool        // the first record, perhaps a header, is behind
	rows     int         // data rows read so far
	cols     int         // fields per row, set by the first data row
}

func newCSVScanner(r io.Reader) *csvScanner {
	return &csvScanner{in: bufio.NewReaderSize(r, 1<<16)}
}

// next reads the next data row and calls value with each of its fields,
// in order. It returns io.EOF after the last row.
func (s *csvScanner) next(value func(col int, v float64)) error {
	for {
		line, err := s.record()
		if err != nil {
			return err
		}
		if !s.started {
			s.started = true
			s.fields[0] = bytes.TrimPrefix(s.fields[0], []byte("\uFEFF"))
			if isHeader(s.fields) {
				continue
			}
		}
		if s.cols == 0 {
			s.cols = len(s.fields)
		} else if len(s.fields) != s.cols {
			return &FormatError{Line: line, Msg: fmt.Sprintf("row has %d fields, want %d like the first row", len(s.fields), s.cols)}
		}
		for i, field := range s.fields {
			v, ok := parseNumber(field)
			if !ok {
				return &FormatError{Line: line, Msg: fmt.Sprintf("field %d: %s is not a number", i+1, quoteExcerpt(string(field)))}
			}
			value(i, v)
		}
		s.rows++
		return nil
	}
}

// record reads the next record into s.fields and returns its first line.
func (s *csvScanner) record() (int, error) {
	if s.quoted != nil {
		return s.quotedRecord()
	}
	var line []byte
	var err error
	for err == nil {
		line, err = s.readLine()
		if len(line) > 0 && line[0] == '#' {
			continue // a comment
		}
		if err == nil && len(line) == lengthNL(line) {
			continue // a blank line
		}
		break
	}
	if err == io.EOF {
		return 0, io.EOF
	}
	if err != nil {
		return 0, fmt.Errorf("reading CSV: %w", err) // an I/O error, not the format's
	}
	if bytes.IndexByte(line, '"') >= 0 {
		s.lineBase = s.line - 1
		s.quoted = csv.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(line)), s.in))
		s.quoted.FieldsPerRecord = -1 // checked by next, for a clearer message
		s.quoted.Comment = '#'
		s.quoted.ReuseRecord = true
		return s.quotedRecord()
	}
	line = line[:len(line)-lengthNL(line)]
	s.fields = s.fields[:0]
	for {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			s.fields = append(s.fields, line)
			break
		}
		s.fields = append(s.fields, line[:i])
		line = line[i+1:]
	}
	return s.line, nil
}

func (s *csvScanner) quotedRecord() (int, error) {
	record, err := s.quoted.Read()
	if err == io.EOF {
		return 0, io.EOF
	}
	if err != nil {
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			return 0, &FormatError{Line: s.lineBase + parseErr.Line, Msg: parseErr.Err.Error()}
		}
		return 0, fmt.Errorf("reading CSV: %w", err) // an I/O error, not the format's
	}
	s.fields = s.fields[:0]
	for _, field := range record {
		s.fields = append(s.fields, []byte(field))
	}
	line, _ := s.quoted.FieldPos(0)
	return s.lineBase + line, nil
}

// readLine reads a line as encoding/csv's Reader does.
func (s *csvScanner) readLine() ([]byte, error) {
	line, err := s.in.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.in.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
		if line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
	}
	s.line++
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

// lengthNL reports the number of bytes of the trailing newline of b.
func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// isHeader reports whether no field of a first line is a number.
func isHeader(record [][]byte) bool {
	for _, field := range record {
		if _, ok := parseNumber(field); ok {
			return false
		}
	}
	return true
}

// parseNumber parses a field; a value out of float64's range is ±Inf or
// ±0, as NumPy reads it.
func parseNumber(field []byte) (float64, bool) {
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(field)), 64)
	if err != nil {
		var numErr *strconv.NumError
		return v, errors.As(err, &numErr) && numErr.Err == strconv.ErrRange
	}
	return v, true
}

// WriteCSV writes m to path as comma-separated text, one row per line,
// each value in the shortest form that reads back to the same float64
// (NaN, +Inf and -Inf as such). The file is replaced atomically.
func WriteCSV(path string, m mat.Matrix) error {
	return writeFileAtomic(path, func(w io.Writer) error { return EncodeCSV(w, m) })
}

// EncodeCSV writes m to w in the format that [WriteCSV] describes.
func EncodeCSV(w io.Writer, m mat.Matrix) error {
	rows, cols := m.Dims()
	var line []byte
	for i := range rows {
		line = line[:0]
		for j := range cols {
			if j > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendFloat(line, m.At(i, j), 'g', -1, 64)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}
