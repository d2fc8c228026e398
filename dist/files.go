package dist

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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
	"golang.org/x/sys/unix"

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
// The store hashes what it stored: an object whose content is not hash
// (the file changed since it was hashed) is removed and refused, so that
// no reader is ever handed other content under that name.
func putFile(ctx context.Context, obs jetstream.ObjectStore, path, hash string) error {
	want, err := objectDigest(hash)
	if err != nil {
		return err
	}
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
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: hash}, f)
	if err != nil {
		return err
	}
	if info.Digest != want {
		obs.Delete(ctx, hash)
		return fmt.Errorf("storing %s: %w", path, &contentError{want: hash, digest: info.Digest})
	}
	return nil
}

// getFile writes the object hash to path, checking its content against
// the hash, through a temporary file beside it renamed into place when
// whole: path is never seen half-written or with other content.
//
// The store's reader hashes the content as it reads it and fails at the
// end if that is not the digest stored with the object; the digest is
// checked against hash first, so one pass of SHA-256 checks the content
// against the name (a second one here cost a fifth of a fetch's CPU).
func getFile(ctx context.Context, obs jetstream.ObjectStore, hash, path string) error {
	want, err := objectDigest(hash)
	if err != nil {
		return err
	}
	r, err := obs.Get(ctx, hash)
	if err != nil {
		return fmt.Errorf("fetching file %s: %w", hash[:12], err)
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return fmt.Errorf("fetching file %s: %w", hash[:12], err)
	}
	if info.Digest != want {
		return fmt.Errorf("fetching file %s: %w", hash[:12], &contentError{want: hash, digest: info.Digest})
	}
	return writeAtomic(path, func(f *os.File) error {
		// Hidden from io.CopyBuffer, *os.File's ReadFrom would read
		// through a buffer of its own of 32 KiB.
		_, err := io.CopyBuffer(struct{ io.Writer }{f}, r, make([]byte, max(min(info.Size, fetchBuffer), 512)))
		return err
	})
}

// fetchBuffer is the most read from the store at once: one chunk of the
// object (128 KiB by default) per read and per write, where io.Copy's
// 32 KiB would take four of each.
const fetchBuffer = 256 << 10

// contentError is content whose SHA-256 is not the one it was named by.
type contentError struct {
	want   string // hex
	digest string // the store's form, "SHA-256=" and base64
}

func (e *contentError) Error() string {
	got := e.digest
	if sum, err := jetstream.DecodeObjectDigest(e.digest); err == nil && len(sum) == sha256.Size {
		got = hex.EncodeToString(sum)[:12]
	}
	return fmt.Sprintf("content hash %s, not %s", got, e.want[:12])
}

// objectDigest is the store's form of the SHA-256 named by hash, as an
// object's info carries it.
func objectDigest(hash string) (string, error) {
	sum, err := hex.DecodeString(hash)
	if err != nil || len(sum) != sha256.Size {
		return "", fmt.Errorf("bad file hash %q", truncate(hash, 80))
	}
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum), nil
}

// writeChecked writes data to path atomically if its SHA-256 is hash.
func writeChecked(path, hash string, data []byte) error {
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != hash {
		return fmt.Errorf("content hash %s, not %s", got[:12], hash[:12])
	}
	return writeAtomic(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomic writes a file through a temporary file beside path, which
// replaces path if write returns no error.
func writeAtomic(path string, write func(*os.File) error) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = replaceFile(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// replaceFile renames tmp to path. Over a regular file it swaps the two
// instead (RENAME_EXCHANGE), then removes tmp, which holds the old
// content by then: ext4 writes a file's data out before renaming it over
// another (auto_da_alloc, for programs that do not fsync), which cost an
// 8 MiB blob's fetch a seventh of its time here. Outputs need no such
// flush: the run syncs their file systems once, as it ends, and --resume
// checks their hashes. Readers of path see the old file or the new one,
// as with a rename.
func replaceFile(tmp, path string) error {
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return os.Rename(tmp, path)
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	if err != nil {
		// Not supported by the file system (EINVAL), or path is gone.
		return os.Rename(tmp, path)
	}
	if fi, err := os.Lstat(tmp); err == nil && !fi.Mode().IsRegular() {
		// path became something else between the check and the swap: put
		// it back, and fail as a rename over it would have.
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("replacing %s: %s was swapped for it and cannot be swapped back: %w", path, tmp, err)
		}
		return fmt.Errorf("replacing %s: %w", path, &os.PathError{Op: "rename", Path: path, Err: unix.EISDIR})
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("removing the replaced content of %s: %w", path, err)
	}
	return nil
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
