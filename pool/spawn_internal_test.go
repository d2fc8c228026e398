package pool

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/internal/contain"
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

// TestReaperKillsCgroups: the reaper, once its stdin closes (the master
// died), kills what is in the cgroups it was told of, even in cgroups
// under them, and removes them all.
func TestReaperKillsCgroups(t *testing.T) {
	root, err := contain.NewRoot()
	if err != nil {
		t.Skipf("no cgroup on this machine: %v", err)
	}
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300 & echo $!")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g, err := root.Prepare(cmd.SysProcAttr)
	if g == nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill(time.Second) })
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.Started()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the shell printed %q", line)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	_ = cmd.Wait()
	inner := filepath.Join(g.Path, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inner, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	r, err := startReaper()
	if err != nil {
		t.Fatal(err)
	}
	r.add(cmd.Process.Pid, g.Path)
	r.stop()
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z") {
		t.Errorf("the escapee %d outlived the reaper: %s", pid, b)
	}
	if _, err := os.Stat(g.Path); !os.IsNotExist(err) {
		t.Errorf("the cgroup %s is still there: %v", g.Path, err)
	}
}
