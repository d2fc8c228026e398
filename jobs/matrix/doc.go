// Package matrix reads, writes and computes with dense float64 matrices:
// the library behind ppool's matrix job kinds. It knows nothing of
// processes, pools or job files; it works on gonum [mat.Dense] values and
// file paths.
//
// # Files
//
// [Read] and [Write] choose the format by the file name's extension:
//
//   - .npy, NumPy's format: [ReadNPY] reads versions 1.0 to 3.0, float,
//     integer and bool dtypes of either byte order, in C or Fortran order,
//     and checks the header against the file's size before it allocates.
//     A 1-D array reads as a column. [WriteNPY] writes little-endian
//     float64 in C order, format 1.0, which numpy.load reads.
//   - .csv, comma-separated numbers: [ReadCSV] skips a header line of
//     column names and reports "file:line: ..." for a ragged row or a
//     field that is not a number.
//
// [ReadShape] returns a file's dimensions without reading its matrix (a
// .npy header; a CSV file counted as a stream, checked as ReadCSV checks
// it), and [ReadRows] and [ReadColumns] read one band of it, holding
// nothing else: a .npy file is read where the band is, a CSV file one line
// at a time.
//
// Every write is atomic: a temporary file in the same directory, synced,
// then renamed over the target. Malformed input is a [*FormatError], which
// quotes at most a short excerpt of the file.
//
// # Inputs
//
// [Random] makes a matrix of uniform values in [0, 1) that depends only on
// its seed, on every platform; [Identity] the identity.
//
// # Operations
//
// [Multiply], [Solve], [Inverse], [SVD], [Eigen] and [Summarize] agree with
// NumPy to 1e-9 relative on float64. They return errors, not panics, for
// operands of the wrong shape ([ErrShape]), singular matrices
// ([ErrSingular]) and NaN or infinite input to a factorization
// ([ErrNotFinite]). Solve and Inverse return their result together with an
// [*IllConditionedError] when the matrix's condition number exceeds
// [ConditionLimit].
//
// # Tiles
//
// A product too big for one worker is split by [PlanTiles] into blocks of
// the result whose plan depends only on the sizes, computed independently
// by [MultiplyTile] and put together by [Assemble] (or an [Assembler], one
// block at a time). The matrix.multiply kind computes a tile from its bands
// alone, read by ReadRows and ReadColumns or generated, the same bits as
// MultiplyTile on the whole factors. The result is the same
// bits however the tiles are shared out and recomputed, and agrees with the
// direct product within the rounding bound of a dot product that
// PlanTiles states (bit for bit on gonum).
//
// # BLAS backend
//
// The work runs in whichever BLAS and LAPACK are installed in gonum's
// blas64 and lapack64: gonum's pure-Go code, or OpenBLAS, loaded at run
// time without cgo by package [github.com/ppool/ppool/jobs/matrix/openblas].
// On one core here a 1024×1024 product runs at about 9 GFLOPS in gonum and
// 58 in OpenBLAS; at n = 512, an SVD takes 2 s in gonum and 0.1 s in
// OpenBLAS's LAPACK, a symmetric eigen decomposition 2 s and 0.03 s.
//
// The environment variable PPOOL_BLAS chooses: "gonum", "openblas" (an
// error if it cannot be loaded), or unset for OpenBLAS where it is
// installed and gonum elsewhere; PPOOL_OPENBLAS names the library file if
// it is not where the dynamic linker looks. The first operation makes the
// choice for the whole process; [Backend] reports it and [CheckBackend]
// reports why the requested one cannot be used. Results of the two
// backends agree to rounding; singular vectors and eigenvectors may differ
// by sign.
//
// All functions are safe for concurrent use.
package matrix
