package fastpng_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"

	"github.com/ppool/ppool/jobs/image/fastpng"
)

func Example() {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 32))
	for y := range 32 {
		for x := range 64 {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(4 * x), G: uint8(8 * y), B: 128, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := fastpng.Encode(&buf, img, fastpng.DefaultLevel); err != nil {
		fmt.Println(err)
		return
	}
	// An opaque NRGBA image is written as RGB, as image/png writes it,
	// and decodes as an *image.RGBA with the same colours.
	back, err := fastpng.Decoder{MaxBytes: 64 << 20}.Decode(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%T %v %v\n", back, back.Bounds(), back.At(10, 3))
	// Output: *image.RGBA (0,0)-(64,32) {40 24 128 255}
}
