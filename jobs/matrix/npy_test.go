package matrix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestReadNPYFixtures reads every dtype, byte order and memory order that
// NumPy wrote (testdata/make_fixtures.py) and compares with NumPy's own
// conversion to float64.
func TestReadNPYFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/npy/*_c.npy")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	fortran, _ := filepath.Glob("testdata/npy/*_f.npy")
	files = append(files, fortran...)
	if len(files) != 42 {
		t.Fatalf("found %d dtype fixtures, want 42", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			dtype := name[:2]
			want := mustRead(t, "testdata/npy/want_"+dtype+".npy")
			got := mustRead(t, file)
			assertEqualBits(t, name, got, want)
		})
	}
}

func TestReadNPYShapesAndVersions(t *testing.T) {
	floats := dense(3, 4, 0, -1.5, 2.25, 1024, 0.1, -7, 1e-3, 3.5, math.Copysign(0, -1), 65504, -2, 1.0/3)
	tests := []struct {
		file string
		want *mat.Dense
	}{
		{"v2_f8.npy", floats},
		{"v3_f8.npy", floats},
		{"f8_le_c.npy", floats},
		{"vector_f8.npy", dense(5, 1, 1.5, -2, 3.25, 4, 1e300)}, // 1-D reads as a column
		{"special_f8.npy", dense(2, 2, math.NaN(), math.Inf(1), math.Inf(-1), 5e-324)},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			assertEqualBits(t, tt.file, mustRead(t, "testdata/npy/"+tt.file), tt.want)
		})
	}
}

func TestReadNPYErrors(t *testing.T) {
	tests := []struct {
		file string
		want string // in the message, after the file name
	}{
		{"3d.npy", "3-D arrays are not supported (shape (2, 3, 4))"},
		{"scalar.npy", "0-D (scalar) arrays are not supported"},
		{"empty.npy", "empty arrays are not supported (shape (0, 3))"},
		{"complex.npy", `complex dtype "<c16" is not supported`},
		{"object.npy", `object dtype "|O" is not supported`},
		{"string.npy", `string dtype "<U2" is not supported`},
		{"structured.npy", "structured dtype (a record array) is not supported"},
		{"datetime.npy", `unsupported dtype "<M8[s]"`},
		{"truncated.npy", "truncated .npy: shape (3, 4) of <f8 needs 96 data bytes, the file has 91"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := ReadNPY(path)
			var formatErr *FormatError
			if !errors.As(err, &formatErr) {
				t.Fatalf("ReadNPY(%s) error = %v, want a *FormatError", path, err)
			}
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q naming the file", err, path+": ..."+tt.want)
			}
		})
	}
}

// npyBytes builds a .npy file with the given version, header text and data
// length, for crafted inputs.
func npyBytes(major byte, header string, data int) []byte {
	b := []byte(npyMagic)
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	}
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestDecodeNPYCrafted(t *testing.T) {
	header := func(descr, shape string) string {
		return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }\n"
	}
	hugeLength := []byte(npyMagic + "\x02\x00\xff\xff\xff\x7f{")
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "too short"},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x10\x00{}"), "does not start with"},
		{"version 4", npyBytes(4, header("<f8", "(1, 1)"), 8), "unsupported .npy format version 4.0"},
		{"header longer than file", hugeLength, "its length 2147483647 exceeds the 1 bytes left"},
		{"huge shape", npyBytes(1, header("<f8", "(4000000000, 4000000000)"), 8), "does not fit in a file"},
		{"shape product overflows", npyBytes(1, header("<f8", "(9223372036854775807, 9223372036854775807)"), 8), "does not fit in a file"},
		{"shape needs more bytes", npyBytes(1, header("<f8", "(3, 4)"), 80), "needs 96 data bytes, the file has 80"},
		{"trailing bytes", npyBytes(1, header("<f8", "(1, 1)"), 9), "1 unexpected bytes after the data"},
		{"negative dimension", npyBytes(1, header("<f8", "(-1, 2)"), 8), "negative dimension"},
		{"shape of floats", npyBytes(1, header("<f8", "(1.5, 2)"), 8), "bad .npy header"},
		{"missing key", npyBytes(1, "{'descr': '<f8', 'shape': (1, 1)}", 8), "want exactly the keys"},
		{"extra key", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", 8), "want exactly the keys"},
		{"not a dict", npyBytes(1, "[1, 2]", 8), "not a dict"},
		{"deep nesting", npyBytes(1, "{'descr': "+strings.Repeat("[", 100), 8), "nested too deeply"},
		{"unterminated", npyBytes(1, "{'descr': '<f8", 8), "unterminated string"},
		{"fortran not bool", npyBytes(1, "{'descr': '<f8', 'fortran_order': 1, 'shape': (1,)}", 8), "'fortran_order' is not True or False"},
		{"native order", npyBytes(1, header("=f8", "(1,)"), 8), "native byte order"},
		{"no order on wide type", npyBytes(1, header("|i4", "(1,)"), 4), "has no byte order"},
		{"half float size", npyBytes(1, header("<f3", "(1,)"), 3), "unsupported dtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeNPY(bytes.NewReader(tt.input), int64(len(tt.input)))
			var formatErr *FormatError
			if !errors.As(err, &formatErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeNPY error = %v, want a *FormatError containing %q", err, tt.want)
			}
		})
	}
}

// TestDecodeNPYDoesNotAllocateWhatTheHeaderClaims checks that a header
// claiming a 128 GB array in a 100-byte file costs almost nothing.
func TestDecodeNPYDoesNotAllocateWhatTheHeaderClaims(t *testing.T) {
	input := npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000, 4000), }", 16)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := DecodeNPY(bytes.NewReader(input), int64(len(input))); err == nil {
			t.Fatal("DecodeNPY accepted a shape larger than the file")
		}
	}
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Fatalf("10 decodes allocated %d bytes", allocated)
	}
}

func TestNPYRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		m         mat.Matrix
		wantShape string
	}{
		{"matrix", dense(2, 3, 1, -2, 3.5, math.NaN(), math.Inf(-1), 5e-324), "(2, 3)"},
		{"column", dense(3, 1, 1, 2, 3), "(3, 1)"},
		{"vector", mat.NewVecDense(3, []float64{1, 2, 3}), "(3,)"},
		{"transposed view", dense(2, 3, 1, 2, 3, 4, 5, 6).T(), "(3, 2)"},
		{"wide", mat.NewDense(1, 10000, nil), "(1, 10000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".npy")
			if err := WriteNPY(path, tt.m); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			headerLen := int(binary.LittleEndian.Uint16(raw[8:10]))
			header := string(raw[10 : 10+headerLen])
			if (10+headerLen)%64 != 0 || !strings.HasSuffix(header, "\n") ||
				!strings.HasPrefix(header, "{'descr': '<f8', 'fortran_order': False, 'shape': "+tt.wantShape+", }") {
				t.Fatalf("header %q (length %d): want NumPy's layout with shape %s, data aligned to 64", header, headerLen, tt.wantShape)
			}
			assertEqualBits(t, tt.name, mustRead(t, path), tt.m)
		})
	}
}

// FuzzReadNPY checks that no input makes the decoder panic or allocate
// beyond the input's size, and that whatever it accepts survives a round
// trip through the writer.
func FuzzReadNPY(f *testing.F) {
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
	f.Add(npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 4000000000), }", 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeNPY(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var formatErr *FormatError
			if !errors.As(err, &formatErr) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		rows, cols := m.Dims()
		if rows*cols > len(data) {
			t.Fatalf("decoded %d×%d from %d bytes", rows, cols, len(data))
		}
		var buf bytes.Buffer
		if err := EncodeNPY(&buf, m); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeNPY(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("re-reading what EncodeNPY wrote: %v", err)
		}
		assertEqualBits(t, "round trip", again, m)
	})
}

// TestNPYHeaderErrorsBounded: an error about a malformed header quotes a
// bounded excerpt of it, however long the header or the token at fault, so
// that a results line stays short.
func TestNPYHeaderErrorsBounded(t *testing.T) {
	long := strings.Repeat("x", 60000)
	digits := strings.Repeat("7", 60000)
	tests := []struct{ name, header, want string }{
		{"garbage", "{" + long, `bad .npy header "{xxxx`},
		{"extra keys", "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), 'x': '" + long + "'}", "want exactly the keys"},
		{"long key", "{'" + long + "' 1}", "want ':' after key"},
		{"bad integer", "{'descr': '<f8', 'fortran_order': False, 'shape': (" + digits + ", 1)}", "bad integer"},
		{"long descr", "{'descr': '<" + long + "', 'fortran_order': False, 'shape': (1, 1)}", "unsupported dtype"},
		{"descr list", "{'descr': (" + strings.Repeat("1, ", 20000) + "), 'fortran_order': False, 'shape': (1, 1)}", "'descr' is"},
		{"many dimensions", "{'descr': '<f8', 'fortran_order': False, 'shape': (" + strings.Repeat("1, ", 20000) + ")}", "-D arrays are not supported"},
		{"shape not a tuple", "{'descr': '<f8', 'fortran_order': False, 'shape': '" + long + "'}", "'shape' is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := npyBytes(2, tt.header, 8)
			_, err := DecodeNPY(bytes.NewReader(data), int64(len(data)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %.300v, want %q", err, tt.want)
			}
			t.Log(err)
			if len(err.Error()) > 1000 {
				t.Fatalf("a message of %d bytes for a header of %d: %.300s…", len(err.Error()), len(tt.header), err)
			}
		})
	}
}
