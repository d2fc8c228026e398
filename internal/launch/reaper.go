package launch

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/ppool/ppool/internal/contain"
)

// Reaper is a tiny shell process that outlives a master killed with SIGKILL:
// it reads the process groups and cgroups of live workers on its stdin and,
// when the master's end closes (the master exited, however it exited),
// kills every group and cgroup still listed and removes the cgroups.
// Workers die with the master anyway (parent-death signal); the reaper is
// for the programs workers started, which do not.
type Reaper struct {
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

// NewReaper starts the reaper. Its owner calls Stop.
func NewReaper() (*Reaper, error) {
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
	return &Reaper{w: w, cmd: cmd}, nil
}

func (r *Reaper) send(line string) {
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
func (r *Reaper) add(pgid int, cgroup string) {
	r.send("+ " + strconv.Itoa(pgid) + " " + cgroup + "\n")
}

func (r *Reaper) remove(pgid int) { r.send("- " + strconv.Itoa(pgid) + "\n") }

// Stop closes the reaper's stdin, so it kills what is still listed, and
// waits for it. A nil *Reaper does nothing.
func (r *Reaper) Stop() {
	if r == nil {
		return
	}
	r.w.Close()
	_ = r.cmd.Wait()
}
