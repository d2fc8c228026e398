package launch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// start starts c and ends the process with the test.
func start(t *testing.T, c *Cmd) *Process {
	t.Helper()
	p, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		<-p.Exited()
		p.Tasks.Close()
		p.Results.Close()
	})
	return p
}

// TestWorkerSetup: a process gets fds 3 and 4 (and nothing else of ours),
// its own process group, the oom_score_adj and pipe sizes asked for, and
// its output reaches both Output and the Tail.
func TestWorkerSetup(t *testing.T) {
	defer goleak.VerifyNone(t)
	var lines []string
	script := `echo "pgid $(ps -o pgid= -p $$)"; echo "oom $(cat /proc/$$/oom_score_adj)"; ls /proc/$$/fd | tr '\n' ' '; echo; echo ready >&4; read x <&3; exit 0`
	p := start(t, &Cmd{
		Path: "/bin/sh", Args: []string{"-c", script},
		PipeSize: PipeSize, OOMScoreAdj: OOMScoreAdj,
		Output: Lines(func(l string) { lines = append(lines, l) }),
	})
	buf := make([]byte, 6)
	if _, err := p.Results.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("reading fd 4: %q, %v", buf, err)
	}
	for _, f := range []*os.File{p.Tasks, p.Results} {
		rc, _ := f.SyscallConn()
		var size int
		_ = rc.Control(func(fd uintptr) { size, _ = fcntl(fd, syscall.F_GETPIPE_SZ) })
		if size != PipeSize && size != 64<<10 { // refusal is allowed, not a size of its own
			t.Errorf("pipe size %d, want %d", size, PipeSize)
		}
	}
	p.Tasks.Close() // the read ends: it exits
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v (output %q)", err, p.Output)
	}
	if code, sig := p.Status(); code != 0 || sig != 0 {
		t.Errorf("Status = %d, %v; want 0, 0", code, sig)
	}
	want := []string{"pgid " + strconv.Itoa(p.PID), "oom 500", "0 1 2 3 4"}
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("output lines %q, want %q", lines, want)
	}
	if head, last := p.Output.Ends(); !strings.Contains(head, "oom 500") || !strings.Contains(last, "oom 500") {
		t.Errorf("Tail ends %q, %q lack the output", head, last)
	}
}

func fcntl(fd uintptr, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// TestTerminate: Terminate is SIGTERM to the group, then, for a process
// that ignores it, SIGKILL after KillGrace.
func TestTerminate(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		want         syscall.Signal
	}{
		{"honours SIGTERM", "echo up >&4; exec sleep 60", syscall.SIGTERM},
		{"ignores SIGTERM", "trap '' TERM; echo up >&4; while :; do sleep 1; done", syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, &Cmd{Path: "/bin/sh", Args: []string{"-c", tc.script}, KillGrace: 100 * time.Millisecond})
			waited := make(chan error, 1)
			go func() { waited <- p.Wait() }()
			buf := make([]byte, 3)
			if _, err := p.Results.Read(buf); err != nil {
				t.Fatal(err)
			}
			p.Terminate()
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				t.Fatal("still running 10 s after Terminate")
			}
			if _, sig := p.Status(); sig != tc.want {
				t.Errorf("ended by %v, want %v", sig, tc.want)
			}
		})
	}
}

// TestStartFails: a program that cannot run is an error, and leaves no
// process, pipe or goroutine behind.
func TestStartFails(t *testing.T) {
	defer goleak.VerifyNone(t)
	if _, err := (&Cmd{Path: "/nonexistent/worker"}).Start(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start of a missing program: %v", err)
	}
}

// TestSpawner: starts run on the spawner's thread until Stop, and fail after.
func TestSpawner(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := NewSpawner()
	p, err := s.Start(&Cmd{Path: "/bin/sh", Args: []string{"-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	p.Tasks.Close()
	p.Results.Close()
	if code, _ := p.Status(); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	s.Stop()
	if _, err := s.Start(&Cmd{Path: "/bin/true"}); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop: %v, want ErrStopped", err)
	}
}

// TestTail: the Tail keeps the head and the end, says how much it left
// out, and its ends overlap when the output is short.
func TestTail(t *testing.T) {
	var short Tail
	short.Write([]byte("one\ntwo\n"))
	if head, last := short.Ends(); head != "one\ntwo\n" || last != "one\ntwo\n" {
		t.Errorf("short output: Ends = %q, %q", head, last)
	}
	var long Tail
	long.Write([]byte("fatal error: out of memory\n"))
	for i := range 3000 {
		long.Write([]byte("goroutine " + strconv.Itoa(i) + " [running]:\n"))
	}
	s := long.String()
	for _, want := range []string{"fatal error: out of memory", "bytes omitted", "goroutine 2999 [running]:\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q", want)
		}
	}
	if len(s) > HeadSize+TailSize+100 {
		t.Errorf("String() is %d bytes, over %d", len(s), HeadSize+TailSize+100)
	}
}
