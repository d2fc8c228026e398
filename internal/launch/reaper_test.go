package launch

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

	"github.com/ppool/ppool/internal/contain"
)

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
	r, err := NewReaper()
	if err != nil {
		t.Fatal(err)
	}
	r.add(cmd.Process.Pid, g.Path)
	r.Stop()
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z") {
		t.Errorf("the escapee %d outlived the reaper: %s", pid, b)
	}
	if _, err := os.Stat(g.Path); !os.IsNotExist(err) {
		t.Errorf("the cgroup %s is still there: %v", g.Path, err)
	}
}
