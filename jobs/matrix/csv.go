package matrix

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

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
// start is ignored. Errors are [*FormatError] values with the line number.
func DecodeCSV(r io.Reader) (*mat.Dense, error) {
	reader := csv.NewReader(bufio.NewReader(r))
	reader.FieldsPerRecord = -1 // checked here, for a clearer message
	reader.Comment = '#'
	reader.ReuseRecord = true
	var data []float64
	cols, rows := 0, 0
	first := true
	for {
		record, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var parseErr *csv.ParseError
			if errors.As(err, &parseErr) {
				return nil, &FormatError{Line: parseErr.Line, Msg: parseErr.Err.Error()}
			}
			return nil, fmt.Errorf("reading CSV: %w", err) // an I/O error, not the format's
		}
		line, _ := reader.FieldPos(0)
		if first {
			first = false
			record[0] = strings.TrimPrefix(record[0], "\uFEFF")
			if isHeader(record) {
				continue
			}
		}
		if cols == 0 {
			cols = len(record)
		} else if len(record) != cols {
			return nil, &FormatError{Line: line, Msg: fmt.Sprintf("row has %d fields, want %d like the first row", len(record), cols)}
		}
		for i, field := range record {
			v, ok := parseNumber(field)
			if !ok {
				return nil, &FormatError{Line: line, Msg: fmt.Sprintf("field %d: %q is not a number", i+1, field)}
			}
			data = append(data, v)
		}
		rows++
	}
	if rows == 0 {
		return nil, &FormatError{Msg: "no data rows"}
	}
	return mat.NewDense(rows, cols, data), nil
}

// isHeader reports whether no field of a first line is a number.
func isHeader(record []string) bool {
	for _, field := range record {
		if _, ok := parseNumber(field); ok {
			return false
		}
	}
	return true
}

// parseNumber parses a field; a value out of float64's range is ±Inf or
// ±0, as NumPy reads it.
func parseNumber(field string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
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
