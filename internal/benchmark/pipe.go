package benchmark

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/ppool/ppool/internal/benchmark/pipeecho"
	"github.com/ppool/ppool/internal/launch"
)

// pipeRoundTrips starts the echo child, exe or else this program, and
// returns n round trip times of a 16-byte message, after warm round trips
// that are not kept.
func pipeRoundTrips(ctx context.Context, exe string, n, warm int) ([]time.Duration, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("pipe floor: finding this program to re-execute: %w", err)
		}
	}
	child, err := (&launch.Cmd{Path: exe, Env: append(os.Environ(), pipeecho.Env+"=1"), Output: os.Stderr}).Start()
	if err != nil {
		return nil, fmt.Errorf("pipe floor: starting the echo child: %w", err)
	}
	toW, fromR := child.Tasks, child.Results
	defer fromR.Close()
	defer toW.Close()
	// The child exits at EOF on its input; whatever happens here, close it
	// and wait for it exactly once.
	waited := false
	defer func() {
		if !waited {
			toW.Close()
			child.Kill()
			_ = child.Wait()
		}
	}()

	w := bufio.NewWriterSize(toW, 1<<16)
	r := bufio.NewReaderSize(fromR, 1<<16)
	msg := pipeecho.AppendFrame(nil, []byte("0123456789abcdef"))
	reply := make([]byte, len(msg))
	lat := make([]time.Duration, 0, n)
	for i := range warm + n {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		t0 := time.Now()
		w.Write(msg)
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("pipe floor: writing to the echo child: %w", err)
		}
		if _, err := io.ReadFull(r, reply); err != nil {
			return nil, fmt.Errorf("pipe floor: reading from the echo child: %w", err)
		}
		if i >= warm {
			lat = append(lat, time.Since(t0))
		}
	}
	toW.Close()
	waited = true
	if err := child.Wait(); err != nil {
		return nil, fmt.Errorf("pipe floor: echo child: %w", err)
	}
	return lat, nil
}

// percentile returns the q-quantile (0 ≤ q < 1) of xs, which it sorts.
func percentile[T cmp.Ordered](xs []T, q float64) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}
