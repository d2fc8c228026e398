package matrix

import (
	"fmt"
	"os"
	"sync"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// EnvBLAS names the environment variable that chooses the BLAS backend:
// "gonum" (pure Go), "openblas" (fail if OpenBLAS cannot be loaded), or
// unset, empty or "auto" (OpenBLAS where it is installed, else gonum).
const EnvBLAS = "PPOOL_BLAS"

// Backend names.
const (
	BackendGonum    = "gonum"
	BackendOpenBLAS = "openblas"
)

// backendOnce chooses the backend on first use and installs it in gonum
// with blas64.Use and lapack64.Use, for the whole process.
var backendOnce = sync.OnceValues(func() (string, error) { return selectBackend(os.Getenv(EnvBLAS)) })

func selectBackend(choice string) (string, error) {
	switch choice {
	case "", "auto":
		impl, err := openblas.Load()
		if err != nil {
			useGonum()
			return BackendGonum, nil
		}
		useOpenBLAS(impl)
		return BackendOpenBLAS, nil
	case BackendOpenBLAS:
		impl, err := openblas.Load()
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBLAS, choice, err)
		}
		useOpenBLAS(impl)
		return BackendOpenBLAS, nil
	case BackendGonum:
		useGonum()
		return BackendGonum, nil
	}
	return "", fmt.Errorf("%s=%q: want %s, %s or auto", EnvBLAS, choice, BackendGonum, BackendOpenBLAS)
}

func useGonum() {
	blas64.Use(gonum.Implementation{})
	lapack64.Use(lapackgonum.Implementation{})
}

// useOpenBLAS installs OpenBLAS's BLAS and, where the library has it, its
// LAPACK routines for the SVD and eigen decompositions.
func useOpenBLAS(impl *openblas.Implementation) {
	blas64.Use(impl)
	if lapackImpl, err := impl.LAPACK(); err == nil {
		lapack64.Use(lapackImpl)
	} else {
		lapack64.Use(lapackgonum.Implementation{})
	}
}

// Backend reports the BLAS backend that this package's operations run on:
// "openblas" (OpenBLAS's BLAS, and its LAPACK for the SVD and eigen
// decompositions) or "gonum". The first call to Backend, [CheckBackend] or
// any operation chooses it, as [EnvBLAS] says, and installs it in gonum's
// blas64 and lapack64 for the whole process, so other users of gonum in the
// process get it too. If the environment asks for a backend that
// cannot be used, Backend returns "unavailable" and every operation returns
// the error that [CheckBackend] reports.
func Backend() string {
	name, err := backendOnce()
	if err != nil {
		return "unavailable"
	}
	return name
}

// CheckBackend chooses the backend like [Backend] and reports why it cannot
// be used, if it cannot: a worker calls it at start to fail fast.
func CheckBackend() error {
	_, err := backendOnce()
	return err
}

// useBackend chooses the backend and returns its error, if any, for op.
func useBackend(op string) error {
	if err := CheckBackend(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
