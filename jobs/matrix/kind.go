package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/ppool/ppool/jobs/kinds"
)

// The matrix job kinds. Inputs are .npy or .csv files or generated
// matrices; outputs are written atomically as .npy or .csv (matrix.stats:
// .json). A product too big for one worker is split into tiles computed in
// parallel and assembled.

const kindVersion = 1

// splitFlops is the product size (2·m·k·n) above which matrix.multiply is
// split into tiles of tileSize: both fixed (variables only so that tests can
// use small matrices), so the plan, and with it the output's bytes, does not
// depend on the number of workers or on how often a run is resumed.
var (
	splitFlops = 2 * 1536 * 1536 * 1536
	tileSize   = 512
)

var matrixOutputs = []string{"npy", "csv"}

func matrixSlot(name, doc string) kinds.Slot {
	return kinds.Slot{Name: name, Doc: doc + ": a .npy or .csv file, a glob, or a list", Generate: true}
}

func backend() string { return Backend() }

func init() {
	kinds.Register(&kinds.Kind{
		Name: "matrix.multiply", Summary: "the product a·b (split into tiles across workers when large)", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "the left factor"), matrixSlot("b", "the right factor")},
		Outputs: matrixOutputs, Backend: backend,
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			if t.Part != nil {
				block, err := multiplyPart(t)
				if err != nil {
					return nil, err
				}
				return write(t.Part.Path, block)
			}
			a, b, err := inputs2(t)
			if err != nil {
				return nil, err
			}
			c, err := Multiply(a, b)
			if err != nil {
				return nil, withInputs(t, err)
			}
			return write(t.Output, c)
		},
		Split: func(t *kinds.Task) ([]kinds.Part, error) {
			m, k, err := inputShape(t.Inputs["a"])
			if err != nil {
				return nil, err
			}
			k2, n, err := inputShape(t.Inputs["b"])
			if err != nil {
				return nil, err
			}
			if k != k2 || 2*m*k*n < splitFlops {
				return nil, nil // a shape mismatch is reported by the run itself
			}
			tiles, err := PlanTiles(m, k, n, tileSize)
			if err != nil {
				return nil, err
			}
			parts := make([]kinds.Part, len(tiles))
			for i, tl := range tiles {
				parts[i] = kinds.Part{Index: i, Row0: tl.Row0, Row1: tl.Row1, Col0: tl.Col0, Col1: tl.Col1}
			}
			return parts, nil
		},
		Merge: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			// One block at a time: the product and one tile in memory.
			m, n := 0, 0
			for _, p := range t.Parts {
				m, n = max(m, p.Row1), max(n, p.Col1)
			}
			asm, err := NewAssembler(m, n)
			if err != nil {
				return nil, err
			}
			for i, p := range t.Parts {
				b, err := Read(p.Path)
				if err != nil {
					return nil, fmt.Errorf("tile %d: %w", p.Index, err)
				}
				if err := asm.Add(i, Tile{Row0: p.Row0, Row1: p.Row1, Col0: p.Col0, Col1: p.Col1}, b); err != nil {
					return nil, err
				}
			}
			c, err := asm.Result()
			if err != nil {
				return nil, err
			}
			return write(t.Output, c)
		},
	})
	kinds.Register(&kinds.Kind{
		Name: "matrix.solve", Summary: "x such that a·x = b (a square)", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "the square coefficient matrix"), matrixSlot("b", "the right-hand side(s)")},
		Outputs: matrixOutputs, Backend: backend,
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			a, b, err := inputs2(t)
			if err != nil {
				return nil, err
			}
			x, err := Solve(a, b)
			return writeConditioned(t, x, err)
		},
	})
	kinds.Register(&kinds.Kind{
		Name: "matrix.inverse", Summary: "the inverse of a square matrix", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "a square matrix")},
		Outputs: matrixOutputs, Backend: backend,
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			a, err := load(t.Inputs["a"])
			if err != nil {
				return nil, err
			}
			inv, err := Inverse(a)
			return writeConditioned(t, inv, err)
		},
	})
	kinds.Register(&kinds.Kind{
		Name: "matrix.svd", Summary: "singular values (and, with vectors, U and Vᵀ beside the output as NAME.u and NAME.vt)", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "a matrix")},
		Outputs: matrixOutputs, Backend: backend,
		Params: []kinds.Param{{Name: "vectors", Type: kinds.TypeBool, Default: false, Doc: "also write U and Vᵀ"}},
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			a, err := load(t.Inputs["a"])
			if err != nil {
				return nil, err
			}
			r, err := SVD(a, t.Bool("vectors"))
			if err != nil {
				return nil, withInputs(t, err)
			}
			if t.Bool("vectors") {
				if _, err := write(beside(t.Output, "u"), r.U); err != nil {
					return nil, err
				}
				if _, err := write(beside(t.Output, "vt"), r.V.T()); err != nil {
					return nil, err
				}
			}
			return write(t.Output, mat.NewVecDense(len(r.Values), r.Values))
		},
	})
	kinds.Register(&kinds.Kind{
		Name: "matrix.eigen", Summary: "eigenvalues as n×2 (real, imaginary); with vectors, NAME.vre and NAME.vim beside", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "a square matrix")},
		Outputs: matrixOutputs, Backend: backend,
		Params: []kinds.Param{{Name: "vectors", Type: kinds.TypeBool, Default: false, Doc: "also write the eigenvectors' real and imaginary parts"}},
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			a, err := load(t.Inputs["a"])
			if err != nil {
				return nil, err
			}
			r, err := Eigen(a, t.Bool("vectors"))
			if err != nil {
				return nil, withInputs(t, err)
			}
			if t.Bool("vectors") {
				re, im := r.VectorParts()
				if _, err := write(beside(t.Output, "vre"), re); err != nil {
					return nil, err
				}
				if _, err := write(beside(t.Output, "vim"), im); err != nil {
					return nil, err
				}
			}
			return write(t.Output, r.ValuesMatrix())
		},
	})
	kinds.Register(&kinds.Kind{
		Name: "matrix.stats", Summary: "sum, mean, min, max and norms, as JSON", Version: kindVersion,
		Slots:   []kinds.Slot{matrixSlot("a", "a matrix")},
		Outputs: []string{"json"}, Backend: backend,
		Params: []kinds.Param{{Name: "per_axis", Type: kinds.TypeBool, Default: false, Doc: "also per row and per column"}},
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			a, err := load(t.Inputs["a"])
			if err != nil {
				return nil, err
			}
			b, err := json.MarshalIndent(Summarize(a, t.Bool("per_axis")), "", "  ")
			if err != nil {
				return nil, err
			}
			if err := writeFileAtomic(t.Output, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
				return nil, err
			}
			return &kinds.Outcome{Output: t.Output}, nil
		},
	})
}

// load reads or generates one input.
func load(in kinds.Input) (*mat.Dense, error) {
	if g := in.Gen; g != nil {
		if g.Kind == "identity" {
			return Identity(g.Shape[0])
		}
		return Random(g.Shape[0], g.Shape[1], g.Seed)
	}
	return Read(in.Path)
}

func inputs2(t *kinds.Task) (a, b *mat.Dense, err error) {
	if a, err = load(t.Inputs["a"]); err != nil {
		return nil, nil, err
	}
	if b, err = load(t.Inputs["b"]); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// inputShape returns an input's rows and columns, from the generator's
// spec or from the file without reading its matrix (see ReadShape): the
// master plans tiles with it, and its memory must not grow with the
// inputs'.
func inputShape(in kinds.Input) (int, int, error) {
	if g := in.Gen; g != nil {
		return g.Shape[0], g.Shape[1], nil
	}
	return ReadShape(in.Path)
}

// loadBlock reads or generates rows and columns of an input, each the
// whole dimension when its span is zero, without the rest.
func loadBlock(in kinds.Input, rows, cols span) (*mat.Dense, error) {
	g := in.Gen
	if g == nil {
		return readBlock(in.Path, rows, cols)
	}
	r0, r1 := rows.resolve(g.Shape[0])
	c0, c1 := cols.resolve(g.Shape[1])
	if g.Kind == "identity" {
		return identityBlock(g.Shape[0], r0, r1, c0, c1)
	}
	return randomBlock(g.Shape[0], g.Shape[1], g.Seed, r0, r1, c0, c1)
}

// multiplyPart computes one tile of a split product from the rows of a and
// the columns of b that it multiplies, reading or generating nothing else.
func multiplyPart(t *kinds.Task) (*mat.Dense, error) {
	p := t.Part
	if p.Row0 >= p.Row1 || p.Col0 >= p.Col1 {
		return nil, fmt.Errorf("multiply: %w: tile rows [%d, %d) cols [%d, %d) is empty", ErrShape, p.Row0, p.Row1, p.Col0, p.Col1)
	}
	a, err := loadBlock(t.Inputs["a"], span{p.Row0, p.Row1}, span{})
	if err != nil {
		return nil, err
	}
	b, err := loadBlock(t.Inputs["b"], span{}, span{p.Col0, p.Col1})
	if err != nil {
		return nil, err
	}
	if _, k := a.Dims(); b.RawMatrix().Rows != k {
		return nil, withInputs(t, fmt.Errorf("multiply: %w: A has %d columns, B has %d rows; A's columns must equal B's rows", ErrShape, k, b.RawMatrix().Rows))
	}
	return multiplyBands(a, b)
}

// withInputs names a task's inputs in the error of an operation on them,
// as "(a: x.npy, b: random 3×4 seed 1)", since the operation's own message
// knows them only as A and B.
func withInputs(t *kinds.Task, err error) error {
	return fmt.Errorf("%w (%s)", err, describeInputs(t))
}

func describeInputs(t *kinds.Task) string {
	var names []string
	for name := range t.Inputs {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		in := t.Inputs[name]
		what := in.Path
		if g := in.Gen; g != nil {
			what = fmt.Sprintf("%s %d×%d", g.Kind, g.Shape[0], g.Shape[1])
			if g.Kind == "random" {
				what += fmt.Sprintf(" seed %d", g.Seed)
			}
		}
		parts[i] = name + ": " + what
	}
	return strings.Join(parts, ", ")
}

func write(path string, m mat.Matrix) (*kinds.Outcome, error) {
	if err := Write(path, m); err != nil {
		return nil, err
	}
	r, c := m.Dims()
	return &kinds.Outcome{Output: path, Info: map[string]any{"rows": r, "cols": c}}, nil
}

// writeConditioned writes a result that came with a warning about the
// matrix's condition: the result stands, the task succeeds, and the warning
// goes with its outcome, to the master's log and the results file.
func writeConditioned(t *kinds.Task, m *mat.Dense, err error) (*kinds.Outcome, error) {
	var ill *IllConditionedError
	if errors.As(err, &ill) && m != nil {
		out, err := write(t.Output, m)
		if err != nil {
			return nil, err
		}
		out.Warnings = append(out.Warnings, withInputs(t, ill).Error())
		return out, nil
	}
	if err != nil {
		return nil, withInputs(t, err)
	}
	return write(t.Output, m)
}

// beside names a companion output: out.npy → out.u.npy.
func beside(path, part string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + part + ext
}
