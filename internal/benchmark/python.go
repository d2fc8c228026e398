package benchmark

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// pyBench is the Python side: multiprocessing.Pool and friends measured the
// way ../shared/bench/py_pool.py does, plus numpy's and Pillow's single-core
// rates. It is embedded so that the binary alone can run the comparison.
//
//go:embed py_bench.py
var pyBench []byte

// DefaultPython is the interpreter the comparison runs: the system's, whose
// numpy (Debian's python3-numpy) is linked to the system's OpenBLAS.
const DefaultPython = "/usr/bin/python3"

// ErrNoPython reports that the Python comparison cannot run here.
var ErrNoPython = errors.New("no Python with numpy and Pillow")

// checkPython reports whether python can import numpy and Pillow.
func checkPython(ctx context.Context, python string) error {
	if _, err := os.Stat(python); err != nil {
		return fmt.Errorf("%w: %v (Debian: apt-get install python3-numpy python3-pil)", ErrNoPython, err)
	}
	cmd := exec.CommandContext(ctx, python, "-c", "import numpy, PIL")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("%w: %s cannot import numpy and PIL: %s (Debian: apt-get install python3-numpy python3-pil)", ErrNoPython, python, msg)
	}
	return nil
}

// runPython runs the embedded script and returns its figures in the order
// it printed them: numbers as float64, anything else as a string.
func runPython(ctx context.Context, python string, quick bool) ([]kv, error) {
	dir, err := os.MkdirTemp("", "ppool-bench-py-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "py_bench.py")
	if err := os.WriteFile(script, pyBench, 0o644); err != nil {
		return nil, err
	}
	args := []string{script}
	if quick {
		args = append(args, "--quick")
	}
	cmd := exec.CommandContext(ctx, python, args...)
	// One BLAS thread per process, as ppool's workers get: the comparison
	// is per core.
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", python, filepath.Base(script), err, tail(stderr.String(), 2000))
	}
	var figs []kv
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || !strings.HasPrefix(name, "python_") {
			continue
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			figs = append(figs, kv{name, f})
		} else {
			figs = append(figs, kv{name, value})
		}
	}
	if len(figs) == 0 {
		return nil, fmt.Errorf("%s printed no figures\n%s", python, tail(stderr.String(), 2000))
	}
	return figs, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
