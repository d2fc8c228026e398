package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// Functions for the tests of how workers are launched and what is kept of
// them.
var (
	// crashLoudly writes a first line, as a Go runtime crash writes its
	// cause, then many more, then dies.
	crashLoudly = workerproc.Register("crashLoudly", func(ctx context.Context, lines int) (int, error) {
		fmt.Fprintln(os.Stderr, "fatal error: out of memory (the first line)")
		for i := range lines {
			fmt.Fprintf(os.Stderr, "goroutine %d [running]: a line of the dump\n", i)
		}
		fmt.Fprintln(os.Stderr, "the last line")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})
)

// TestCrashReportKeepsHeadAndTail: a worker's crash report holds the
// beginning of its output, where a Go runtime puts the cause, as well as
// the end, and says how much is left out between them.
func TestCrashReportKeepsHeadAndTail(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	_, err := pool.Apply(ctx, p, crashLoudly, 2000)
	var we *pool.WorkerExitError
	if !errors.As(err, &we) {
		t.Fatalf("crashing task: %v, want a *WorkerExitError", err)
	}
	for _, want := range []string{"fatal error: out of memory (the first line)", "the last line", "bytes omitted"} {
		if !strings.Contains(we.Stderr, want) {
			t.Errorf("the report's output lacks %q:\n%s", want, we.Stderr)
		}
	}
	if n := len(we.Stderr); n > 8<<10 {
		t.Errorf("the report keeps %d bytes of output, want at most 8 KiB", n)
	}
}
