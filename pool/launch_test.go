package pool_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/pool"
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
		{"go-plugin", func(string) []byte { return self }, pool.Config{Plugin: true, Env: []string{"PPOOL_TEST_PLUGIN=1"}}},
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
			cfg.Workers, cfg.Command, cfg.SHA256, cfg.StartTimeout = 1, []string{bin}, hex.EncodeToString(sum[:]), 5*time.Second
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
}
