package contain

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillTakesEscapees: a descendant that left its parent's session and
// process group is still in the cgroup, and dies with it.
func TestKillTakesEscapees(t *testing.T) {
	r, err := NewRoot()
	if err != nil {
		t.Skipf("no cgroup to contain processes on this machine: %v", err)
	}
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300 & echo $!")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g, err := r.Prepare(cmd.SysProcAttr)
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
	if !alive(pid) {
		t.Fatalf("the escapee %d is not running before the kill", pid)
	}
	// A cgroup under the process's, holding the escapee, as a pool run
	// by the process would make.
	inner := filepath.Join(g.Path, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inner, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	if !g.Kill(10 * time.Second) {
		t.Fatal("the cgroup is still there after Kill")
	}
	if alive(pid) {
		t.Errorf("the escapee %d outlived Kill", pid)
	}
	if _, err := os.Stat(g.Path); !os.IsNotExist(err) {
		t.Errorf("the cgroup %s is still there: %v", g.Path, err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/sys/fs/cgroup`:       "/sys/fs/cgroup",
		`/mnt/with\040space`:   "/mnt/with space",
		`/odd\\`:               `/odd\\`,
		`/short\04`:            `/short\04`,
		`/tab\011and\134slash`: "/tab\tand\\slash",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
