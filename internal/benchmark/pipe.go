package benchmark

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/ppool/ppool/internal/launch"
)

// EnvPipeChild marks the echo child of the pipe floor measurement: this
// same binary, re-executed. The package's init turns such a process into
// the child, before main runs, so that it works for any main that imports
// this package (cmd/ppool, test binaries) without a hidden subcommand.
const EnvPipeChild = "PPOOL_BENCH_PIPE_CHILD"

func init() {
	if os.Getenv(EnvPipeChild) == "" {
		return
	}
	if err := pipeChild(); err != nil {
		fmt.Fprintf(os.Stderr, "ppool bench: pipe echo child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// pipeChild echoes length-prefixed frames from fd 3 to fd 4 until EOF,
// flushing whenever it has read everything the master sent: the loop of
// ../shared/bench/pipelimit, the floor any pipe-based pool can reach.
func pipeChild() error {
	in := bufio.NewReaderSize(os.NewFile(3, "in"), 1<<20)
	out := bufio.NewWriterSize(os.NewFile(4, "out"), 1<<20)
	var hdr [4]byte
	buf := make([]byte, 1<<16)
	for {
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if int(n) > len(buf) {
			return fmt.Errorf("frame of %d bytes, over %d", n, len(buf))
		}
		if _, err := io.ReadFull(in, buf[:n]); err != nil {
			return err
		}
		out.Write(hdr[:])
		out.Write(buf[:n])
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

// pipeRoundTrips starts the echo child and returns n round trip times of a
// 16-byte message, after warm round trips that are not kept.
func pipeRoundTrips(ctx context.Context, n, warm int) ([]time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("pipe floor: finding this program to re-execute: %w", err)
	}
	child, err := (&launch.Cmd{Path: exe, Env: append(os.Environ(), EnvPipeChild+"=1"), Output: os.Stderr}).Start()
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
	msg := make([]byte, 4+16)
	binary.LittleEndian.PutUint32(msg, 16)
	copy(msg[4:], "0123456789abcdef")
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
