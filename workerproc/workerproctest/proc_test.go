package workerproctest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/internal/contain"
	launcher "github.com/ppool/ppool/internal/launch"
)

// TestCloseKillsEscapees: closing a worker under test kills what it
// started, even in a session of its own, where the machine offers a cgroup.
func TestCloseKillsEscapees(t *testing.T) {
	if _, err := contain.NewRoot(); err != nil {
		t.Skipf("no cgroup on this machine (%v): only the worker's process group is killed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := "setsid sleep 300 & echo $! > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "; exec sleep 300"
	p, err := launch(ctx, []string{"/bin/sh", "-c", script}, &Options{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			p.close()
		}
	})
	var pid int
	within(t, 10*time.Second, "the worker never started its program", func() bool {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if !running(pid) {
		t.Fatalf("the escapee %d is not running", pid)
	}
	p.close()
	closed = true
	within(t, 10*time.Second, "the escapee outlived close", func() bool { return !running(pid) })
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running reports whether pid is a running (not zombie) process.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestLastLinesKeepTheFirst: a reason quoting a worker's output names its
// first line too, where a Go runtime crash says what went wrong, when
// that line is not among the last ones.
func TestLastLinesKeepTheFirst(t *testing.T) {
	var out launcher.Tail
	out.Write([]byte("fatal error: out of memory\n\n"))
	for i := range 3000 {
		out.Write([]byte("goroutine " + strconv.Itoa(i) + " [running]:\n"))
	}
	out.Write([]byte("exit status 2\n"))
	got := lastLines(&out)
	for _, want := range []string{"fatal error: out of memory", "goroutine 2999 [running]:", "exit status 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("lastLines = %q, lacks %q", got, want)
		}
	}
	var short launcher.Tail
	short.Write([]byte("one\ntwo\n"))
	if got, want := lastLines(&short), "; its last output: one | two"; got != want {
		t.Errorf("short output: lastLines = %q, want %q", got, want)
	}
}

// TestLaunchedAsThePoolLaunches: a worker under test is started by the
// pool's own launcher: its process group, and the oom_score_adj that makes
// the kernel's OOM killer pick it before the master.
func TestLaunchedAsThePoolLaunches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := launch(ctx, []string{"/bin/sh", "-c", "exec sleep 300"}, &Options{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	pid := p.process.PID
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(launcher.OOMScoreAdj) {
		t.Errorf("oom_score_adj = %s, want %d", got, launcher.OOMScoreAdj)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("process group %d (%v), want its own, %d", pgid, err, pid)
	}
}
