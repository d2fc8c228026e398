// Package contain keeps what a child process gets and what it leaves
// behind to what its parent means: CloseOnExec keeps it from inheriting
// stray descriptors, and a Root starts it in a cgroup (v2) of its own,
// where the machine lets this process make one, so that the process and
// everything it starts can be killed together. A process group does not hold them: any
// descendant can leave it with setsid or setpgid, as every daemon does. A
// cgroup holds every descendant, whatever it calls, unless it is privileged
// enough to move itself to another cgroup.
//
// A cgroup can be made where cgroup v2 is mounted (alone, or beside v1 as
// "unified"), the kernel is 5.14 or later (cgroup.kill), and this process
// may write to its own cgroup's directory: as root, or in a cgroup
// delegated to its user. Elsewhere Prepare returns nil and the caller falls
// back on process groups.
package contain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Root is where one owner (a pool) makes the cgroups of its processes: a
// directory under this process's own cgroup. The zero Root is not usable;
// make one with NewRoot. A nil *Root makes no cgroups.
type Root struct {
	dir    string // this process's own cgroup directory
	prefix string // of the names of the cgroups made here
	seq    atomic.Int64

	mu  sync.Mutex
	off error // why no more cgroups are made, once one could not be
}

var roots atomic.Int64 // distinguishes the roots of one process

// NewRoot finds this process's own cgroup v2 directory and checks that a
// process can be started in a cgroup made there, by starting /bin/sh in
// one. It returns nil, and why, if not.
func NewRoot() (*Root, error) {
	dir, err := ownDir()
	if err != nil {
		return nil, err
	}
	r := &Root{
		dir:    dir,
		prefix: fmt.Sprintf("ppool-%d-%d-", os.Getpid(), roots.Add(1)),
	}
	probed.Do(func() { probed.err = probe(r) })
	if probed.err != nil {
		return nil, probed.err
	}
	return r, nil
}

// probed is the outcome of the one probe a process makes: whether a
// process can start in a cgroup here does not change, and a probe costs a
// process start, which every pool's New would otherwise pay.
var probed struct {
	sync.Once
	err error
}

// probe starts /bin/sh in a cgroup of r. clone3 may be refused (ENOSYS from
// a container's seccomp filter), or the cgroup unusable (EBUSY, EOPNOTSUPP
// in some modes), and a failed start cannot be tried again without the
// cgroup.
func probe(r *Root) error {
	cmd := exec.Command("/bin/sh", "-c", ":")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	g, err := r.Prepare(cmd.SysProcAttr)
	if g == nil {
		if err == nil {
			err = r.off
		}
		return err
	}
	err = cmd.Run()
	g.Kill(time.Second)
	if err != nil {
		return fmt.Errorf("starting a process in a cgroup: %w", err)
	}
	return nil
}

// Group is the cgroup of one process and its descendants.
type Group struct {
	// Path is the cgroup's directory.
	Path string
	dir  *os.File // open until the process has started in it
}

// Prepare makes a new cgroup and sets attr so that a process started with
// it starts inside (clone3's CLONE_INTO_CGROUP): it is never outside, not
// even for the moment before it could fork. It returns nil if no cgroup can
// be made: with the reason the first time, when it stops trying, and nil
// later.
func (r *Root) Prepare(attr *syscall.SysProcAttr) (*Group, error) {
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	off := r.off
	r.mu.Unlock()
	if off != nil {
		return nil, nil
	}
	path := filepath.Join(r.dir, r.prefix+strconv.FormatInt(r.seq.Add(1), 10))
	if err := os.Mkdir(path, 0o755); err != nil {
		return nil, r.disable(err)
	}
	// cgroup.kill (Linux 5.14) is how Kill kills; a kernel that has it
	// also has CLONE_INTO_CGROUP (5.7).
	if _, err := os.Stat(filepath.Join(path, "cgroup.kill")); err != nil {
		_ = os.Remove(path)
		return nil, r.disable(fmt.Errorf("the kernel has no cgroup.kill: %w", err))
	}
	dir, err := os.Open(path)
	if err != nil {
		_ = os.Remove(path)
		return nil, r.disable(err)
	}
	attr.UseCgroupFD = true
	attr.CgroupFD = int(dir.Fd())
	return &Group{Path: path, dir: dir}, nil
}

// disable stops r making cgroups, for the reason err, and returns err,
// or nil if r was stopped already.
func (r *Root) disable(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off != nil {
		return nil
	}
	r.off = err
	return err
}

// Dir is the directory where r makes its cgroups: this process's own
// cgroup.
func (r *Root) Dir() string { return r.dir }

// Prefix begins the name of every cgroup r makes.
func (r *Root) Prefix() string { return r.prefix }

// Started lets go of what Prepare kept open for the start. Call it once
// the process has started, or failed to.
func (g *Group) Started() {
	if g != nil && g.dir != nil {
		g.dir.Close()
		g.dir = nil
	}
}

// Kill kills every process in the cgroup, waits at most wait for the
// kernel to have removed them all, and removes the cgroup. It reports
// whether the cgroup is gone: if not (a process stuck in the kernel), its
// owner should try again later.
func (g *Group) Kill(wait time.Duration) bool {
	if g == nil {
		return true
	}
	g.Started()
	_ = os.WriteFile(filepath.Join(g.Path, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(wait)
	pause := 100 * time.Microsecond
	for {
		// rmdir fails (EBUSY) while any process is in the cgroup (a
		// zombie no longer counts) or any cgroup under it: a worker that
		// runs a pool of its own made some.
		err := removeTree(g.Path)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// CloseOnExec sets close-on-exec on every descriptor of this process
// above 2 that lacks it, so that a child process started next inherits
// what it is given (os/exec's Stdin, Stdout, Stderr and ExtraFiles) and
// nothing else: os/exec passes on every descriptor without the flag,
// and a process may hold some it did not open (inherited from its own
// parent, which Go leaves as they are) or that other code opened raw. Go
// opens everything it opens with the flag; a descriptor meant for a child
// process reaches it through os/exec's ExtraFiles whatever its flag.
func CloseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
		}
	}
}

// removeTree removes the cgroup dir and every cgroup under it, deepest
// first.
func removeTree(dir string) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			_ = removeTree(filepath.Join(dir, e.Name()))
		}
	}
	return os.Remove(dir)
}

// ownDir is this process's cgroup v2 directory: its path in
// /proc/self/cgroup ("0::/path") under where cgroup2 is mounted.
func ownDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel, found := "", false
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 in /proc/self/cgroup")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source options
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		root, mnt := unescape(fields[3]), unescape(fields[4])
		if root == "/" {
			return filepath.Join(mnt, rel), nil
		}
		if r, ok := strings.CutPrefix(rel, root); ok && (r == "" || r[0] == '/') {
			return filepath.Join(mnt, r), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("cgroup v2 is not mounted")
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
