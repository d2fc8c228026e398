package pool_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/internal/contain"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
	"github.com/ppool/ppool/workerproc"
)

// Functions for the tests of how workers are launched and what is kept of
// them.
var (
	// crashLoudly writes a first line, as a Go runtime crash writes its
	// cause, then many more, then dies.
	crashLoudly = workerproc.Register("crashLoudly", func(ctx context.Context, lines int) (int, error) {
		fmt.Fprintln(os.Stderr, "fatal error: out of memory (the first line)")
		for i := range lines {
			fmt.Fprintf(os.Stderr, "goroutine %d [running]: a line of the dump\n", i)
		}
		fmt.Fprintln(os.Stderr, "the last line")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})
	// openFiles lists what the worker's descriptors point to, by fd.
	openFiles = workerproc.Register("openFiles", func(ctx context.Context, _ struct{}) (map[int]string, error) {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return nil, err
		}
		files := map[int]string{}
		for _, e := range ents {
			fd, _ := strconv.Atoi(e.Name())
			files[fd], _ = os.Readlink("/proc/self/fd/" + e.Name())
		}
		return files, nil
	})
	// spawnEscapee starts a long sleep in a session of its own, out of its
	// worker's process group, as a daemon would, and returns its pid.
	spawnEscapee = workerproc.Register("spawnEscapee", func(ctx context.Context, _ struct{}) (int, error) {
		cmd := exec.Command("sleep", "300")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	// becomeSleep replaces the worker's program with sleep, keeping its
	// pid and its pipes, so that the pool sees a busy worker while no
	// process executes the worker's binary any more: the binary can then
	// be written in place (the kernel refuses, "text file busy", while it
	// runs). It writes its pid to marker first.
	becomeSleep = workerproc.Register("becomeSleep", func(ctx context.Context, marker string) (int, error) {
		for _, fd := range []int{3, 4} {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return 0, err
			}
		}
		if err := writeAtomic(marker, strconv.Itoa(os.Getpid())); err != nil {
			return 0, err
		}
		return 0, syscall.Exec("/bin/sleep", []string{"sleep", "300"}, os.Environ())
	})
)

// TestCrashReportKeepsHeadAndTail: a worker's crash report holds the
// beginning of its output, where a Go runtime puts the cause, as well as
// the end, and says how much is left out between them.
func TestCrashReportKeepsHeadAndTail(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	_, err := pool.Apply(ctx, p, crashLoudly, 2000)
	var we *pool.WorkerExitError
	if !errors.As(err, &we) {
		t.Fatalf("crashing task: %v, want a *WorkerExitError", err)
	}
	for _, want := range []string{"fatal error: out of memory (the first line)", "the last line", "bytes omitted"} {
		if !strings.Contains(we.Stderr, want) {
			t.Errorf("the report's output lacks %q:\n%s", want, we.Stderr)
		}
	}
	if n := len(we.Stderr); n > 8<<10 {
		t.Errorf("the report keeps %d bytes of output, want at most 8 KiB", n)
	}
}

// TestChecksumOverwrittenInPlace: with Config.SHA256, a worker binary
// rewritten in place after New (the same inode, other bytes) never runs:
// replacement workers run the bytes that were checked. For an ELF binary,
// a shebang script and a go-plugin worker.
func TestChecksumOverwrittenInPlace(t *testing.T) {
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		bin  func(path string) []byte // the worker's bytes
		cfg  pool.Config
	}{
		{"ELF", func(string) []byte { return self }, pool.Config{Env: []string{"PPOOL_WORKER=1"}}},
		{"shebang script", func(path string) []byte {
			return []byte("#!/bin/sh\nexec " + os.Args[0] + " \"$@\"\n")
		}, pool.Config{Env: []string{"PPOOL_WORKER=1"}}},
		{"go-plugin", func(string) []byte { return self }, pool.Config{Launcher: goplugin.Launcher{}, Env: []string{"PPOOL_TEST_PLUGIN=1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			dir := t.TempDir()
			bin := filepath.Join(dir, "worker")
			good := c.bin(bin)
			if err := os.WriteFile(bin, good, 0o755); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(good)
			cfg := c.cfg
			cfg.Workers, cfg.Command, cfg.SHA256, cfg.StartTimeout = 1, []string{bin}, hex.EncodeToString(sum[:]), 10*time.Second
			p := newPool(t, cfg)
			if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
				t.Fatalf("square(3) = %d, %v", v, err)
			}
			marker := filepath.Join(dir, "pid")
			r := pool.ApplyAsync(ctx, p, becomeSleep, marker)
			pid := waitForPID(t, marker)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			var before syscall.Stat_t
			if err := syscall.Stat(bin, &before); err != nil {
				t.Fatal(err)
			}
			// Once the worker has become sleep, nothing executes the
			// binary and it can be written.
			eventually(t, 10*time.Second, "the binary stayed busy", func() bool {
				f, err := os.OpenFile(bin, os.O_WRONLY|os.O_TRUNC, 0)
				if errors.Is(err, syscall.ETXTBSY) {
					return false
				}
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString("#!/bin/sh\necho the impostor ran >&2\nexit 7\n"); err != nil {
					t.Fatal(err)
				}
				return true
			})
			var after syscall.Stat_t
			if err := syscall.Stat(bin, &after); err != nil || after.Ino != before.Ino {
				t.Fatalf("the binary was replaced, not overwritten in place (inode %d, then %d, %v)", before.Ino, after.Ino, err)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			if _, err := r.Get(ctx); !errors.As(err, new(*pool.WorkerExitError)) {
				t.Fatalf("the task whose worker was killed: %v", err)
			}
			// The replacement runs what was checked, not the impostor.
			short, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if v, err := pool.Apply(short, p, square, 4); v != 16 || err != nil {
				t.Fatalf("after the overwrite: square(4) = %d, %v", v, err)
			}
		})
	}
}

// TestWorkerInheritsOnlyItsFDs: a descriptor the master holds without
// close-on-exec (as one it inherited from its own parent would be) does not
// reach a worker.
func TestWorkerInheritsOnlyItsFDs(t *testing.T) {
	ctx := testCtx(t)
	marker := filepath.Join(t.TempDir(), "inherited-by-the-master")
	f, err := os.Create(marker)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd())) // without close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	p := newPool(t, pool.Config{Workers: 1})
	files, err := pool.Apply(ctx, p, openFiles, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	for fd, target := range files {
		if strings.Contains(target, "inherited-by-the-master") {
			t.Errorf("the worker inherited the master's fd %d (%s)", fd, target)
		}
	}
	for fd, want := range map[int]string{0: "/dev/null", 3: "pipe:", 4: "pipe:"} {
		if !strings.HasPrefix(files[fd], want) {
			t.Errorf("the worker's fd %d is %q, want %s", fd, files[fd], want)
		}
	}
	// Nor does it reach the reaper, which outlives the master.
	reapers := 0
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range procs {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmdline), "/bin/sh\x00-c\x00trap '' INT TERM HUP") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		reapers++
		fds, _ := os.ReadDir("/proc/" + e.Name() + "/fd")
		for _, fd := range fds {
			if target, _ := os.Readlink("/proc/" + e.Name() + "/fd/" + fd.Name()); strings.Contains(target, "inherited-by-the-master") {
				t.Errorf("the reaper inherited the master's fd %s (%s)", fd.Name(), target)
			}
		}
	}
	if reapers == 0 {
		t.Error("found no reaper among this process's children")
	}
}

// needCgroups skips a test of what only a cgroup contains on a machine
// that offers none to this process.
func needCgroups(t *testing.T) *contain.Root {
	t.Helper()
	r, err := contain.NewRoot()
	if err != nil {
		t.Skipf("no cgroup for the workers on this machine (%v): only their process groups are killed", err)
	}
	return r
}

// spawnEscapees has the pool's workers start n programs that leave their
// process groups, and returns their pids; the test kills them at its end
// whatever happens.
func spawnEscapees(t *testing.T, ctx context.Context, p *pool.Pool, n int) []int {
	t.Helper()
	var pids []int
	for range n {
		pid, err := pool.Apply(ctx, p, spawnEscapee, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		if !alive(pid) {
			t.Fatalf("the escapee %d is not running", pid)
		}
		pids = append(pids, pid)
	}
	return pids
}

// gone waits until none of pids runs and no cgroup whose name begins
// with prefix is left in dir.
func gone(t *testing.T, pids []int, dir, prefix string) {
	t.Helper()
	eventually(t, 10*time.Second, "programs started by workers outlived them", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the workers' cgroups were left behind", func() bool {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				return false
			}
		}
		return true
	})
}

// TestDescendantsDie: what a worker starts, even in a session of its own,
// dies when the worker dies, when the pool is closed and when it is
// terminated.
func TestDescendantsDie(t *testing.T) {
	r := needCgroups(t)
	mine := fmt.Sprintf("ppool-%d-", os.Getpid())
	for _, end := range []string{"worker crash", "Close", "Terminate"} {
		t.Run(end, func(t *testing.T) {
			ctx := testCtx(t)
			workers := 2
			if end == "worker crash" {
				workers = 1 // the one that crashes started both
			}
			p, err := pool.New(ctx, pool.Config{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Terminate)
			pids := spawnEscapees(t, ctx, p, 2)
			switch end {
			case "worker crash":
				if _, err := pool.Apply(ctx, p, crash, struct{}{}); !errors.As(err, new(*pool.WorkerExitError)) {
					t.Fatalf("crash: %v", err)
				}
				eventually(t, 10*time.Second, "programs started by workers outlived them", func() bool {
					for _, pid := range pids {
						if alive(pid) {
							return false
						}
					}
					return true
				})
				if err := p.Close(ctx); err != nil {
					t.Fatal(err)
				}
			case "Close":
				if err := p.Close(ctx); err != nil {
					t.Fatal(err)
				}
			case "Terminate":
				p.Terminate()
			}
			gone(t, pids, r.Dir(), mine)
		})
	}
}

// TestDescendantsDieWithAKilledMaster: what workers start, even in a
// session of its own, dies when their master is killed with SIGKILL.
func TestDescendantsDieWithAKilledMaster(t *testing.T) {
	r := needCgroups(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PPOOL_TEST_ESCAPEES_MASTER=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper master: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("helper printed %q", line)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		pids = append(pids, pid)
	}
	if len(pids) != 4 {
		t.Fatalf("helper printed %q, want 2 worker and 2 escapee pids", line)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("process %d not running before the kill", pid)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	gone(t, pids, r.Dir(), fmt.Sprintf("ppool-%d-", cmd.Process.Pid))
}

// The helper master of TestDescendantsDieWithAKilledMaster: it starts a
// pool, has its workers start a program each in a session of their own,
// prints the pids of the workers and the programs, and waits to be killed.
// Its workers, which inherit the variable, are workers first.
func init() {
	if os.Getenv("PPOOL_TEST_ESCAPEES_MASTER") == "" {
		return
	}
	workerproc.Main()
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var pids []string
	for _, w := range p.Stats().PerWorker {
		pids = append(pids, strconv.Itoa(w.PID))
	}
	for range 2 {
		pid, err := pool.Apply(ctx, p, spawnEscapee, struct{}{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(pids, " "))
	select {}
}

// TestEmbedLinksNoGRPC: a program that embeds a pool links neither
// go-plugin nor gRPC; only one that imports pool/goplugin does.
func TestEmbedLinksNoGRPC(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/ppool/ppool/examples/embed").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "google.golang.org/grpc") || strings.HasPrefix(dep, "github.com/hashicorp/go-plugin") {
			t.Errorf("examples/embed links %s", dep)
		}
	}
}
