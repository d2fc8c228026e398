package turbojpeg

import (
	"errors"
	"image"
	"image/draw"
	"runtime"
	"unsafe"
)

// Encode compresses img as a baseline JPEG of the given quality (1 to 100;
// outside that range it is clamped, as image/jpeg does), with the choices
// image/jpeg makes: an *image.Gray becomes a one-component greyscale file,
// anything else YCbCr with 4:2:0 chroma subsampling. The pixels of an
// *image.NRGBA or *image.RGBA are read as they are, alpha ignored (so an
// NRGBA keeps its colours where alpha is 0, as ppool's Encode does before
// image/jpeg); other types are first converted to *image.RGBA.
func Encode(img image.Image, quality int) ([]byte, error) {
	lib, err := load()
	if err != nil {
		return nil, err
	}
	quality = min(max(quality, 1), 100)
	b := img.Bounds()
	if b.Empty() {
		return nil, errors.New("libjpeg-turbo: cannot encode an empty image")
	}
	var pix []byte
	var stride int
	pixelFormat, subsamp := int32(tjpfRGBX), int32(tjsamp420)
	switch m := img.(type) {
	case *image.Gray:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
		pixelFormat, subsamp = tjpfGray, tjsampGray
	case *image.NRGBA:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
	case *image.RGBA:
		pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
	default:
		rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
		pix, stride = rgba.Pix, rgba.Stride
	}

	runtime.LockOSThread() // see withDecompressor
	defer runtime.UnlockOSThread()
	handle := lib.initCompress()
	if handle == 0 {
		return nil, &Error{Op: "tjInitCompress", Message: lib.getErrorStr2(0)}
	}
	defer lib.destroy(handle)
	// The library allocates the output and grows it as needed; it is
	// copied into Go memory and freed. Preallocating tjBufSize bytes in
	// Go instead would cost a zeroed buffer of about 3 bytes per pixel.
	var out unsafe.Pointer
	var size uint64
	rc := lib.compress2(handle, pix, int32(b.Dx()), int32(stride), int32(b.Dy()), pixelFormat, &out, &size, subsamp, int32(quality), 0)
	if out != nil {
		defer lib.free(out)
	}
	if rc != 0 {
		return nil, &Error{Op: "tjCompress2", Message: lib.getErrorStr2(handle), Warning: lib.getErrorCode(handle) == tjerrWarning}
	}
	if out == nil {
		return nil, &Error{Op: "tjCompress2", Message: "no output"}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(out), size)...), nil
}
