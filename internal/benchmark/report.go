package benchmark

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// kv is one named value, in the order it was measured.
type kv struct {
	key   string
	value any // float64, int, string or bool
}

// Figure is one measured or derived value of a Report.
type Figure struct {
	Key   string // the JSON key, e.g. "apply_roundtrip_us"
	Label string // for the table, e.g. "Apply 16 B round trip, p50"
	Unit  string // for the table, e.g. "µs"
	Value any    // float64, int, string or bool
}

// Report is the outcome of Run: figures in the order they were measured,
// and notes on what was not measured and why.
type Report struct {
	figs  []Figure
	index map[string]int
	Notes []string
}

func (r *Report) add(key string, value any, label, unit string) {
	if r.index == nil {
		r.index = map[string]int{}
	}
	if i, ok := r.index[key]; ok {
		r.figs[i].Value = value
		return
	}
	r.index[key] = len(r.figs)
	r.figs = append(r.figs, Figure{Key: key, Label: label, Unit: unit, Value: value})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Figures returns the figures in the order they were measured.
func (r *Report) Figures() []Figure { return r.figs }

// Lookup returns the figure under key.
func (r *Report) Lookup(key string) (Figure, bool) {
	i, ok := r.index[key]
	if !ok {
		return Figure{}, false
	}
	return r.figs[i], true
}

// Float returns the figure under key as a number.
func (r *Report) Float(key string) (float64, bool) {
	f, ok := r.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := f.Value.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// ratio adds key = num/den if both figures exist and den is not zero.
func (r *Report) ratio(key, num, den, label string) {
	n, ok1 := r.Float(num)
	d, ok2 := r.Float(den)
	if ok1 && ok2 && d != 0 {
		r.add(key, n/d, label, "×")
	}
}

// MarshalJSON writes the report as one flat object, keys in the order
// they were measured, then "notes".
func (r *Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r.figs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		if v, ok := f.Value.(float64); ok {
			b.WriteString(formatNumber(v))
			continue
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("figure %s: %w", f.Key, err)
		}
		b.Write(v)
	}
	if len(r.figs) > 0 {
		b.WriteByte(',')
	}
	notes := r.Notes
	if notes == nil {
		notes = []string{}
	}
	n, _ := json.Marshal(notes)
	b.WriteString(`"notes":`)
	b.Write(n)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// WriteJSON writes the report as one indented JSON object and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	raw, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// formatNumber keeps four significant digits, and every digit left of the
// point: these machines are too noisy for more to mean anything.
func formatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	if v == 0 {
		return "0"
	}
	decimals := 3 - int(math.Floor(math.Log10(math.Abs(v))))
	decimals = min(max(decimals, 0), 9)
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// tableRow puts a ppool figure beside its Python counterpart and their
// ratio. Keys that the report lacks leave their cell empty.
type tableRow struct{ ppool, python, ratio string }

var tableRows = []tableRow{
	{"machine_parallelism", "", ""},
	{"pipe_roundtrip_us", "", ""},
	{"pipe_roundtrip_worst_child_us", "", ""},
	{"apply_roundtrip_us", "python_apply_roundtrip_us", "apply_roundtrip_vs_python"},
	{"apply_roundtrip_p99_us", "", ""},
	{"apply_vs_pipe_floor", "", ""},
	{"apply_async_tasks_per_s", "python_apply_async_tasks_per_s", "apply_async_vs_python"},
	{"map_tasks_per_s", "python_map_tasks_per_s", "map_vs_python"},
	{"imap_unordered_tasks_per_s", "python_imap_unordered_tasks_per_s", "imap_unordered_vs_python"},
	{"start_ms", "", ""},
	{"close_ms", "", ""},
	{"start_and_close_ms", "python_start_and_stop_ms", "start_vs_python"},
	{"worker_idle_rss_mb", "", ""},
	{"large_payload_gb_per_s", "", ""},
	{"matmul_gflops_per_worker", "python_numpy_gflops", "matmul_vs_numpy"},
	{"matmul_speedup", "python_matmul_speedup", ""},
	{"matmul_job_utilisation", "", ""},
	{"blur_mpix_per_s_per_worker", "python_pillow_mpix_per_s", "blur_vs_pillow"},
	{"blur_speedup", "python_blur_speedup", ""},
	{"blur_job_utilisation", "", ""},
	{"thumbnail_files_per_s", "python_thumbnail_files_per_s", "thumbnail_vs_python"},
	{"vips_thumbnail_files_per_s", "", "thumbnail_vs_vips"},
	{"blur_png_files_per_s", "python_blur_png_files_per_s", "blur_png_vs_python"},
}

// WriteTable writes the report for a person: the machine, then one line
// per figure with Python's figure and the ratio beside it where measured.
// Ratios are "times better for ppool" (higher is better); apply ÷ floor is
// how many pipe round trips an Apply costs (1 would be the floor).
func (r *Report) WriteTable(w io.Writer) error {
	str := func(key string) string {
		f, ok := r.Lookup(key)
		if !ok {
			return ""
		}
		return fmt.Sprint(f.Value)
	}
	fmt.Fprintf(w, "ppool bench, %s\n", str("date"))
	fmt.Fprintf(w, "machine: %s cores (%s), %s, %s/%s; %s workers (%s); BLAS %s",
		str("cores"), str("cpu"), str("go_version"), str("goos"), str("goarch"), str("workers"), str("worker_binary"), str("blas_backend"))
	if q, _ := r.Lookup("quick"); q.Value == true {
		fmt.Fprint(w, "; --quick (small counts: figures are rough)")
	}
	fmt.Fprintln(w)
	if v := str("python_version"); v != "" {
		fmt.Fprintf(w, "python: %s, numpy %s, Pillow %s, OPENBLAS_NUM_THREADS=1\n", v, str("python_numpy_version"), str("python_pillow_version"))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "figure\tppool\tpython\tratio\t")
	for _, row := range tableRows {
		f, ok := r.Lookup(row.ppool)
		if !ok {
			continue
		}
		py, ratio := "", ""
		if p, ok := r.Lookup(row.python); ok {
			py = human(p)
		}
		if x, ok := r.Lookup(row.ratio); ok {
			ratio = human(x)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", f.Label, human(f), py, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, ok := r.Lookup("python_version"); ok {
		fmt.Fprintln(w, "\nratio: how many times better ppool does than Python (above 1: ppool is ahead)")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// human formats a figure with its unit, scaling rates to k and M.
func human(f Figure) string {
	v, ok := f.Value.(float64)
	if !ok {
		return fmt.Sprint(f.Value)
	}
	unit := f.Unit
	switch {
	case strings.HasSuffix(unit, "/s") && unit != "GB/s" && unit != "MP/s" && v >= 1e6:
		return fmt.Sprintf("%.2f M %s", v/1e6, unit)
	case strings.HasSuffix(unit, "/s") && unit != "GB/s" && unit != "MP/s" && v >= 1e3:
		return fmt.Sprintf("%.1f k %s", v/1e3, unit)
	case unit == "×":
		return shortNumber(v) + "×"
	}
	if unit == "" {
		return shortNumber(v)
	}
	return shortNumber(v) + " " + unit
}

// shortNumber writes v with three significant digits (all of them left of
// the point), without trailing zeros.
func shortNumber(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
