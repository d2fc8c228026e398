package matrix

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ppool/ppool/jobs/matrix/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

const childEnv = "PPOOL_MATRIX_TEST_CHILD"

// TestMain lets the test binary run as a child that reports the backend it
// chose from a fresh environment: the choice is made once per process.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		_, opErr := Multiply(dense(1, 1, 2), dense(1, 1, 3))
		fmt.Printf("backend=%s err=%v\nmultiply: %v\n", Backend(), CheckBackend(), opErr)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBackendFromEnvironment(t *testing.T) {
	_, openblasErr := openblas.Load()
	auto := BackendOpenBLAS
	if openblasErr != nil {
		auto = BackendGonum
	}
	forced := "backend=openblas err=<nil>"
	if openblasErr != nil {
		forced = "backend=unavailable err=PPOOL_BLAS=openblas: openblas: "
	}
	missing := openblas.EnvLibrary + "=/nonexistent/libopenblas.so.0"
	tests := []struct {
		env  []string
		want string // prefix of the child's report
	}{
		{[]string{EnvBLAS + "="}, "backend=" + auto + " err=<nil>"},
		{[]string{EnvBLAS + "=auto"}, "backend=" + auto + " err=<nil>"},
		{[]string{EnvBLAS + "=gonum"}, "backend=gonum err=<nil>"},
		{[]string{EnvBLAS + "=openblas"}, forced},
		{[]string{EnvBLAS + "=mkl"}, "backend=unavailable err=PPOOL_BLAS=\"mkl\": want gonum, openblas or auto\n" +
			"multiply: multiply: PPOOL_BLAS=\"mkl\": want gonum, openblas or auto\n"},
		{[]string{EnvBLAS + "=", missing}, "backend=gonum err=<nil>"},
		{[]string{EnvBLAS + "=openblas", missing}, "backend=unavailable err=PPOOL_BLAS=openblas: openblas: library not found (tried /nonexistent/libopenblas.so.0); install it, e.g. apt-get install libopenblas0-pthread\n" +
			"multiply: multiply: PPOOL_BLAS=openblas: openblas: library not found"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, ","), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			// GORACE: a race-enabled binary otherwise sleeps a second at exit.
			cmd.Env = append(append(os.Environ(), childEnv+"=1", "GORACE=atexit_sleep_ms=0"), tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), tt.want) {
				t.Fatalf("child said %q (%v), want %q", out, err, tt.want)
			}
		})
	}
}

// countingBLAS counts the level 3 calls that reach the installed backend.
type countingBLAS struct {
	blas.Float64
	dgemm, dtrsm atomic.Int64
}

func (c *countingBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, cc []float64, ldc int) {
	c.dgemm.Add(1)
	c.Float64.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

func (c *countingBLAS) Dtrsm(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	c.dtrsm.Add(1)
	c.Float64.Dtrsm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
}

// TestFactorizationsUseTheBackend checks that gonum's LAPACK routes its
// level 3 work through the installed backend, which is what makes OpenBLAS
// speed up Solve and Inverse and not only Multiply.
func TestFactorizationsUseTheBackend(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		counter := &countingBLAS{Float64: blas64.Implementation()}
		blas64.Use(counter)
		a := wellConditioned(t, 200, 1)
		if _, err := Inverse(a); err != nil {
			t.Fatal(err)
		}
		if _, err := Solve(a, a); err != nil {
			t.Fatal(err)
		}
		if counter.dgemm.Load() == 0 || counter.dtrsm.Load() == 0 {
			t.Fatalf("Dgemm called %d times, Dtrsm %d times; want both used", counter.dgemm.Load(), counter.dtrsm.Load())
		}
	})
}
