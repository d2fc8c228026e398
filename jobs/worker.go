package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/ppool/ppool/workerproc"
)

// runTask is the one worker function behind every kind: it looks the kind
// up and runs the task, a part of it, or the merge of its parts.
var runTask = workerproc.Register("jobs.task", task)

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
// it (what hashFile returns for a file holding them).
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
