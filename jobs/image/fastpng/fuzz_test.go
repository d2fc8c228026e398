package fastpng

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
)

// fuzzImage makes an image of one of the types Encode handles, from the
// fuzzer's bytes: kind picks the type, w and h the size (1 to 64), and pix
// fills the pixels, repeated as needed.
func fuzzImage(kind, w, h uint8, pix []byte) image.Image {
	r := image.Rect(0, 0, 1+int(w)%64, 1+int(h)%64)
	fill := func(dst []byte) {
		if len(pix) == 0 {
			return
		}
		for i := range dst {
			dst[i] = pix[i%len(pix)]
		}
	}
	switch kind % 9 {
	case 0:
		m := image.NewGray(r)
		fill(m.Pix)
		return m
	case 1:
		m := image.NewGray16(r)
		fill(m.Pix)
		return m
	case 2:
		m := image.NewNRGBA(r)
		fill(m.Pix)
		return m
	case 3: // opaque NRGBA, the commonest image ppool writes
		m := image.NewNRGBA(r)
		fill(m.Pix)
		for i := 3; i < len(m.Pix); i += 4 {
			m.Pix[i] = 0xff
		}
		return m
	case 4: // a valid premultiplied RGBA: no colour above its alpha
		m := image.NewRGBA(r)
		fill(m.Pix)
		for i := 0; i < len(m.Pix); i += 4 {
			for c := range 3 {
				m.Pix[i+c] = min(m.Pix[i+c], m.Pix[i+3])
			}
		}
		return m
	case 5:
		m := image.NewNRGBA64(r)
		fill(m.Pix)
		return m
	case 6:
		m := image.NewRGBA64(r)
		fill(m.Pix)
		for i := 0; i < len(m.Pix); i += 8 {
			a := uint16(m.Pix[i+6])<<8 | uint16(m.Pix[i+7])
			for c := 0; c < 6; c += 2 {
				v := min(uint16(m.Pix[i+c])<<8|uint16(m.Pix[i+c+1]), a)
				m.Pix[i+c], m.Pix[i+c+1] = uint8(v>>8), uint8(v)
			}
		}
		return m
	case 7:
		m := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		return m
	default:
		m := image.NewPaletted(r, color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 128}})
		fill(m.Pix)
		for i := range m.Pix {
			m.Pix[i] %= 3
		}
		return m
	}
}

// FuzzEncodeRoundTrip: for any image of any handled type and any level,
// image/png decodes Encode's file to exactly what it decodes image/png's
// own file to.
func FuzzEncodeRoundTrip(f *testing.F) {
	rng := rand.New(rand.NewPCG(13, 14))
	for kind := range uint8(9) {
		pix := make([]byte, 97)
		for i := range pix {
			pix[i] = uint8(rng.Uint32())
		}
		f.Add(kind, uint8(7+kind), uint8(5), uint8(kind), pix)
	}
	f.Fuzz(func(t *testing.T, kind, w, h, level uint8, pix []byte) {
		img := fuzzImage(kind, w, h, pix)
		var buf bytes.Buffer
		if err := Encode(&buf, img, int(level%10)); err != nil {
			t.Fatal(err)
		}
		got := mustDecodeStdlib(t, buf.Bytes())
		want := mustDecodeStdlib(t, stdlibPNG(t, img))
		if !sameImage(got, want) {
			t.Fatalf("%T %v at level %d: image/png decodes other pixels than from its own file", img, img.Bounds(), level%10)
		}
	})
}

// fuzzMaxBytes keeps the fuzzer from allocating big images: files over it
// are refused by Decode and not given to image/png at all.
const fuzzMaxBytes = 1 << 20

// FuzzDecode: Decode never panics, and on files whose declared size is
// within fuzzMaxBytes, it succeeds exactly when image/png does, with the
// same image.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, s := range rawSpecs(5, 3) {
		f.Add(rawPNG(rng, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decoder{MaxBytes: fuzzMaxBytes}.Decode(bytes.NewReader(data))
		if errors.Is(err, ErrTooLarge) {
			return
		}
		cfg, cfgErr := png.DecodeConfig(bytes.NewReader(data))
		if cfgErr == nil && int64(cfg.Width)*int64(cfg.Height)*16 > fuzzMaxBytes {
			// Too big to give image/png, which has no limit (16 bytes a
			// pixel bounds every type, interlaced or not).
			return
		}
		want, wantErr := png.Decode(bytes.NewReader(data))
		switch {
		case wantErr != nil && err == nil:
			t.Fatalf("decoded a %T, image/png fails with %v", got, wantErr)
		case wantErr == nil && err != nil:
			t.Fatalf("%v; image/png decodes it", err)
		case wantErr == nil && !sameImage(got, want):
			t.Fatalf("decodes to a %T unlike image/png's %T", got, want)
		}
	})
}
