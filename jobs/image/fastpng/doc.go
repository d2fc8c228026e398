// Package fastpng reads and writes PNG files faster than image/png, with
// the same pixels in the same image types.
//
// # Encoding
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
//
// # Decoding
//
// Decode and DecodeConfig return what image/png's functions of those names
// return, image type and pixels alike, for every file image/png decodes:
// every colour type and bit depth (grey 1, 2, 4, 8 and 16 bits, palette 1
// to 8 bits, RGB, grey with alpha and RGBA at 8 and 16 bits), tRNS
// transparency, and Adam7 interlacing. The reader is image/png's, adapted
// (see decode.go): klauspost/compress's inflate, pooled; 8-bit grey, RGBA
// and palette rows and 16-bit grey and RGBA rows unfiltered in place in
// the image's Pix, without a row copy; and Paeth unfiltering, which most
// rows of photographs use, kept in registers.
//
// Untrusted files are safe to give it: a Decoder refuses a file whose
// decoded pixels would take more than its MaxBytes before allocating
// anything (a *LimitError; errors.Is ErrTooLarge), checks every chunk CRC
// and the zlib checksum, and fails on corrupt or truncated data with an
// error (errors.Is ErrCorrupt, or io.ErrUnexpectedEOF), never a panic:
//
//	img, err := fastpng.Decoder{MaxBytes: 1 << 30}.Decode(r)
package fastpng
