package pool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/internal/contain"
)

// spawner runs every fork of the pool's workers on one OS thread, locked for
// the pool's whole life. Linux delivers a child's parent-death signal when
// the thread that forked it exits, and Go retires threads whose locked
// goroutine returns: forking from arbitrary goroutines would let a worker be
// killed at random when some thread went away.
type spawner struct {
	mu     sync.Mutex
	closed bool
	req    chan func()
	done   chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{req: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the pool
		defer close(s.done)
		for f := range s.req {
			f()
		}
	}()
	return s
}

// do runs f on the spawner's thread and waits for it. It reports false if
// the spawner is already stopped.
func (s *spawner) do(f func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	finished := make(chan struct{})
	s.req <- func() { f(); close(finished) }
	s.mu.Unlock()
	<-finished
	return true
}

// stop ends the spawner's goroutine, and with it its thread. Call it only
// once every worker it started is gone: their parent-death signal fires.
func (s *spawner) stop() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.req)
	}
	s.mu.Unlock()
	<-s.done
}

// reaper is a tiny shell process that outlives a master killed with SIGKILL:
// it reads the process groups and cgroups of live workers on its stdin and,
// when the master's end closes (the master exited, however it exited),
// kills every group and cgroup still listed and removes the cgroups.
// Workers die with the master anyway (parent-death signal); the reaper is
// for the programs workers started, which do not.
type reaper struct {
	mu  sync.Mutex
	w   io.WriteCloser
	cmd *exec.Cmd
}

// The script keeps each listed cgroup in a variable named after its
// process group (a number the pool wrote). A cgroup is removed once empty,
// which takes the kernel a moment after the kill, with any cgroups under it
// (a worker running a pool of its own made some).
const reaperScript = `trap '' INT TERM HUP
groups=""
while read -r op pg cg; do
	case "$op" in
	+) groups="$groups $pg"; eval "cg_$pg=\$cg" ;;
	-) keep=""; for g in $groups; do [ "$g" = "$pg" ] || keep="$keep $g"; done; groups=$keep; unset "cg_$pg" ;;
	esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
for g in $groups; do
	eval "cg=\${cg_$g-}"
	[ -n "$cg" ] || continue
	{ echo 1 > "$cg/cgroup.kill"; } 2>/dev/null
	i=0
	while ! { rmdir "$cg" || find "$cg" -depth -type d -exec rmdir {} +; } 2>/dev/null && [ -d "$cg" ] && [ $i -lt 50 ]; do
		i=$((i+1))
		sleep 0.1 2>/dev/null || sleep 1
	done
done
exit 0`

func startReaper() (*reaper, error) {
	// Like a worker, it inherits nothing it is not given: it outlives the
	// master, and must not keep a pipe of the master's parent open.
	contain.CloseOnExec()
	cmd := exec.Command("/bin/sh", "-c", reaperScript)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the reaper (/bin/sh): %w", err)
	}
	return &reaper{w: w, cmd: cmd}, nil
}

func (r *reaper) send(line string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A write error means the reaper is gone; workers still die with the
	// master, only their children lose the safety net.
	_, _ = r.w.Write([]byte(line))
}

// add lists a worker's process group and its cgroup ("" for none).
func (r *reaper) add(pgid int, cgroup string) {
	r.send("+ " + strconv.Itoa(pgid) + " " + cgroup + "\n")
}

func (r *reaper) remove(pgid int) { r.send("- " + strconv.Itoa(pgid) + "\n") }

func (r *reaper) stop() {
	if r == nil {
		return
	}
	r.w.Close()
	_ = r.cmd.Wait()
}

// enlargePipe asks for a 1 MiB pipe buffer, so a burst of small tasks or a
// large payload moves in fewer wakeups. Refusal (e.g. over
// /proc/sys/fs/pipe-max-size for an unprivileged user) is harmless.
func enlargePipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20)
	})
}

// tailWriter forwards a worker's output to the logger line by line and keeps
// its first and last few KiB for crash reports: the end says what the
// worker was doing, the start often why it died (a Go runtime writes
// "fatal error: ..." first, then a dump of every goroutine).
type tailWriter struct {
	mu      sync.Mutex
	head    []byte // the first headSize bytes written
	tail    []byte // the last tailSize bytes (up to twice that, between trims) written after head
	total   int64  // bytes written after head
	partial []byte
	logLine func(string)
}

const (
	headSize = 1 << 10
	tailSize = 4 << 10
)

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := p
	if n := min(headSize-len(t.head), len(rest)); n > 0 {
		t.head = append(t.head, rest[:n]...)
		rest = rest[n:]
	}
	t.total += int64(len(rest))
	t.tail = append(t.tail, rest...)
	if len(t.tail) > 2*tailSize {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailSize:]...)
	}
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.logLine(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > tailSize { // a very long line: log what we have
		t.logLine(string(t.partial))
		t.partial = nil
	}
	return len(p), nil
}

// String returns the start and the end of the output, with a line saying
// how many bytes between them were left out, if any were.
func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.tail
	if len(b) > tailSize {
		b = b[len(b)-tailSize:]
	}
	omitted := t.total - int64(len(b))
	if omitted == 0 {
		return string(t.head) + string(b)
	}
	sep := "\n"
	if bytes.HasSuffix(t.head, []byte("\n")) {
		sep = ""
	}
	return fmt.Sprintf("%s%s… %d bytes omitted …\n%s", t.head, sep, omitted, b)
}

// verifiedBinary is the worker binary checked against Config.SHA256, open
// in the master (close-on-exec) and handed to each worker as its fd 5,
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

// binaryFD is the worker's fd for its verified binary: after 3 and 4.
const binaryFD = 5

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
