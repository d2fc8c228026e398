// Package image holds the pure image kernels behind ppool's image jobs:
// decoding, encoding, resizing, blurring, sharpening, greyscale, edge
// detection and Mandelbrot rendering. It knows nothing of processes, pools
// or job files; a worker wraps each function into a job kind that reads a
// file, processes it and writes a file.
//
// # Files
//
// Load decodes PNG and JPEG, recognised by their content, into the one
// working format, *image.NRGBA (8-bit straight-alpha RGBA; see Decode for
// why). Every variant cameras and editors write is handled: grey, grey with
// alpha, palette with transparency, 8- and 16-bit PNG, interlaced PNG,
// baseline and progressive JPEG, CMYK and YCCK JPEG (Adobe-inverted, as
// Photoshop writes), and EXIF orientation 1–8, which is applied so the
// result is upright. Bad input never panics; it fails with an error naming
// the file and the cause:
//
//	photo.jpg: truncated JPEG data
//	notes.png: not a PNG or JPEG file
//	empty.png: empty file (0 bytes), not a PNG or JPEG image
//	huge.png: PNG image is 40000×40000 pixels, over the limit of 30000×30000 and 268435456 pixels
//	deep.png: PNG image is 16000×16000 pixels (16-bit RGBA): decoding it needs 2.9 GiB, over the limit of 2.0 GiB
//
// and errors.Is matches ErrTruncated, ErrNotImage, ErrTooLarge, ErrEmpty or
// ErrCorrupt. Save writes PNG or JPEG by the file's extension, atomically.
//
// # Memory
//
// The decoders allocate a whole image at once, in their own layout, which
// can take several times the pixels: a 16-bit PNG decodes to 8 bytes a
// pixel, a progressive JPEG keeps 4 bytes per sample of DCT coefficients
// until its last scan, and the conversion to NRGBA adds 4 more. So before
// decoding, the header is read and what decoding will allocate is counted
// in bytes, for the layout the decoder will use, together with what the
// job kind then allocates (its output, its scratch rows); an image that
// would need more than MaxImageMemory (or the process's lower Go memory
// limit) is refused with a message saying how much it needs, before any
// pixel memory is taken. A file of a few hundred bytes cannot claim
// gigabytes.
//
// # Operations
//
// Resize and Thumbnail scale with Lanczos3, CatmullRom, Bilinear or Nearest,
// matching Pillow. The neighbourhood filters GaussianBlur, Sharpen,
// Grayscale and Edges are values with parameters that implement Filter:
//
//	out, err := image.GaussianBlur{Sigma: 2}.Apply(img)
//
// Mandelbrot renders any tile of a fractal image.
//
// # Strips
//
// A very large image can be filtered by several processes at once: cut it
// into horizontal strips with PlanStrips, give each worker its strip's input
// rows (the strip plus the filter's Halo rows above and below, from
// Strip.Input), let it run Filter.ApplyStrip, and Paste the results back.
// The stitched image is byte-identical to filtering the whole image in one
// go, whatever the strip size, because each output pixel is computed by the
// same integer arithmetic from the same input pixels, and the strip knows
// where the image's top and bottom edges are. Mandelbrot tiles work the
// same way, with no halo.
//
// What a strip costs: a strip of a PNG that is not interlaced and needs no
// EXIF rotation decodes only its input rows, so its memory is the file plus
// about twenty bytes a pixel of those rows, however tall the image. Any
// other input (JPEG, interlaced PNG, a rotated image) is decoded whole by
// every strip, which keeps its rows: a strip then costs what decoding the
// whole image costs, plus its own rows, and splitting saves time but not
// memory. The merge holds the whole output, 4 bytes a pixel, and one strip.
// Each part checks its own cost against MaxImageMemory before decoding,
// and the image kinds' Split checks the largest part and the merge in the
// master, from the header. A job's memory: limit is not known to the
// kinds; the runner enforces it by watching the worker, and a part that
// goes over it fails the task with a memory-limit error.
//
// All arithmetic that decides pixel values is integer or carefully rounded
// float64, so a result does not depend on how the work was divided.
package image
