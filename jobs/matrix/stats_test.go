package matrix

import (
	"encoding/json"
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	s := Summarize(dense(2, 3, 1, -2, 3, -4, 5, -6), true)
	want := Stats{
		Rows: 2, Cols: 3,
		Sum: -3, Mean: -0.5, Min: -6, Max: 5,
		NormFrobenius: math.Sqrt(91), Norm1: 9, NormInf: 15,
		PerRow: &AxisStats{Sum: []float64{2, -5}, Mean: []float64{2.0 / 3, -5.0 / 3}, Min: []float64{-2, -6}, Max: []float64{3, 5}},
		PerCol: &AxisStats{Sum: []float64{-3, 3, -3}, Mean: []float64{-1.5, 1.5, -1.5}, Min: []float64{-4, -2, -6}, Max: []float64{1, 5, 3}},
	}
	gotJSON, _ := json.Marshal(s)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("Summarize = %s\nwant        %s", gotJSON, wantJSON)
	}
	if s := Summarize(dense(1, 1, 2), false); s.PerRow != nil || s.PerCol != nil {
		t.Fatal("per-axis statistics computed though not asked for")
	}
}

// TestStatsJSON pins the keys and their order, which results files and
// their readers depend on, and the null for non-finite values.
func TestStatsJSON(t *testing.T) {
	tests := []struct {
		name  string
		stats Stats
		want  string
	}{
		{"whole", Summarize(dense(1, 2, 3, 4), false),
			`{"rows":1,"cols":2,"sum":7,"mean":3.5,"min":3,"max":4,"norm_frobenius":5,"norm_1":4,"norm_inf":7}`},
		{"per axis", Summarize(dense(1, 1, 2), true),
			`{"rows":1,"cols":1,"sum":2,"mean":2,"min":2,"max":2,"norm_frobenius":2,"norm_1":2,"norm_inf":2,` +
				`"per_row":{"sum":[2],"mean":[2],"min":[2],"max":[2]},"per_col":{"sum":[2],"mean":[2],"min":[2],"max":[2]}}`},
		{"NaN and Inf", Summarize(dense(1, 2, math.NaN(), math.Inf(1)), true),
			`{"rows":1,"cols":2,"sum":null,"mean":null,"min":null,"max":null,"norm_frobenius":null,"norm_1":null,"norm_inf":null,` +
				`"per_row":{"sum":[null],"mean":[null],"min":[null],"max":[null]},"per_col":{"sum":[null,null],"mean":[null,null],"min":[null,null],"max":[null,null]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.stats)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("JSON\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
