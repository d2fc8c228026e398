package image_test

import (
	"fmt"
	stdimage "image"
	"log"
	"os"
	"path/filepath"

	"github.com/ppool/ppool/jobs/image"
)

// A worker's job: load a photo, blur it, write the result.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	img, err := image.Load("testdata/photo.png")
	if err != nil {
		log.Fatal(err)
	}
	blurred, err := image.GaussianBlur{Sigma: 2}.Apply(img)
	if err != nil {
		log.Fatal(err)
	}
	thumb, err := image.Thumbnail(blurred, 64, 64)
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(dir, "thumb.jpg")
	if err := image.Save(out, thumb, image.SaveOptions{Quality: 85}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Bounds().Size(), "->", thumb.Bounds().Size())

	_, err = image.Load("testdata/notes.png")
	fmt.Println(err)
	// Output:
	// (256,192) -> (64,48)
	// testdata/notes.png: not a PNG or JPEG file
}

// Filtering a tall image in strips, as separate worker processes would,
// gives exactly the bytes of filtering it whole.
func ExampleFilter_strips() {
	full, err := image.Load("testdata/photo.png")
	if err != nil {
		log.Fatal(err)
	}
	f := image.Sharpen{Sigma: 1.5, Amount: 0.8}
	w, h := full.Bounds().Dx(), full.Bounds().Dy()

	stitched := stdimage.NewNRGBA(stdimage.Rect(0, 0, w, h))
	for _, s := range image.PlanStrips(h, 50) {
		y0, y1 := s.Input(f.Halo()) // what the master sends the worker
		in := image.Crop(full, stdimage.Rect(0, y0, w, y1))
		out, err := f.ApplyStrip(in, s) // in the worker
		if err != nil {
			log.Fatal(err)
		}
		image.Paste(stitched, out, stdimage.Pt(0, s.Y0))
	}

	whole, err := f.Apply(full)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(whole.Pix) == string(stitched.Pix))
	// Output: true
}

// Rendering a Mandelbrot image in tiles.
func ExampleMandelbrot() {
	m := image.Mandelbrot{Width: 300, Height: 200, Center: -0.5, Span: 3, MaxIter: 200}
	full := stdimage.NewNRGBA(stdimage.Rect(0, 0, m.Width, m.Height))
	for _, s := range image.PlanStrips(m.Height, 64) {
		tile := stdimage.Rect(0, s.Y0, m.Width, s.Y1)
		part, err := m.Render(tile)
		if err != nil {
			log.Fatal(err)
		}
		image.Paste(full, part, tile.Min)
	}
	fmt.Println(full.NRGBAAt(150, 100)) // inside the set: black
	// Output: {0 0 0 255}
}
