package image

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"math/rand/v2"
	"os"
	"testing"
)

// rawPNG is a PNG written from raw samples, for the layouts image/png's
// encoder never writes (grey below 8 bits, tRNS on grey and RGB,
// interlacing aside) and with every filter type, chosen per row at random.
type rawPNG struct {
	w, h             int
	depth, colorType byte
	plte, trns       []byte
	seed             uint64
}

func (p rawPNG) encode(t testing.TB) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(p.seed, 7))
	channels := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[p.colorType]
	bits := int(p.depth) * channels
	rowBytes, bpp := (bits*p.w+7)/8, (bits+7)/8
	var raw bytes.Buffer
	prev := make([]byte, rowBytes)
	for y := range p.h {
		row := make([]byte, rowBytes)
		for i := range row {
			// Smooth with noise, so every filter has something to do.
			row[i] = byte(i*3+y*5) + byte(rng.IntN(7))
		}
		if p.colorType == 3 { // indices within the palette, mostly
			for i := range row {
				row[i] &= byte(1<<min(p.depth, 8) - 1)
			}
		}
		filter := byte(rng.IntN(5))
		out := make([]byte, rowBytes)
		for i := range row {
			var a, b, c int
			if i >= bpp {
				a, c = int(row[i-bpp]), int(prev[i-bpp])
			}
			b = int(prev[i])
			var pred int
			switch filter {
			case 1:
				pred = a
			case 2:
				pred = b
			case 3:
				pred = (a + b) / 2
			case 4:
				pa, pb, pc := absInt(b-c), absInt(a-c), absInt(a+b-2*c)
				switch {
				case pa <= pb && pa <= pc:
					pred = a
				case pb <= pc:
					pred = b
				default:
					pred = c
				}
			}
			out[i] = row[i] - byte(pred)
		}
		raw.WriteByte(filter)
		raw.Write(out)
		prev = row
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	chunk := func(b []byte, typ string, data []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		c := append([]byte(typ), data...)
		return binary.BigEndian.AppendUint32(append(b, c...), crc32.ChecksumIEEE(c))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(p.w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(p.h))
	b := chunk([]byte(pngMagic), "IHDR", append(ihdr, p.depth, p.colorType, 0, 0, 0))
	if p.plte != nil {
		b = chunk(b, "PLTE", p.plte)
	}
	if p.trns != nil {
		b = chunk(b, "tRNS", p.trns)
	}
	// The data in chunks of various sizes, as writers split it.
	zb := z.Bytes()
	for len(zb) > 0 {
		n := min(len(zb), 1+rng.IntN(4000))
		b = chunk(b, "IDAT", zb[:n])
		zb = zb[n:]
	}
	return chunk(b, "IEND", nil)
}

// TestDecodePNGRows: any band of rows of a PNG, of every layout and with
// every filter, decodes alone to the same bytes as the same rows of the
// whole image.
func TestDecodePNGRows(t *testing.T) {
	plte := func(n int) []byte {
		b := make([]byte, 3*n)
		for i := range b {
			b[i] = byte(i * 37)
		}
		return b
	}
	cases := map[string][]byte{}
	for _, depth := range []byte{1, 2, 4, 8, 16} {
		cases[fmt.Sprintf("grey%d", depth)] = rawPNG{w: 37, h: 41, depth: depth, colorType: 0, seed: uint64(depth)}.encode(t)
		cases[fmt.Sprintf("grey%d+tRNS", depth)] = rawPNG{w: 37, h: 41, depth: depth, colorType: 0, trns: []byte{0, 1}, seed: uint64(depth)}.encode(t)
		if depth <= 8 {
			cases[fmt.Sprintf("palette%d", depth)] = rawPNG{w: 37, h: 41, depth: depth, colorType: 3, plte: plte(min(1<<depth, 200)), trns: []byte{0, 128, 255}, seed: 3}.encode(t)
		}
	}
	for _, depth := range []byte{8, 16} {
		cases[fmt.Sprintf("RGB%d", depth)] = rawPNG{w: 29, h: 40, depth: depth, colorType: 2, seed: 4}.encode(t)
		cases[fmt.Sprintf("RGB%d+tRNS", depth)] = rawPNG{w: 29, h: 40, depth: depth, colorType: 2, trns: []byte{0, 9, 0, 15, 0, 21}, seed: 4}.encode(t)
		cases[fmt.Sprintf("greyalpha%d", depth)] = rawPNG{w: 29, h: 40, depth: depth, colorType: 4, seed: 5}.encode(t)
		cases[fmt.Sprintf("RGBA%d", depth)] = rawPNG{w: 29, h: 40, depth: depth, colorType: 6, seed: 6}.encode(t)
	}
	for _, name := range []string{"photo.png", "small.png", "small16.png", "gray_alpha.png", "palette_trns.png", "rgba.png"} {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			t.Fatal(err)
		}
		cases[name] = data
	}
	for name, data := range cases {
		whole, err := decode(data, loadBudget())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !pngStreamable(data) {
			t.Fatalf("%s: not streamable", name)
		}
		w, h := whole.Rect.Dx(), whole.Rect.Dy()
		for _, band := range [][2]int{{0, h}, {0, 1}, {h - 1, h}, {1, h - 1}, {h / 3, h/3 + 5}, {h / 2, h}} {
			b := loadBudget()
			b.rows = func(int) (int, int) { return band[0], band[1] }
			got, err := decode(data, b)
			if err != nil {
				t.Errorf("%s rows %v: %v", name, band, err)
				continue
			}
			want := Crop(whole, image.Rect(0, band[0], w, band[1]))
			if !equalPix(got, want) {
				t.Errorf("%s rows %v: differ from the whole image's", name, band)
			}
		}
	}
}

// TestDecodePNGRowsErrors: a band decoded alone fails as the whole image
// does when its own rows are damaged, and the last band checks what the
// whole decoding checks after the pixels.
func TestDecodePNGRowsErrors(t *testing.T) {
	data := rawPNG{w: 50, h: 60, depth: 8, colorType: 2, seed: 1}.encode(t)
	bad := bytes.Clone(data)
	bad[len(bad)-20] ^= 0xff // in the last IDAT: its CRC fails
	noEnd := data[:len(data)-12]
	for _, tc := range []struct {
		name   string
		data   []byte
		y0, y1 int
		is     error
	}{
		{"crc", bad, 50, 60, ErrCorrupt},
		{"half", data[:len(data)/2], 40, 60, ErrTruncated},
		{"noend", noEnd, 50, 60, ErrTruncated},
	} {
		b := loadBudget()
		b.rows = func(int) (int, int) { return tc.y0, tc.y1 }
		if _, err := decode(tc.data, b); !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
	}
	// Rows above the damage decode.
	b := loadBudget()
	b.rows = func(int) (int, int) { return 0, 5 }
	if _, err := decode(noEnd, b); err != nil {
		t.Errorf("top rows of a file cut short: %v", err)
	}
}
