package dist_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
)

// Content reaches the store and comes back only under its own SHA-256: a
// file that is not what its hash says is refused and not left stored, an
// object whose content is not its name is refused on the way back, and a
// good file comes back whole with no temporary file left.
func TestFilesCheckedAgainstTheirHash(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	obs, err := dist.FileBucketForTest(ctx, js, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hashOf := func(b []byte) string { sum := sha256.Sum256(b); return hex.EncodeToString(sum[:]) }
	good := bytes.Repeat([]byte("ppool "), 100_000) // several chunks
	other := bytes.Repeat([]byte("other "), 100_000)
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, other, 0o644); err != nil {
		t.Fatal(err)
	}

	// The file changed after it was hashed.
	err = dist.PutFileForTest(ctx, obs, src, hashOf(good))
	if err == nil || !strings.Contains(err.Error(), "content hash "+hashOf(other)[:12]) {
		t.Fatalf("storing other content under a file's hash: %v, want a content hash error", err)
	}
	if _, err := obs.GetInfo(ctx, hashOf(good)); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("the refused object is still stored: %v", err)
	}

	// An object stored by another hand under a name not its hash.
	if _, err := obs.PutBytes(ctx, hashOf(good), other); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	err = dist.GetFileForTest(ctx, obs, hashOf(good), dst)
	if err == nil || !strings.Contains(err.Error(), "content hash") {
		t.Fatalf("fetching an object whose content is not its name: %v, want a content hash error", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused content reached %s: %v", dst, err)
	}

	// A good file, there and back.
	if err := os.WriteFile(src, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, hashOf(good)); err != nil {
		t.Fatal(err)
	}
	if err := dist.PutFileForTest(ctx, obs, src, hashOf(good)); err != nil {
		t.Fatal(err)
	}
	if err := dist.GetFileForTest(ctx, obs, hashOf(good), dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("fetched %d bytes (%v), want the %d stored", len(got), err, len(good))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Over a file it replaces it (swapping the two, then removing the
	// old); over a folder it fails and leaves the folder.
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dist.GetFileForTest(ctx, obs, hashOf(good), dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("replaced with %d bytes (%v), want the %d stored", len(got), err, len(good))
	}
	folder := filepath.Join(dir, "folder")
	if err := os.MkdirAll(filepath.Join(folder, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := dist.GetFileForTest(ctx, obs, hashOf(good), folder); err == nil {
		t.Fatal("fetched over a folder")
	}
	if fi, err := os.Stat(filepath.Join(folder, "inside")); err != nil || !fi.IsDir() {
		t.Fatalf("the folder fetched over was changed: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
