//go:build !race

// Not under the race detector: its shadow memory needs more address space
// than any limit that makes the run itself run out.

package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ppool/ppool/internal/cli"
)

// TestRuntimeOutOfMemoryIsNotExit2: exit status 2 means a bad jobs file or
// bad usage; a master that the Go runtime stops for want of memory must
// not say that. A million tasks expanded under a small address-space limit
// is a real out-of-memory death of the master (the runtime's "fatal
// error: out of memory").
func TestRuntimeOutOfMemoryIsNotExit2(t *testing.T) {
	if testing.Short() {
		t.Skip("expands a million tasks")
	}
	dir := t.TempDir()
	jobsFile := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(jobsFile, []byte("jobs:\n  - name: a\n    kind: image.mandelbrot\n    count: 1000000\n    params: {width: 1, height: 1}\n    output: out/a{index}.png\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--dry-run", jobsFile)
	cmd.Env = append(os.Environ(), envAddressSpace+"=128")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	head, _, _ := strings.Cut(stderr.String(), "\n\n")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("ppool under a 128 MiB address-space allowance: %v, want an out-of-memory death; stderr begins:\n%s", err, head)
	}
	if !strings.Contains(stderr.String(), "out of memory") {
		t.Fatalf("ppool did not run out of memory (%v); stderr begins:\n%s", err, head)
	}
	if code := ee.ExitCode(); code == cli.ExitUsage {
		t.Fatalf("out of memory exited %d, the status of a bad jobs file; stderr begins:\n%s", code, head)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Errorf("out of memory ended ppool with %v, want SIGABRT", ee.ProcessState)
	}
}
