package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/jobs"
)

// FileBucket is the Object Store bucket that files travel through, each
// named by the SHA-256 of its content: a run's inputs (and the parts a
// merge reads) to agents, outputs too big to travel inline back.
const FileBucket = "ppool_files"

// Inline limits: a file this small travels inside its task message, up to
// InlineTaskLimit bytes of them per message, which keeps every message well
// under the server's default 1 MiB max_payload.
const (
	InlineFileLimit = 64 << 10
	InlineTaskLimit = 384 << 10
)

// FileRef is one file a task reads, by content.
type FileRef struct {
	SHA256 string `msgpack:"sha256"`
	Size   int64  `msgpack:"size"`
	// Data is the content itself when small enough; else the file is
	// the object SHA256 of FileBucket.
	Data []byte `msgpack:"data,omitempty"`
	// Shared, if set, is the file's place under the run's shared root
	// (slash-separated): an agent that proved it sees the same root reads
	// it there in place; another asks the run for it as a blob.
	Shared string `msgpack:"shared,omitempty"`
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (f *FileRef) check() error {
	if !hexHash.MatchString(f.SHA256) {
		return fmt.Errorf("bad file hash %q", truncate(f.SHA256, 80))
	}
	if f.Shared != "" && (f.Data != nil || len(f.Shared) > 4096 || !filepath.IsLocal(filepath.FromSlash(f.Shared)) || strings.ContainsRune(f.Shared, '\\')) {
		return fmt.Errorf("file %s: bad shared path %q", f.SHA256[:12], truncate(f.Shared, 128))
	}
	if f.Size < 0 || f.Data != nil && int64(len(f.Data)) != f.Size {
		return fmt.Errorf("file %s: %d bytes inline, size %d", f.SHA256[:12], len(f.Data), f.Size)
	}
	return nil
}

// fileBucket returns the files' bucket, creating it if need be.
func fileBucket(ctx context.Context, js jetstream.JetStream, create bool) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, FileBucket)
	if err == nil || !create || !errors.Is(err, jetstream.ErrBucketNotFound) {
		if err != nil {
			err = fmt.Errorf("file store %s: %w", FileBucket, err)
		}
		return obs, err
	}
	obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      FileBucket,
		Description: "files of ppool runs, by SHA-256",
		Storage:     jetstream.FileStorage,
		// Content-addressed and shared by runs: none deletes what another
		// may still read; old files age out.
		TTL: 7 * 24 * time.Hour,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		obs, err = js.ObjectStore(ctx, FileBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("file store %s: %w", FileBucket, err)
	}
	return obs, nil
}

// hashFile returns a file's SHA-256 and size, as the journal hashes it:
// a regular file only, opened without blocking.
func hashFile(path string) (string, int64, error) {
	return jobs.HashFile(context.Background(), path)
}

// putFile stores a file under its hash unless the bucket has it already.
func putFile(ctx context.Context, obs jetstream.ObjectStore, path, hash string) error {
	if _, err := obs.GetInfo(ctx, hash); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = obs.Put(ctx, jetstream.ObjectMeta{Name: hash}, f)
	return err
}

// getFile writes the object hash to path, checking its content against
// the hash, through a temporary file beside it renamed into place when
// whole: path is never seen half-written or with other content.
func getFile(ctx context.Context, obs jetstream.ObjectStore, hash, path string) error {
	r, err := obs.Get(ctx, hash)
	if err != nil {
		return fmt.Errorf("fetching file %s: %w", hash[:12], err)
	}
	defer r.Close()
	return writeChecked(path, hash, r)
}

// writeChecked writes r's content to path atomically if its SHA-256 is
// hash.
func writeChecked(path, hash string, r io.Reader) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != hash {
			err = fmt.Errorf("content hash %s, not %s", got[:12], hash[:12])
		}
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

var safeExt = regexp.MustCompile(`^\.[A-Za-z0-9]{1,10}$`)

// cacheExt is the extension an agent keeps on a cached file (kinds may
// tell formats by it): the named path's, if it is a plain one.
func cacheExt(path string) string {
	ext := filepath.Ext(path)
	if safeExt.MatchString(ext) {
		return ext
	}
	return ""
}
