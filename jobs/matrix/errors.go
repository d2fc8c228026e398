package matrix

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// ErrSingular reports a square matrix that has no inverse: LU factorization
// met an exactly zero pivot, or the matrix is singular to working precision
// (its estimated condition number exceeds 1/ε ≈ 4.5e15). Solve and Inverse
// return it wrapped, with the condition number; match it with [errors.Is].
var ErrSingular = errors.New("matrix is singular")

// ErrShape reports operands whose dimensions do not fit the operation, such
// as a product of 3×4 and 5×2 matrices or the inverse of a non-square
// matrix. It is returned wrapped, with the dimensions.
var ErrShape = errors.New("dimension mismatch")

// ErrNotFinite reports a NaN or infinite entry in the input of a
// factorization (Solve, Inverse, SVD, Eigen), where LAPACK's results would
// be meaningless. It is returned wrapped, with the position.
var ErrNotFinite = errors.New("matrix has a NaN or infinite entry")

// ConditionLimit is the estimated condition number above which Solve and
// Inverse return an [*IllConditionedError] with their result. A result
// keeps roughly 16 - log10(condition) correct significant digits, so above
// 1e12 fewer than 4 are left.
const ConditionLimit = 1e12

// singularLimit is 1/ε: beyond it a matrix is singular to working
// precision, and Solve and Inverse return no result.
const singularLimit = 1 / 0x1p-52

// IllConditionedError is returned by Solve and Inverse, together with their
// result, when the estimated 1-norm condition number of the matrix exceeds
// [ConditionLimit]. The result is computed but may have few correct digits;
// callers decide whether to use it.
type IllConditionedError struct {
	Op        string  // "solve" or "inverse"
	Condition float64 // estimated 1-norm condition number (LAPACK dgecon)
}

func (e *IllConditionedError) Error() string {
	digits := max(0, int(16-math.Log10(e.Condition)))
	return fmt.Sprintf("%s: matrix is ill-conditioned: condition number ≈ %.3g exceeds %.0e; the result has about %d correct digits",
		e.Op, e.Condition, ConditionLimit, digits)
}

// FormatError reports a file or stream that is not a matrix this package
// can read: a malformed or unsupported .npy header, a CSV row with the wrong
// number of fields, a field that is not a number.
type FormatError struct {
	File string // file name; empty when decoding a stream
	Line int    // 1-based line of a CSV file; 0 when not applicable
	Msg  string // what is wrong
	Err  error  // underlying cause, if any
}

// Error formats the error as "file:line: message", leaving out what is
// unknown.
func (e *FormatError) Error() string {
	var prefix string
	switch {
	case e.File != "" && e.Line > 0:
		prefix = e.File + ":" + strconv.Itoa(e.Line) + ": "
	case e.File != "":
		prefix = e.File + ": "
	case e.Line > 0:
		prefix = "line " + strconv.Itoa(e.Line) + ": "
	}
	if e.Err != nil {
		return prefix + e.Msg + ": " + e.Err.Error()
	}
	return prefix + e.Msg
}

func (e *FormatError) Unwrap() error { return e.Err }

// withFile names the file in a FormatError returned while decoding it.
func withFile(err error, file string) error {
	var formatErr *FormatError
	if errors.As(err, &formatErr) && formatErr.File == "" {
		formatErr.File = file
		return err
	}
	if err != nil && formatErr == nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return err
}

// maxExcerpt bounds how much of a file's own text an error message quotes:
// a header or a field may be tens of kilobytes, and every message ends up
// in a log and in the results file.
const maxExcerpt = 200

// excerpt returns s, or if it is longer than maxExcerpt its start, cut at
// a character boundary, followed by "…" and s's length.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	return s[:excerptEnd(s)] + fmt.Sprintf("… (%d bytes)", len(s))
}

// quoteExcerpt quotes s as strconv.Quote does, or if it is longer than
// maxExcerpt its start, followed by "…" and s's length.
func quoteExcerpt(s string) string {
	if len(s) <= maxExcerpt {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:excerptEnd(s)]) + fmt.Sprintf("… (%d bytes)", len(s))
}

func excerptEnd(s string) int {
	n := maxExcerpt
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}
