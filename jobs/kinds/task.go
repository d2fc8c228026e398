package kinds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/ppool/ppool/workerproc"
)

// TaskFunc is the one worker function behind every kind, "jobs.task": it
// looks the kind up and runs the task, a part of it, or the merge of its
// parts. Every binary that links this package serves it.
var TaskFunc = workerproc.Register("jobs.task", task)

// task is runTask's body. The journal needs the hash of every input file
// and of the output: a kind that reads or writes a file whole hashes its
// bytes on the way (see Hasher) and reports the hashes in its
// Outcome, and only the files it did not hash are read again here.
func task(ctx context.Context, t Task) (Outcome, error) {
	k, ok := kinds[t.Kind]
	if !ok {
		return Outcome{}, fmt.Errorf("this worker has no job kind %q", t.Kind)
	}
	var o *Outcome
	var err error
	switch t.Mode {
	case "merge":
		if k.Merge == nil {
			return Outcome{}, fmt.Errorf("%s: kind cannot merge parts", t.Kind)
		}
		o, err = k.Merge(ctx, &t)
	default:
		o, err = k.Run(ctx, &t)
	}
	if err != nil {
		return Outcome{}, err
	}
	if o == nil {
		o = &Outcome{Output: t.Output}
	}
	if t.Mode == "part" {
		// The journal keeps finished parts, for --resume to reuse.
		o.InputHashes = nil // recorded for whole tasks only
		if t.Part != nil && t.Part.Path != "" && o.OutputHash == "" {
			if o.OutputHash, err = hashFile(t.Part.Path); err != nil {
				return Outcome{}, fmt.Errorf("the part succeeded but its output is unreadable: %w", err)
			}
		}
		return *o, nil
	}
	// The hashes the journal needs, while the files are in the page cache.
	if o.OutputHash == "" {
		if o.OutputHash, err = hashFile(t.Output); err != nil {
			return Outcome{}, fmt.Errorf("the task succeeded but its output is unreadable: %w", err)
		}
	}
	if t.Mode != "run" {
		o.InputHashes = nil
		return *o, nil
	}
	for _, in := range t.Inputs {
		if in.Path == "" {
			continue
		}
		if _, ok := o.InputHashes[in.Path]; ok {
			continue // hashed by the kind as it read the file
		}
		if o.InputHashes == nil {
			o.InputHashes = map[string]string{}
		}
		if o.InputHashes[in.Path], err = hashFile(in.Path); err != nil {
			return Outcome{}, fmt.Errorf("input %s: %w", in.Path, err)
		}
	}
	return *o, nil
}

// A Hasher computes, from a file's bytes as a kind writes (or reads) them,
// the hash the journal records for the file, so that the worker need not
// read the file again: write every byte of the file to it, in order, and
// put Sum into Outcome.OutputHash (or Outcome.InputHashes).
type Hasher struct{ h hash.Hash }

// NewHasher returns a Hasher that has seen no bytes.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Write adds p to the hashed bytes; it never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the hash of the bytes written so far, as the journal records
// it (what HashFile returns for a file holding them).
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// hashFile is HashFile's hash alone, not cut short by a context.
func hashFile(path string) (string, error) {
	h, _, err := HashFile(context.Background(), path)
	return h, err
}

// hashBufs holds the read buffers of HashFile.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// HashFile returns the SHA-256 (in hex) and the size of a regular file, as
// the journal records it. It opens without blocking and refuses anything
// but a regular file (a named pipe or a device would hang or never end),
// and stops with ctx's error when ctx ends.
func HashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if why := NotRegular(st.Mode()); why != "" {
		return "", 0, fmt.Errorf("%s is %s; ppool reads regular files only", path, why)
	}
	h := sha256.New()
	// One buffer per hashing goroutine, reused: a fresh 1 MiB slice for
	// each file was most of what hashing a small input cost (allocated,
	// zeroed and collected per task).
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := *bp
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// NotRegular describes a file that is not a regular one (a named pipe, a
// device, a socket), or returns "" for a regular file. Reading one could
// block forever (a FIFO with no writer) or never end (/dev/zero).
func NotRegular(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return ""
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}
