// Package openblas loads the system's OpenBLAS shared library at run time,
// without cgo, and offers it to gonum as BLAS and LAPACK implementations.
//
// The library is found and opened with [github.com/ebitengine/purego], so a
// binary built with CGO_ENABLED=0 still uses OpenBLAS where it is installed
// (on Debian and Ubuntu: apt-get install libopenblas0-pthread) and runs
// everywhere else with gonum's pure-Go BLAS.
//
// [Load] searches, in order, the dynamic linker's own search path
// (LD_LIBRARY_PATH, the ld.so cache, the default directories) for
// libopenblas.so.0 and a few other common names, then the standard library
// directories and those listed in /etc/ld.so.conf. If the environment
// variable PPOOL_OPENBLAS is set, it tries only that file (or library name)
// instead. It opens the library once per process.
//
// [Implementation] is a [blas.Float64]: it embeds gonum's native BLAS and
// overrides the level 3 routines (Dgemm, Dtrsm, Dtrmm, Dsyrk, Dsyr2k) that
// carry the work of products and of the blocked LU, QR and tridiagonal
// reductions in gonum's LAPACK. [LAPACK] is a [lapack.Float64]: it embeds
// gonum's native LAPACK and overrides Dgesvd, Dsyev and Dgeev with the
// LAPACK that OpenBLAS bundles (dgesdd, dsyevd and dgeev, as NumPy uses),
// because gonum spends most of those decompositions in Go loops that no
// BLAS speeds up. Every other routine, and every call whose arguments are
// degenerate (a zero dimension), unusual for these overrides or invalid,
// runs gonum's code, so invalid arguments panic with gonum's messages and
// OpenBLAS never sees a slice shorter than its dimensions claim.
//
// Builds: with CGO_ENABLED=1 (the default where a C compiler is installed)
// purego links Go's cgo runtime; with CGO_ENABLED=0 it brings its own
// replacement (fakecgo), and the binary is still dynamically linked to the
// C library so that it can call dlopen. Both work. The race detector
// requires cgo on Linux, so `go test -race` runs the first kind.
//
// Threads: OpenBLAS reads OPENBLAS_NUM_THREADS (or GOTO_NUM_THREADS,
// OMP_NUM_THREADS) when it loads. If none of them is set, Load sets OpenBLAS
// to one thread, because ppool runs one worker process per core and a
// multi-threaded BLAS in each would oversubscribe the machine.
//
// Install both for a whole process with
//
//	impl, err := openblas.Load()
//	if err == nil {
//		blas64.Use(impl)
//		if lapackImpl, err := impl.LAPACK(); err == nil {
//			lapack64.Use(lapackImpl)
//		}
//	}
//
// Both are safe for concurrent use.
package openblas
