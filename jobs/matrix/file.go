package matrix

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Read reads a matrix from a .npy or .csv file, chosen by the file name's
// extension (in any case). See [ReadNPY] and [ReadCSV].
func Read(path string) (*mat.Dense, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return ReadNPY(path)
	case ".csv":
		return ReadCSV(path)
	}
	return nil, unknownFormat(path)
}

// Write writes m to a .npy or .csv file, chosen by the file name's
// extension (in any case), replacing it atomically. See [WriteNPY] and
// [WriteCSV].
func Write(path string, m mat.Matrix) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return WriteNPY(path, m)
	case ".csv":
		return WriteCSV(path, m)
	}
	return unknownFormat(path)
}

func unknownFormat(path string) error {
	return &FormatError{File: path, Msg: fmt.Sprintf("unknown matrix format %q; want .npy or .csv", filepath.Ext(path))}
}

// writeFileAtomic writes a file through write so that it appears whole or
// not at all: it writes a temporary file in the same directory (a rename
// across file systems is not atomic) and renames it over path. On any
// error the temporary file is removed and path is left as it was. The new
// file has mode 0644.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the first error matters
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	// No fsync here: the jobs runner syncs the output file systems in
	// groups, before each sync of its journal, so a task costs no disk
	// flush of its own (see jobs.journal).
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadShape returns the rows and columns of the matrix in a .npy or .csv
// file, as [Read] would read it, without reading the matrix: a .npy file's
// header (see [DecodeNPYShape]), or a CSV file as a stream (see
// [DecodeCSVShape]). It fails where Read would, but for I/O errors past a
// .npy header.
func ReadShape(path string) (rows, cols int, err error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return ReadNPYShape(path)
	case ".csv":
		return ReadCSVShape(path)
	}
	return 0, 0, unknownFormat(path)
}

// ReadRows reads rows [row0, row1) of the matrix in a .npy or .csv file, as
// [Read] would read them, without holding the rest: a .npy file is read
// only where those rows are, a CSV file up to the last of them. It fails
// with [ErrShape] unless 0 <= row0 < row1 <= the matrix's rows.
func ReadRows(path string, row0, row1 int) (*mat.Dense, error) {
	if row0 >= row1 {
		return nil, fmt.Errorf("%s: %w: rows [%d, %d) are empty", path, ErrShape, row0, row1)
	}
	return readBlock(path, span{row0, row1}, span{})
}

// ReadColumns reads columns [col0, col1) of the matrix in a .npy or .csv
// file, as [Read] would read them, without holding the rest: a band of a
// product's right factor. It fails with [ErrShape] unless
// 0 <= col0 < col1 <= the matrix's columns.
func ReadColumns(path string, col0, col1 int) (*mat.Dense, error) {
	if col0 >= col1 {
		return nil, fmt.Errorf("%s: %w: columns [%d, %d) are empty", path, ErrShape, col0, col1)
	}
	return readBlock(path, span{}, span{col0, col1})
}

func readBlock(path string, rows, cols span) (*mat.Dense, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return readNPYBlock(path, rows, cols)
	case ".csv":
		return readCSVBlock(path, rows, cols)
	}
	return nil, unknownFormat(path)
}

// span selects [from, to) of a matrix's rows or columns; the zero span
// selects all of them.
type span struct{ from, to int }

// resolve returns the bounds of s in a dimension of size n.
func (s span) resolve(n int) (from, to int) {
	if s == (span{}) {
		return 0, n
	}
	return s.from, s.to
}
