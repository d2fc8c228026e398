// Package fastpng writes PNG files several times faster than image/png,
// with the same pixels in the same colour types.
//
// image/png compresses with compress/flate and cannot take another
// compressor; at its default level it spends seconds on a 6-megapixel
// photograph. Encode filters each row as libpng does (of the five PNG
// filters, the one with the least sum of absolute residuals) and
// compresses the rows as they are made with github.com/klauspost/compress's
// zlib, whose deflate runs about ten times faster than compress/flate at the
// same level, for files within a percent of zlib's size:
//
//	err := fastpng.Encode(w, img, fastpng.DefaultLevel)
//
// Levels count as zlib's do: 0 stores, 1 is fastest, 9 is smallest, and 6
// (DefaultLevel) is what Pillow and libvips use when told nothing.
//
// The pixels, colour type and bit depth are those image/png.Encode
// writes for the same image, so swapping one encoder for the other changes
// only the compressed bytes: *image.Gray is 8-bit grey, *image.NRGBA and
// *image.RGBA are 8-bit RGB when opaque and RGBA otherwise, and so on (see
// Encode). Those types are read straight from their Pix slices, and the
// encoder's buffers are pooled, so a worker encoding file after file
// allocates almost nothing.
package fastpng
