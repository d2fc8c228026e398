package matrix

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/ppool/ppool/jobs"
)

// TestRandomBlock: a block generated alone is the same bits as that block
// of the whole matrix, so a tile may generate only its bands; and the whole
// matrix is still the sequence of the seed's generator (the values ppool
// has always written).
func TestRandomBlock(t *testing.T) {
	whole, _ := Random(37, 53, 7)
	for _, b := range [][4]int{{0, 37, 0, 53}, {0, 1, 0, 1}, {36, 37, 52, 53}, {5, 20, 0, 53}, {0, 37, 10, 11}, {3, 30, 17, 40}} {
		got, err := randomBlock(37, 53, 7, b[0], b[1], b[2], b[3])
		if err != nil {
			t.Fatal(err)
		}
		assertEqualBits(t, fmt.Sprint("block ", b), got, whole.Slice(b[0], b[1], b[2], b[3]))
	}
	// Far jumps: the last values of a 2000×3000 matrix.
	big, _ := Random(2000, 3000, 99)
	got, _ := randomBlock(2000, 3000, 99, 1990, 2000, 2900, 3000)
	assertEqualBits(t, "far block", got, big.Slice(1990, 2000, 2900, 3000))
	for _, seed := range []uint64{0, 1, 1 << 63} {
		source := rand.NewPCG(seed, 0)
		m, _ := Random(1, 3, seed)
		for j := range 3 {
			if v := float64(source.Uint64()>>11) * 0x1p-53; v != m.At(0, j) {
				t.Fatalf("seed %d: value %d is %v, the generator's is %v", seed, j, m.At(0, j), v)
			}
		}
	}
	id, _ := Identity(9)
	for _, b := range [][4]int{{0, 9, 0, 9}, {2, 5, 0, 9}, {0, 9, 4, 6}, {6, 9, 0, 3}} {
		got, err := identityBlock(9, b[0], b[1], b[2], b[3])
		if err != nil {
			t.Fatal(err)
		}
		assertEqualBits(t, fmt.Sprint("identity block ", b), got, id.Slice(b[0], b[1], b[2], b[3]))
	}
	if _, err := randomBlock(4, 4, 1, 0, 5, 0, 4); !errors.Is(err, ErrShape) {
		t.Errorf("a block outside the matrix: error %v, want ErrShape", err)
	}
}

// shapeCases are CSV inputs for the shape and band readers: every way in
// and out of the quote-free path, and errors.
var shapeCSVCases = []string{
	"1,2,3\n4,5,6\n", "1,2\n3,4", " 1 , 2\r\n3,\t4 \r\n", "x,y\n1,2\n", "\"col a\",\"col b\"\n1,2\n",
	"\uFEFFa,b\n1,2\n", "\uFEFF1,2\n", "# c\n\n1,2\n\n3,4\n", "1e3,nan\ninf,-Inf\n", "1\n2\n3\n",
	"1,2\n\"3\",4\n5,6\n", "1,2\n\"3\n\",4\n5,6\n", "1,\"2\"\n3,4\r\n# x\n5,6\r", "1,2,3\n4,5,6\n7,8\n",
	"1,2\n3,x4\n", "1,,3\n", "1,\"2\n", "", "a,b\n", "1,2\n3,4\n\"5\",6,7\n", "1\r\r\n2\n", "\r\n1\n",
}

// TestShapeAgreesWithRead: ReadShape gives Read's dimensions, or Read's
// error, for every fixture and case, reading no matrix.
func TestShapeAgreesWithRead(t *testing.T) {
	files, _ := filepath.Glob("testdata/npy/*.npy")
	bad, _ := filepath.Glob("testdata/bad/*.npy")
	files = append(files, bad...)
	dir := t.TempDir()
	for i, c := range shapeCSVCases {
		path := filepath.Join(dir, fmt.Sprintf("case%02d.csv", i))
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	for _, path := range files {
		m, readErr := Read(path)
		rows, cols, err := ReadShape(path)
		if readErr != nil {
			if err == nil || err.Error() != readErr.Error() {
				t.Errorf("%s: ReadShape error %v, Read's %v", path, err, readErr)
			}
			continue
		}
		if r, c := m.Dims(); err != nil || rows != r || cols != c {
			t.Errorf("%s: ReadShape = %d×%d, %v; Read gives %d×%d", path, rows, cols, err, r, c)
		}
	}
}

// TestReadBands: ReadRows and ReadColumns read what Read's matrix has
// there, in C and Fortran order, for 1-D arrays and for CSV files on and
// off the quote-free path; and fail with ErrShape outside the matrix.
func TestReadBands(t *testing.T) {
	files, _ := filepath.Glob("testdata/npy/*.npy")
	dir := t.TempDir()
	for i, c := range shapeCSVCases {
		path := filepath.Join(dir, fmt.Sprintf("case%02d.csv", i))
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	big := filepath.Join(dir, "big.npy")
	r, _ := Random(300, 20000, 3) // rows longer than one 64 KiB read
	if err := Write(big, r); err != nil {
		t.Fatal(err)
	}
	files = append(files, big)
	for _, path := range files {
		m, err := Read(path)
		if err != nil {
			continue
		}
		rows, cols := m.Dims()
		for _, s := range [][2]int{{0, 1}, {rows - 1, rows}, {rows / 3, rows - rows/3}, {0, rows}} {
			if s[0] >= s[1] {
				continue
			}
			got, err := ReadRows(path, s[0], s[1])
			if err != nil {
				t.Fatalf("%s: ReadRows(%d, %d): %v", path, s[0], s[1], err)
			}
			assertEqualBits(t, fmt.Sprintf("%s rows %v", path, s), got, m.Slice(s[0], s[1], 0, cols))
		}
		for _, s := range [][2]int{{0, 1}, {cols - 1, cols}, {cols / 3, cols - cols/3}, {0, cols}} {
			if s[0] >= s[1] {
				continue
			}
			got, err := ReadColumns(path, s[0], s[1])
			if err != nil {
				t.Fatalf("%s: ReadColumns(%d, %d): %v", path, s[0], s[1], err)
			}
			assertEqualBits(t, fmt.Sprintf("%s cols %v", path, s), got, m.Slice(0, rows, s[0], s[1]))
		}
		if _, err := ReadRows(path, rows-1, rows+1); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: rows past the end: error %v, want ErrShape naming the file", path, err)
		}
		if _, err := ReadColumns(path, 0, cols+1); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: columns past the end: error %v, want ErrShape naming the file", path, err)
		}
	}
}

// allocated returns the bytes that f allocates on the heap, in all.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bigInputs writes a and b, n×n each, as .npy and as .csv files of 20 MB
// or more.
func bigInputs(t *testing.T, dir string, n int) map[string][2]string {
	t.Helper()
	a, _ := Random(n, n, 1)
	b, _ := Random(n, n, 2)
	files := map[string][2]string{}
	for _, ext := range []string{"npy", "csv"} {
		pa, pb := filepath.Join(dir, "a."+ext), filepath.Join(dir, "b."+ext)
		if err := Write(pa, a); err != nil {
			t.Fatal(err)
		}
		if err := Write(pb, b); err != nil {
			t.Fatal(err)
		}
		files[ext] = [2]string{pa, pb}
	}
	return files
}

// TestBigProductMemory: neither the master nor a worker holds a whole
// factor of a split product of two 1600×1600 inputs, 20 MB files each.
func TestBigProductMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MB of inputs")
	}
	const n = 1600
	dir := t.TempDir()
	files := bigInputs(t, dir, n)
	t.Run("planner", func(t *testing.T) { testSplitPlannerMemoryFlat(t, files) })
	t.Run("tile", func(t *testing.T) { testTileReadsItsBands(t, dir, n, files) })
}

// testSplitPlannerMemoryFlat: the master plans the tiles of a product of
// two 20 MB files (.npy and .csv) allocating less than 1 MiB in all: it
// reads a .npy header and counts a CSV's rows as a stream, and never holds
// either matrix.
func testSplitPlannerMemoryFlat(t *testing.T, files map[string][2]string) {
	defer func(f, s int) { splitFlops, tileSize = f, s }(splitFlops, tileSize)
	splitFlops, tileSize = 1000, 512
	k, _ := jobs.LookupKind("matrix.multiply")
	for ext, paths := range files {
		if info, _ := os.Stat(paths[0]); info.Size() < 20e6 {
			t.Fatalf("%s is only %d bytes", paths[0], info.Size())
		}
		task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Inputs: map[string]jobs.Input{"a": {Path: paths[0]}, "b": {Path: paths[1]}}}
		var parts []jobs.Part
		var err error
		used := allocated(func() { parts, err = k.Split(&task) })
		if err != nil || len(parts) != 16 {
			t.Fatalf("%s: split into %d tiles, %v; want 4×4", ext, len(parts), err)
		}
		t.Logf("%s: planning allocated %d bytes", ext, used)
		if used > 1<<20 {
			t.Errorf("%s: planning the tiles of two 1600×1600 inputs allocated %d bytes, want under 1 MiB", ext, used)
		}
	}
}

// testTileReadsItsBands: a tile of a split product reads or generates only
// the rows of a and the columns of b that it multiplies: a 64-wide tile of
// a product of two 1600×1600 inputs (20 MB each as .npy) allocates little
// more than its two 800 kB bands, whatever the inputs are.
func testTileReadsItsBands(t *testing.T, dir string, n int, files map[string][2]string) {
	const tile = 64
	k, _ := jobs.LookupKind("matrix.multiply")
	inputs := map[string]map[string]jobs.Input{
		"generated": {"a": {Gen: &jobs.Generator{Kind: "random", Shape: []int{n, n}, Seed: 1}}, "b": {Gen: &jobs.Generator{Kind: "identity", Shape: []int{n, n}}}},
	}
	for ext, paths := range files {
		inputs[ext] = map[string]jobs.Input{"a": {Path: paths[0]}, "b": {Path: paths[1]}}
	}
	if _, err := Multiply(dense(1, 1, 1), dense(1, 1, 1)); err != nil { // the backend's one-time set-up
		t.Fatal(err)
	}
	bands := uint64(2 * tile * n * 8)
	for name, in := range inputs {
		part := jobs.Part{Index: 5, Row0: 3 * tile, Row1: 4 * tile, Col0: 7 * tile, Col1: 8 * tile, Path: filepath.Join(dir, name+"-tile.npy")}
		task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "part", Inputs: in, Part: &part}
		var err error
		used := allocated(func() { _, err = k.Run(context.Background(), &task) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: the tile allocated %d bytes; its bands are %d", name, used, bands)
		if used > 2*bands+1<<20 {
			t.Errorf("%s: a %d×%d tile of a %d×%d product allocated %d bytes; its bands are %d", name, tile, tile, n, n, used, bands)
		}
		var a, b *mat.Dense
		if name == "generated" {
			a, _ = Random(n, n, 1)
			b, _ = Identity(n)
		} else {
			a, b = mustRead(t, in["a"].Path), mustRead(t, in["b"].Path)
		}
		want, err := MultiplyTile(a, b, Tile{part.Row0, part.Row1, part.Col0, part.Col1})
		if err != nil {
			t.Fatal(err)
		}
		assertEqualBits(t, name+" tile", mustRead(t, part.Path), want)
	}
}

// decodeCSVReference is DecodeCSV as it was before it read lines itself:
// every record through encoding/csv. FuzzReadShape holds DecodeCSV and
// DecodeCSVShape to it.
func decodeCSVReference(r io.Reader) (*mat.Dense, error) {
	reader := csv.NewReader(r)
	reader.FieldsPerRecord = -1
	reader.Comment = '#'
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
			return nil, err
		}
		line, _ := reader.FieldPos(0)
		fields := make([][]byte, len(record))
		for i, f := range record {
			fields[i] = []byte(f)
		}
		if first {
			first = false
			fields[0] = bytes.TrimPrefix(fields[0], []byte("\uFEFF"))
			if isHeader(fields) {
				continue
			}
		}
		if cols == 0 {
			cols = len(fields)
		} else if len(fields) != cols {
			return nil, &FormatError{Line: line, Msg: fmt.Sprintf("row has %d fields, want %d like the first row", len(fields), cols)}
		}
		for i, field := range fields {
			v, ok := parseNumber(field)
			if !ok {
				return nil, &FormatError{Line: line, Msg: fmt.Sprintf("field %d: %s is not a number", i+1, quoteExcerpt(string(field)))}
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

// FuzzReadShape: the shape readers never panic, fail only with a
// *FormatError quoting a bounded excerpt of the input, and agree with the
// full readers: the same dimensions when they succeed, the same error when
// they fail. The CSV readers agree with encoding/csv too (as
// decodeCSVReference reads it): the same matrix or the same error.
func FuzzReadShape(f *testing.F) {
	for _, pattern := range []string{"testdata/npy/*.npy", "testdata/bad/*.npy"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add(npyBytes(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 48))
	f.Add(npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': ("+strings.Repeat("1, ", 3000)+"), }", 8))
	for _, c := range shapeCSVCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxMessage = 2 * maxExcerpt * 3 // a few quoted excerpts
		checkErr := func(what string, err error) {
			var formatErr *FormatError
			if !errors.As(err, &formatErr) {
				t.Fatalf("%s: error %v is not a *FormatError", what, err)
			}
			if len(err.Error()) > maxMessage {
				t.Fatalf("%s: a message of %d bytes: %.300s…", what, len(err.Error()), err)
			}
		}
		m, err := DecodeNPY(bytes.NewReader(data), int64(len(data)))
		rows, cols, shapeErr := DecodeNPYShape(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			checkErr("DecodeNPY", err)
			if shapeErr == nil || shapeErr.Error() != err.Error() {
				t.Fatalf("DecodeNPYShape error %v, DecodeNPY's %v", shapeErr, err)
			}
		} else if r, c := m.Dims(); shapeErr != nil || r != rows || c != cols {
			t.Fatalf("DecodeNPYShape = %d×%d, %v; DecodeNPY %d×%d", rows, cols, shapeErr, r, c)
		}

		want, wantErr := decodeCSVReference(bytes.NewReader(data))
		m, err = DecodeCSV(bytes.NewReader(data))
		rows, cols, shapeErr = DecodeCSVShape(bytes.NewReader(data))
		if wantErr != nil {
			checkErr("DecodeCSV", err)
			if err == nil || err.Error() != wantErr.Error() || shapeErr == nil || shapeErr.Error() != wantErr.Error() {
				t.Fatalf("DecodeCSV error %v, DecodeCSVShape's %v; encoding/csv's %v", err, shapeErr, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeCSV: %v; encoding/csv reads %v", err, mat.Formatted(want))
		}
		assertEqualBits(t, "DecodeCSV", m, want)
		if r, c := want.Dims(); shapeErr != nil || r != rows || c != cols {
			t.Fatalf("DecodeCSVShape = %d×%d, %v; DecodeCSV %d×%d", rows, cols, shapeErr, r, c)
		}
	})
}
