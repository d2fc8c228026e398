package openblas_test

import (
	"fmt"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// Example installs OpenBLAS for gonum where it is installed, and keeps
// gonum's own code elsewhere: the results are the same.
func Example() {
	var impl blas.Float64 = gonum.Implementation{}
	if openblasImpl, err := openblas.Load(); err == nil {
		impl = openblasImpl
		if lapackImpl, err := openblasImpl.LAPACK(); err == nil {
			lapack64.Use(lapackImpl)
		}
	}
	blas64.Use(impl)

	a := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	b := mat.NewDense(3, 2, []float64{7, 8, 9, 10, 11, 12})
	var c mat.Dense
	c.Mul(a, b) // runs Dgemm in the installed BLAS
	fmt.Println(mat.Formatted(&c))

	var svd mat.SVD
	svd.Factorize(a, mat.SVDNone) // runs Dgesvd in the installed LAPACK
	fmt.Printf("%.4f\n", svd.Values(nil))
	// Output:
	// ⎡ 58   64⎤
	// ⎣139  154⎦
	// [9.5080 0.7729]
}
