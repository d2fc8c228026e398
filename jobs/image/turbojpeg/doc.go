// Package turbojpeg decodes and encodes JPEG with the system's libjpeg-turbo,
// loaded at run time without cgo, for the image jobs to use when it is
// installed; where it is not, they keep Go's image/jpeg.
//
// The library is libturbojpeg.so.0 (on Debian and Ubuntu: apt-get install
// libturbojpeg0), opened once per process with
// [github.com/ebitengine/purego], as package openblas opens OpenBLAS. The
// TurboJPEG 2.x API is used (tjInitDecompress, tjDecompressHeader3,
// tjDecompress2, tjCompress2, ...), which libjpeg-turbo 2.0 to 3.x all export.
//
// The environment variable PPOOL_JPEG chooses the codec: "go" never loads
// the library, "turbo" requires it ([Check] then fails when it is missing),
// and unset or empty uses it when present. [Backend] names the codec in use
// ("turbo 2.1.5", or "go") for version output, benchmarks and journal keys,
// since the two decode to slightly different pixels.
//
// # Decoding
//
// [Decode] decodes the whole image, or a smaller one when asked for a minimum
// size: libjpeg-turbo then scales in the DCT domain by 1/8, 1/4, 3/8, 1/2 or
// another of its factors, which skips most of the work of a thumbnail.
// Chroma is upsampled with libjpeg's "fancy" triangle filter, as Pillow and
// libvips do. The pixels equal Pillow's on the same libjpeg-turbo, at full
// size and scaled. Against Go's image/jpeg, greyscale and
// CMYK files differ by at most 1 and colour files without chroma
// subsampling by at most 3 (the IDCT and the YCbCr-to-RGB conversion round
// differently); image/jpeg replicates chroma samples instead of
// interpolating them, so on sharp colour edges of subsampled (4:2:0, 4:2:2)
// files the two differ by much more (62 on the test images), though by
// about 1 on average.
//
// The result has the type closest to the file's colour space: *image.Gray
// for greyscale, *image.CMYK for CMYK and YCCK (with image/jpeg's
// convention: Adobe-inverted files are inverted back, so 0 is no ink), and
// *image.NRGBA, opaque, for everything else. Progressive and arithmetic-coded
// files are decoded too.
//
// Bad input returns an error, never a crash: libjpeg-turbo reports fatal
// errors by longjmp to the TurboJPEG call, which returns -1 with a message.
// Warnings are errors too when they mean lost data ("Premature end of JPEG
// file", "bad Huffman code"), as image/jpeg fails on such files; errors.Is
// matches [ErrTruncated] or [ErrCorrupt]. A few harmless warnings (stray
// bytes between segments, an unknown Adobe transform code, a bad ICC profile
// marker) are accepted, as image/jpeg accepts those files.
//
// # Memory
//
// The decoded pixels are a Go slice that libjpeg-turbo writes into, but the
// library's working memory is allocated with malloc, outside Go's heap and
// outside GOMEMLIMIT. For most files it is a few rows of blocks; for
// progressive and other multi-scan files it holds every DCT coefficient of
// the full-size image (about 2 bytes per sample, so 3 bytes per pixel for a
// 4:2:0 photo even when decoding at 1/8 scale). [DecodeOptions.MaxBytes]
// bounds the sum of the output and that buffer, checked from the header
// before anything is allocated. [Encode] lets the library grow its output in
// C memory, copies it into a Go slice and frees it.
//
// All functions are safe for concurrent use: each call has its own
// TurboJPEG handle.
package turbojpeg
