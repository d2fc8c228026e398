package matrix

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestDecodeCSV(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  *mat.Dense
	}{
		{"plain", "1,2,3\n4,5,6\n", dense(2, 3, 1, 2, 3, 4, 5, 6)},
		{"no final newline", "1,2\n3,4", dense(2, 2, 1, 2, 3, 4)},
		{"CRLF and spaces", " 1 , 2\r\n3,\t4 \r\n", dense(2, 2, 1, 2, 3, 4)},
		{"header skipped", "x,y\n1,2\n", dense(1, 2, 1, 2)},
		{"quoted header skipped", "\"col a\",\"col b\"\n1,2\n", dense(1, 2, 1, 2)},
		{"byte order mark and header", "\uFEFFa,b\n1,2\n", dense(1, 2, 1, 2)},
		{"byte order mark and data", "\uFEFF1,2\n", dense(1, 2, 1, 2)},
		{"comments and blank lines", "# written by numpy.savetxt\n\n1,2\n\n3,4\n", dense(2, 2, 1, 2, 3, 4)},
		{"exponents and specials", "1e3,-2.5E-2,nan\ninf,-Inf,0x1p-2\n", dense(2, 3, 1000, -0.025, math.NaN(), math.Inf(1), math.Inf(-1), 0.25)},
		{"out of range", "1e400,-1e400\n", dense(1, 2, math.Inf(1), math.Inf(-1))},
		{"single column", "1\n2\n3\n", dense(3, 1, 1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCSV(strings.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			assertEqualBits(t, tt.name, got, tt.want)
		})
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // after "file:"
	}{
		{"ragged row", "1,2,3\n4,5,6\n7,8\n", "3: row has 2 fields, want 3 like the first row"},
		{"ragged after header", "a,b\n1,2\n3,4,5\n", "3: row has 3 fields, want 2 like the first row"},
		{"bad number", "1,2\n3,x4\n", `2: field 2: "x4" is not a number`},
		{"partly numeric first line", "1,abc\n", `1: field 2: "abc" is not a number`},
		{"empty field", "1,,3\n", `1: field 2: "" is not a number`},
		{"bad quote", "1,\"2\n", "extraneous or missing \" in quoted-field"},
		{"empty file", "", "no data rows"},
		{"header only", "a,b\n", "no data rows"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "in.csv")
			if err := os.WriteFile(path, []byte(tt.input), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadCSV(path)
			var formatErr *FormatError
			if !errors.As(err, &formatErr) || !strings.HasPrefix(err.Error(), path+":") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadCSV error = %v, want a *FormatError %q", err, path+":"+tt.want)
			}
		})
	}
}

func TestCSVRoundTrip(t *testing.T) {
	m := dense(2, 3, 0.1, -1e-300, 1.0/3, math.NaN(), math.Inf(1), math.Inf(-1))
	path := filepath.Join(t.TempDir(), "m.csv")
	if err := WriteCSV(path, m); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if want := "0.1,-1e-300,0.3333333333333333\nNaN,+Inf,-Inf\n"; string(raw) != want {
		t.Fatalf("file %q, want %q", raw, want)
	}
	assertEqualBits(t, "round trip", mustRead(t, path), m)
}

// FuzzReadCSV checks that no input makes the CSV decoder panic, that every
// error is a *FormatError, and that what it accepts survives a round trip.
func FuzzReadCSV(f *testing.F) {
	for _, seed := range []string{"1,2\n3,4\n", "a,b\n1,2\n", "\uFEFF1\n", "# c\n1e3,nan\n", "1,\"2\"\n", "1,2\n3\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeCSV(bytes.NewReader(data))
		if err != nil {
			var formatErr *FormatError
			if !errors.As(err, &formatErr) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := EncodeCSV(&buf, m); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeCSV(&buf)
		if err != nil {
			t.Fatalf("re-reading what EncodeCSV wrote: %v", err)
		}
		assertEqualBits(t, "round trip", again, m)
	})
}
