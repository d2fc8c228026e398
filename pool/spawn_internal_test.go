package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifiedBinary: the copy kept of a checked binary does not follow
// writes to the file; where no sealed copy can be made, a start after such
// a write is refused.
func TestVerifiedBinary(t *testing.T) {
	for _, sealed := range []bool{true, false} {
		t.Run(map[bool]string{true: "sealed copy", false: "hashed before each start"}[sealed], func(t *testing.T) {
			defer func(v bool) { memfdUnavailable = v }(memfdUnavailable)
			memfdUnavailable = !sealed
			path := filepath.Join(t.TempDir(), "worker")
			good := []byte("#!/bin/sh\necho the checked worker\n")
			if err := os.WriteFile(path, good, 0o755); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(good)
			b, err := openVerified(path, strings.ToUpper(hex.EncodeToString(sum[:])))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.sealed != sealed {
				t.Fatalf("sealed = %v, want %v", b.sealed, sealed)
			}
			if err := b.check(); err != nil {
				t.Fatalf("check before any write: %v", err)
			}
			if err := os.WriteFile(path, []byte("#!/bin/sh\necho an impostor\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(io.NewSectionReader(b.f, 0, 1<<20))
			if err != nil {
				t.Fatal(err)
			}
			err = b.check()
			switch {
			case sealed && (err != nil || string(got) != string(good)):
				t.Errorf("after a write in place: check %v, the copy holds %q", err, got)
			case !sealed && !errors.As(err, new(*StartError)):
				t.Errorf("after a write in place: check %v, want a *StartError", err)
			}
			if sealed {
				if _, err := b.f.WriteAt([]byte("x"), 0); err == nil {
					t.Error("the sealed copy took a write")
				}
			}
		})
	}
}
