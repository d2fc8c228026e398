package benchmark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/internal/benchmark"
	"github.com/ppool/ppool/workerproc"
)

// The test binary is its own worker and its own pipe echo child (the
// package's init handles the latter).
func TestMain(m *testing.M) {
	workerproc.Main()
	// Under -race a process sleeps a second at exit (the race runtime's
	// atexit_sleep_ms), which would make every pool's Close wait for its
	// workers; the children need not.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// required are the keys `ppool bench --json` promises.
var required = []string{
	"cores", "go_version", "blas_backend",
	"pipe_roundtrip_us", "apply_roundtrip_us", "apply_async_tasks_per_s", "map_tasks_per_s",
	"imap_unordered_tasks_per_s", "start_ms", "worker_idle_rss_mb", "matmul_gflops_per_worker",
	"matmul_speedup", "blur_mpix_per_s_per_worker", "blur_speedup", "large_payload_gb_per_s",
	"apply_vs_pipe_floor", "thumbnail_files_per_s", "blur_png_files_per_s",
}

var pythonRatios = []string{
	"apply_async_vs_python", "apply_roundtrip_vs_python", "map_vs_python", "matmul_vs_numpy", "blur_vs_pillow",
}

func runQuick(t *testing.T, o benchmark.Options) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.Quick = true
	r, err := benchmark.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(&js)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the JSON output does not decode: %v\n%s", err, js.String())
	}
	if dec.More() {
		t.Fatal("the JSON output is more than one object")
	}
	for _, k := range required {
		v, ok := got[k]
		if !ok {
			t.Errorf("key %q missing", k)
			continue
		}
		if f, isNum := v.(float64); isNum && !(f > 0) {
			t.Errorf("%s = %v, want > 0", k, f)
		}
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Apply 16 B round trip, p50", "pipe 16 B round trip", "GFLOPS", "MP/s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	return got
}

// TestQuickWithoutPython: every figure is measured, and the missing Python
// is said, not guessed at.
func TestQuickWithoutPython(t *testing.T) {
	got := runQuick(t, benchmark.Options{Python: true, PythonPath: "/nonexistent/python3"})
	for k := range got {
		if strings.HasPrefix(k, "python_") || strings.HasSuffix(k, "_vs_python") || strings.HasSuffix(k, "_vs_numpy") {
			t.Errorf("key %q present without Python", k)
		}
	}
	notes, _ := got["notes"].([]any)
	if len(notes) == 0 || !strings.Contains(notes[0].(string), "not measured") {
		t.Errorf("notes = %v, want one saying Python was not measured", notes)
	}
}

func TestQuickWithPython(t *testing.T) {
	if _, err := os.Stat(benchmark.DefaultPython); err != nil {
		t.Skip("no " + benchmark.DefaultPython)
	}
	got := runQuick(t, benchmark.Options{Python: true})
	if _, ok := got["python_version"]; !ok {
		t.Skipf("Python present but not measured (numpy or Pillow missing?): %v", got["notes"])
	}
	keys := append(pythonRatios, "python_apply_roundtrip_us", "python_numpy_gflops", "python_pillow_mpix_per_s",
		"python_thumbnail_files_per_s", "python_blur_png_files_per_s", "thumbnail_vs_python", "blur_png_vs_python")
	if _, err := exec.LookPath("vipsthumbnail"); err == nil {
		keys = append(keys, "vips_thumbnail_files_per_s", "thumbnail_vs_vips")
	}
	for _, k := range keys {
		if f, ok := got[k].(float64); !ok || !(f > 0) {
			t.Errorf("%s = %v, want a positive number", k, got[k])
		}
	}
}
