// Package pipeecho is the echo child of ppool bench's pipe floor: a process
// that echoes length-prefixed frames from fd 3 to fd 4, the loop of
// ../shared/bench/pipelimit and the floor any pipe-based pool can reach.
//
// A program becomes the child when it is started with Env set: this
// package's init serves the echo and exits before main runs. Both ppool
// and ppool-worker import it, so that the floor's child can be the very
// binary the pool's workers run, and the floor differ from Apply only by
// the pool.
package pipeecho

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Env marks the echo child: a process started with it set echoes and exits.
const Env = "PPOOL_BENCH_PIPE_CHILD"

// MaxFrame is the largest frame the child echoes.
const MaxFrame = 1 << 16

func init() {
	if os.Getenv(Env) == "" {
		return
	}
	if err := Serve(os.NewFile(3, "in"), os.NewFile(4, "out")); err != nil {
		fmt.Fprintf(os.Stderr, "ppool bench: pipe echo child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// AppendFrame appends payload to dst as one frame: its length, 4 bytes
// little-endian, then its bytes.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// Serve echoes frames (a 4-byte little-endian length, then that many
// bytes) from in to out until in ends, flushing whenever it has echoed
// everything that was sent. A frame over MaxFrame is an error.
func Serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 1<<20)
	w := bufio.NewWriterSize(out, 1<<20)
	var hdr [4]byte
	buf := make([]byte, MaxFrame)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > MaxFrame {
			return fmt.Errorf("frame of %d bytes, over %d", n, MaxFrame)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		w.Write(hdr[:])
		w.Write(buf[:n])
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}
