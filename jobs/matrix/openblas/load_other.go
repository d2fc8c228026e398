//go:build !((linux || darwin) && (amd64 || arm64))

package openblas

import (
	"errors"

	"gonum.org/v1/gonum/blas/gonum"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
)

// EnvLibrary names the environment variable that, when set, gives the
// only file or library name Load tries.
const EnvLibrary = "PPOOL_OPENBLAS"

// Implementation is a [blas.Float64] backed by OpenBLAS. On this platform
// OpenBLAS is not supported and [Load] always fails.
type Implementation struct {
	gonum.Implementation
}

// Load reports that OpenBLAS cannot be loaded on this platform.
func Load() (*Implementation, error) {
	return nil, errors.New("openblas: loading OpenBLAS is supported on linux and darwin, amd64 and arm64 only")
}

// Path reports the file Load opened; it is empty on this platform.
func (impl *Implementation) Path() string { return "" }

// Config reports OpenBLAS's build configuration; it is empty on this platform.
func (impl *Implementation) Config() string { return "" }

// Core reports the CPU kernel OpenBLAS chose; it is empty on this platform.
func (impl *Implementation) Core() string { return "" }

// Threads reports how many threads OpenBLAS uses per call; 0 on this platform.
func (impl *Implementation) Threads() int { return 0 }

// LAPACK is a [lapack.Float64] backed by OpenBLAS's LAPACK. On this
// platform it is never available.
type LAPACK struct {
	lapackgonum.Implementation
}

// LAPACK reports that OpenBLAS's LAPACK is not available on this platform.
func (impl *Implementation) LAPACK() (*LAPACK, error) {
	return nil, errors.New("openblas: not supported on this platform")
}
