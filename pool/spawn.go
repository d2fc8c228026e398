package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// verifiedBinary is the worker binary checked against Config.SHA256, open
// in the master (close-on-exec) and handed to each worker as its fd 5 (launch.BinaryFD),
// which the worker is executed through (/proc/self/fd/5): what runs is
// what was hashed. It is a sealed in-memory copy where the kernel allows
// one, so that no write to the file, in place or not, reaches a worker;
// otherwise it is the file itself, hashed again before every start. A
// script's interpreter reads the script from the same fd 5, which is why
// it is not close-on-exec in the worker.
type verifiedBinary struct {
	f      *os.File
	path   string
	want   string // lower-case hex
	sealed bool
}

// memfdUnavailable is set by tests to exercise the fallback of hashing
// before every start.
var memfdUnavailable bool

// openVerified reads the binary at path, checks its SHA-256 against want,
// and keeps what it read: in a sealed memfd if it can, else the open file.
func openVerified(path, want string) (*verifiedBinary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &StartError{Command: path, Reason: "cannot open the worker binary to check its checksum", Err: err}
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	b := &verifiedBinary{path: path, want: strings.ToLower(want)}
	mem, memErr := newMemfd(path)
	h := sha256.New()
	var dst io.Writer = h
	if memErr == nil {
		defer mem.Close()
		dst = io.MultiWriter(h, mem)
	}
	if _, err := io.Copy(dst, f); err != nil {
		return nil, &StartError{Command: path, Reason: "cannot read the worker binary to check its checksum", Err: err}
	}
	if err := b.compare(h.Sum(nil)); err != nil {
		return nil, err
	}
	if memErr == nil {
		if b.f, err = sealMemfd(mem); err != nil {
			return nil, &StartError{Command: path, Reason: "cannot seal the in-memory copy of the verified binary", Err: err}
		}
		b.sealed = true
		return b, nil
	}
	// No memfd (a kernel without it, or vm.memfd_noexec=2): execute the
	// file, and hash it again before each start.
	b.f, f = f, nil
	return b, nil
}

func (b *verifiedBinary) compare(sum []byte) error {
	if got := hex.EncodeToString(sum); got != b.want {
		return &StartError{Command: b.path, Reason: fmt.Sprintf("refused: its SHA-256 is %s, but the pool was told to run only %s", got, b.want)}
	}
	return nil
}

// check runs before every start: a sealed copy cannot change; the file
// itself is hashed again.
func (b *verifiedBinary) check() error {
	if b.sealed {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b.f, 0, 1<<62)); err != nil {
		return &StartError{Command: b.path, Reason: "cannot read the worker binary to check its checksum", Err: err}
	}
	return b.compare(h.Sum(nil))
}

func (b *verifiedBinary) Close() error { return b.f.Close() }

// newMemfd makes an executable memfd that can be sealed.
func newMemfd(path string) (*os.File, error) {
	if memfdUnavailable {
		return nil, errors.ErrUnsupported
	}
	name := "ppool-worker:" + filepath.Base(path)
	// MFD_EXEC is needed where vm.memfd_noexec is 1, and unknown to
	// kernels before 6.3, which make every memfd executable.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// sealMemfd forbids any change to mem's bytes and returns a read-only
// descriptor of it, for workers to inherit.
func sealMemfd(mem *os.File) (*os.File, error) {
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return nil, err
	}
	return os.Open("/proc/self/fd/" + strconv.Itoa(int(mem.Fd())))
}
