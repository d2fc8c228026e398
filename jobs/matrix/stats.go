package matrix

import (
	"encoding/json"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Stats summarizes a matrix. It marshals to JSON with the keys shown in
// its field tags, in that order; JSON has no NaN or infinity, so such
// values are written as null.
type Stats struct {
	Rows          int        `json:"rows"`
	Cols          int        `json:"cols"`
	Sum           float64    `json:"sum"`
	Mean          float64    `json:"mean"`
	Min           float64    `json:"min"`
	Max           float64    `json:"max"`
	NormFrobenius float64    `json:"norm_frobenius"` // sqrt of the sum of squares
	Norm1         float64    `json:"norm_1"`         // largest column sum of absolute values
	NormInf       float64    `json:"norm_inf"`       // largest row sum of absolute values
	PerRow        *AxisStats `json:"per_row,omitempty"`
	PerCol        *AxisStats `json:"per_col,omitempty"`
}

// AxisStats holds statistics of each row (or each column) of a matrix,
// one element per row (column).
type AxisStats struct {
	Sum  []float64 `json:"sum"`
	Mean []float64 `json:"mean"`
	Min  []float64 `json:"min"`
	Max  []float64 `json:"max"`
}

// Summarize computes the statistics of a, and those of each row and each
// column if perAxis is true. As in NumPy, Min and Max are NaN if any entry
// is NaN, and sums propagate NaN and infinities.
func Summarize(a mat.Matrix, perAxis bool) Stats {
	rows, cols := a.Dims()
	s := Stats{
		Rows:          rows,
		Cols:          cols,
		Min:           math.Inf(1),
		Max:           math.Inf(-1),
		NormFrobenius: mat.Norm(a, 2),
		Norm1:         mat.Norm(a, 1),
		NormInf:       mat.Norm(a, math.Inf(1)),
	}
	var rowStats, colStats *AxisStats
	if perAxis {
		rowStats, colStats = newAxisStats(rows), newAxisStats(cols)
	}
	// Go's min and max return NaN if either argument is NaN, as numpy.min
	// and numpy.max do.
	for i := range rows {
		rowSum := 0.0
		for j := range cols {
			v := a.At(i, j)
			rowSum += v
			s.Min, s.Max = min(s.Min, v), max(s.Max, v)
			if perAxis {
				rowStats.Min[i], rowStats.Max[i] = min(rowStats.Min[i], v), max(rowStats.Max[i], v)
				colStats.Sum[j] += v
				colStats.Min[j], colStats.Max[j] = min(colStats.Min[j], v), max(colStats.Max[j], v)
			}
		}
		s.Sum += rowSum
		if perAxis {
			rowStats.Sum[i] = rowSum
		}
	}
	s.Mean = s.Sum / float64(rows*cols)
	if perAxis {
		for i := range rowStats.Sum {
			rowStats.Mean[i] = rowStats.Sum[i] / float64(cols)
		}
		for j := range colStats.Sum {
			colStats.Mean[j] = colStats.Sum[j] / float64(rows)
		}
		s.PerRow, s.PerCol = rowStats, colStats
	}
	return s
}

func newAxisStats(n int) *AxisStats {
	a := &AxisStats{Sum: make([]float64, n), Mean: make([]float64, n), Min: make([]float64, n), Max: make([]float64, n)}
	for i := range n {
		a.Min[i], a.Max[i] = math.Inf(1), math.Inf(-1)
	}
	return a
}

// jsonFloat marshals a non-finite value as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func jsonFloats(s []float64) []jsonFloat {
	out := make([]jsonFloat, len(s))
	for i, v := range s {
		out[i] = jsonFloat(v)
	}
	return out
}

// MarshalJSON writes s with the keys of its field tags, non-finite values
// as null.
func (s Stats) MarshalJSON() ([]byte, error) {
	type axis struct {
		Sum  []jsonFloat `json:"sum"`
		Mean []jsonFloat `json:"mean"`
		Min  []jsonFloat `json:"min"`
		Max  []jsonFloat `json:"max"`
	}
	toAxis := func(a *AxisStats) *axis {
		if a == nil {
			return nil
		}
		return &axis{jsonFloats(a.Sum), jsonFloats(a.Mean), jsonFloats(a.Min), jsonFloats(a.Max)}
	}
	return json.Marshal(struct {
		Rows          int       `json:"rows"`
		Cols          int       `json:"cols"`
		Sum           jsonFloat `json:"sum"`
		Mean          jsonFloat `json:"mean"`
		Min           jsonFloat `json:"min"`
		Max           jsonFloat `json:"max"`
		NormFrobenius jsonFloat `json:"norm_frobenius"`
		Norm1         jsonFloat `json:"norm_1"`
		NormInf       jsonFloat `json:"norm_inf"`
		PerRow        *axis     `json:"per_row,omitempty"`
		PerCol        *axis     `json:"per_col,omitempty"`
	}{s.Rows, s.Cols, jsonFloat(s.Sum), jsonFloat(s.Mean), jsonFloat(s.Min), jsonFloat(s.Max),
		jsonFloat(s.NormFrobenius), jsonFloat(s.Norm1), jsonFloat(s.NormInf), toAxis(s.PerRow), toAxis(s.PerCol)})
}
