package turbojpeg_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

// Example decodes a JPEG for a 100-pixel thumbnail: with libjpeg-turbo,
// already shrunk in the DCT domain; without it, at full size with
// image/jpeg, to be resized by the caller either way.
func Example() {
	var buf bytes.Buffer
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 1600, 1200)), nil)
	data := buf.Bytes()

	img, err := turbojpeg.Decode(data, turbojpeg.DecodeOptions{MinWidth: 100, MinHeight: 75})
	if errors.Is(err, turbojpeg.ErrUnavailable) {
		img, err = jpeg.Decode(bytes.NewReader(data))
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	size := img.Bounds().Size()
	fmt.Println(size.X >= 100 && size.Y >= 75, size.X*3 == size.Y*4)
	// Output:
	// true true
}
