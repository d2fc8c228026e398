package jpegdc

import "testing"

// The luminance AC table of the JPEG standard (ITU T.81 Annex K.3), which
// most encoders write unchanged.
var (
	stdLumaACCounts = [17]int{0, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d}
	stdLumaACSyms   = []byte{
		0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
		0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
		0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
		0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
		0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
		0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
)

func stdLumaAC(t *testing.T) *acTable {
	t.Helper()
	var h huffman
	if err := h.build(&stdLumaACCounts, stdLumaACSyms); err != nil {
		t.Fatal(err)
	}
	return newACTable(&h)
}

// bitsIndex reads a string of 0s and 1s, padded with 0s, as a table index.
func bitsIndex(s string) uint64 {
	var v uint64
	for i := range acBits {
		v <<= 1
		if i < len(s) && s[i] == '1' {
			v |= 1
		}
	}
	return v
}

// One lookup of the multi table skips a run of short symbols: four
// coefficients of ±1 (code 00, one value bit) in twelve bits, which took
// two lookups with pairs; a symbol and an end of block; never past an
// end of block.
func TestACMultiEntry(t *testing.T) {
	ac := stdLumaAC(t)
	for _, tc := range []struct {
		bits         string
		skip, covers int
		eob          bool
	}{
		{"001" + "000" + "001" + "001", 12, 4, false}, // (0,1) ×4
		{"001" + "1010" + "001", 7, 1, true},          // (0,1), EOB: the (0,1) after it is the next block's
		{"1010" + "001", 4, 0, true},                  // EOB alone
		{"0110" + "001" + "001" + "1", 10, 3, false},  // (0,2) (0,1) (0,1), and the next code longer than the 2 bits left
		{"11111111001" + "0", 11, 16, false},          // a run of 16 zeros (ZRL), the next code outside
	} {
		e := ac.multi[bitsIndex(tc.bits)]
		skip, covers, eob := int(e&63), int(e>>acCountShift&63), e&acEOB != 0
		if skip != tc.skip || covers != tc.covers || eob != tc.eob {
			t.Errorf("%s: entry skips %d bits, covers %d, EOB %v; want %d, %d, %v", tc.bits, skip, covers, eob, tc.skip, tc.covers, tc.eob)
		}
	}
}

// Every multi entry is what decoding its symbols one at a time from the
// Huffman code gives: the first symbol, then each next one whose code is
// all inside the index, while the symbols so far cover at most 16
// coefficients and have not ended the block.
func TestACMultiMatchesSymbols(t *testing.T) {
	ac := stdLumaAC(t)
	for i := range uint64(1 << acBits) {
		want := multiReference(ac, i)
		if got := ac.multi[i]; got != want {
			t.Fatalf("index %0*b: entry %#x, want %#x", acBits, i, got, want)
		}
	}
}

func multiReference(ac *acTable, i uint64) uint16 {
	v := i << (64 - acBits)
	used, covers := 0, 0
	for n := 0; ; n++ {
		l, sym, ok := ac.h.decode(v << used)
		if !ok || used+int(l) > acBits {
			if n == 0 {
				return 0 // the slow path's
			}
			break
		}
		e, ok := acEntry(int(l), sym)
		if !ok {
			if n == 0 {
				return 0
			}
			break
		}
		used += int(e & 63)
		covers += int(e >> acCountShift & 63)
		if e&acEOB != 0 {
			return uint16(used) | uint16(covers)<<acCountShift | acEOB
		}
		if used >= acBits || covers > 16 {
			break
		}
	}
	return uint16(used) | uint16(covers)<<acCountShift
}

// A worker decoding file after file with the same AC table builds it
// once; another table is built anew.
func TestACTableCached(t *testing.T) {
	spec := func(counts [17]int, syms []byte) ([]byte, *huffman) {
		b := make([]byte, 0, 16+len(syms))
		for _, c := range counts[1:] {
			b = append(b, byte(c))
		}
		h := new(huffman)
		if err := h.build(&counts, syms); err != nil {
			t.Fatal(err)
		}
		return append(b, syms...), h
	}
	s1, h1 := spec(stdLumaACCounts, stdLumaACSyms)
	a := cachedACTable(s1, h1)
	if b := cachedACTable(s1, h1); a != b {
		t.Error("the same AC table was built twice")
	}
	if a.multi != newACTable(h1).multi {
		t.Error("the cached table differs from newACTable's")
	}
	other := append([]byte(nil), stdLumaACSyms...)
	other[0], other[1] = other[1], other[0] // (0,1) and (0,2) swap codes
	s2, h2 := spec(stdLumaACCounts, other)
	if b := cachedACTable(s2, h2); a == b {
		t.Error("another table's symbols got the cached table")
	}
}
