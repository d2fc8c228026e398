package turbojpeg

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// EnvBackend names the environment variable that chooses the JPEG codec:
// "go" or "turbo"; unset or empty means libjpeg-turbo when it is installed.
const EnvBackend = "PPOOL_JPEG"

// Conditions the functions report, matched with errors.Is.
var (
	// ErrUnavailable means libjpeg-turbo is not loaded: not installed, not
	// supported on this platform, or turned off with PPOOL_JPEG=go.
	ErrUnavailable = errors.New("libjpeg-turbo is not available")
	// ErrTruncated means the JPEG data ends before the image does.
	ErrTruncated = errors.New("truncated JPEG data")
	// ErrCorrupt means the JPEG data is invalid or unsupported.
	ErrCorrupt = errors.New("invalid JPEG data")
	// ErrTooLarge means decoding would take more than DecodeOptions.MaxBytes.
	ErrTooLarge = errors.New("JPEG image too large")
)

// An Error is a failure libjpeg-turbo reported, with its message.
type Error struct {
	Op      string // the TurboJPEG function: "tjDecompress2", ...
	Message string // libjpeg-turbo's message (tjGetErrorStr2)
	Warning bool   // the call warned (TJERR_WARNING): data was lost, or it failed later
	Kind    error  // ErrTruncated or ErrCorrupt for decoding; nil for encoding
}

func (e *Error) Error() string {
	return "libjpeg-turbo: " + e.Message
}

func (e *Error) Unwrap() error { return e.Kind }

// TurboJPEG constants (turbojpeg.h, unchanged since 2.0).
const (
	tjpfRGB  = 0
	tjpfRGBX = 2
	tjpfGray = 6
	tjpfRGBA = 7
	tjpfCMYK = 11

	tjsamp420  = 2
	tjsampGray = 3

	tjcsRGB   = 0
	tjcsYCbCr = 1
	tjcsGray  = 2
	tjcsCMYK  = 3
	tjcsYCCK  = 4

	tjerrWarning = 0

	// tjflagLimitScans makes a progressive file of more than 500 scans an
	// error: no encoder writes such a file, and a hostile one can make the
	// decoder spin for minutes.
	tjflagLimitScans = 32768
)

type scalingFactor struct{ num, denom int32 }

// library holds the C functions, bound by open. C int is int32, C unsigned
// long is uint64 on every platform open supports.
type library struct {
	path string

	initDecompress    func() uintptr
	initCompress      func() uintptr
	destroy           func(handle uintptr) int32
	decompressHeader3 func(handle uintptr, jpeg []byte, size uint64, width, height, subsamp, colorspace *int32) int32
	decompress2       func(handle uintptr, jpeg []byte, size uint64, dst []byte, width, pitch, height, pixelFormat, flags int32) int32
	compress2         func(handle uintptr, src []byte, width, pitch, height, pixelFormat int32, jpeg *unsafe.Pointer, size *uint64, subsamp, quality, flags int32) int32
	free              func(buf unsafe.Pointer)
	getErrorStr2      func(handle uintptr) string
	getErrorCode      func(handle uintptr) int32
	getScalingFactors func(n *int32) *scalingFactor

	// factors are the DCT scaling factors of at most 1, smallest first.
	factors []scalingFactor
}

// symbols lists every C function open binds; a library missing any of them
// is not used.
func (lib *library) symbols() []struct {
	name string
	fn   any
} {
	return []struct {
		name string
		fn   any
	}{
		{"tjInitDecompress", &lib.initDecompress},
		{"tjInitCompress", &lib.initCompress},
		{"tjDestroy", &lib.destroy},
		{"tjDecompressHeader3", &lib.decompressHeader3},
		{"tjDecompress2", &lib.decompress2},
		{"tjCompress2", &lib.compress2},
		{"tjFree", &lib.free},
		{"tjGetErrorStr2", &lib.getErrorStr2},
		{"tjGetErrorCode", &lib.getErrorCode},
		{"tjGetScalingFactors", &lib.getScalingFactors},
	}
}

// bindFactors reads the library's scaling factors once, after the symbols
// are bound.
func (lib *library) bindFactors() error {
	var n int32
	p := lib.getScalingFactors(&n)
	if p == nil || n <= 0 || n > 64 {
		return fmt.Errorf("%s: tjGetScalingFactors failed", lib.path)
	}
	for _, f := range unsafe.Slice(p, n) {
		if f.num > 0 && f.denom > 0 && f.num <= f.denom {
			lib.factors = append(lib.factors, f)
		}
	}
	// The library lists them largest first.
	for i, j := 0, len(lib.factors)-1; i < j; i, j = i+1, j-1 {
		lib.factors[i], lib.factors[j] = lib.factors[j], lib.factors[i]
	}
	if len(lib.factors) == 0 || lib.factors[len(lib.factors)-1] != (scalingFactor{1, 1}) {
		return fmt.Errorf("%s: tjGetScalingFactors lists no 1/1 factor", lib.path)
	}
	return nil
}

// A Mode is the codec PPOOL_JPEG asks for.
type Mode int

// The modes.
const (
	ModeAuto  Mode = iota // libjpeg-turbo if installed, else Go
	ModeGo                // Go's image/jpeg only
	ModeTurbo             // libjpeg-turbo, or fail
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeGo:
		return "go"
	case ModeTurbo:
		return "turbo"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ModeFromEnv reads PPOOL_JPEG.
func ModeFromEnv() (Mode, error) {
	switch v := os.Getenv(EnvBackend); strings.ToLower(v) {
	case "", "auto":
		return ModeAuto, nil
	case "go":
		return ModeGo, nil
	case "turbo":
		return ModeTurbo, nil
	default:
		return ModeAuto, fmt.Errorf("%s=%q: want go or turbo", EnvBackend, v)
	}
}

type loaded struct {
	lib  *library
	mode Mode
	err  error // why lib is nil
}

var loadOnce = sync.OnceValue(func() loaded {
	mode, err := ModeFromEnv()
	if err != nil {
		return loaded{mode: mode, err: err}
	}
	if mode == ModeGo {
		return loaded{mode: mode, err: fmt.Errorf("%w: %s=go", ErrUnavailable, EnvBackend)}
	}
	lib, err := openLibrary()
	if err != nil {
		return loaded{mode: mode, err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
	}
	return loaded{lib: lib, mode: mode}
})

// load returns the library, opening it on first use.
func load() (*library, error) {
	l := loadOnce()
	return l.lib, l.err
}

// Available reports whether Decode and Encode use libjpeg-turbo, and if not,
// why not.
func Available() (ok bool, why string) {
	if _, err := load(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Check returns an error when PPOOL_JPEG is invalid, or is "turbo" and
// libjpeg-turbo cannot be loaded; otherwise nil, whichever codec is used.
// Commands call it before running anything, so that a forced codec that is
// missing fails at once rather than task by task.
func Check() error { return loadOnce().check() }

func (l loaded) check() error {
	switch {
	case l.err != nil && l.mode == ModeTurbo:
		return fmt.Errorf("%s=turbo: %w (on Debian and Ubuntu: apt-get install libturbojpeg0)", EnvBackend, l.err)
	case l.err != nil && !errors.Is(l.err, ErrUnavailable):
		return l.err
	}
	return nil
}

var backendOnce = sync.OnceValue(func() string {
	lib, err := load()
	if err != nil {
		return "go"
	}
	if v := libraryVersion(lib); v != "" {
		return "turbo " + v
	}
	return "turbo"
})

// Backend names the JPEG codec in use: "turbo 2.1.5" (or "turbo" when the
// library's version cannot be read), or "go".
func Backend() string { return backendOnce() }

// Path returns the library file opened, or "" when none is.
func Path() string {
	lib, err := load()
	if err != nil {
		return ""
	}
	return lib.path
}
