// Package launch starts worker processes, the one way ppool starts them: the
// pool, the conformance suite (workerproc/workerproctest) and the benchmark
// (internal/benchmark) all fill a Cmd and call Start.
//
// A worker gets fds 3 (tasks in) and 4 (results out) and no other
// descriptor of the master's (contain.CloseOnExec runs before each start),
// stdin /dev/null, its stdout and stderr through one pipe into a Tail (its
// first and last KiB kept for crash reports, every byte passed on to
// Cmd.Output), its own process group, a parent-death signal (SIGKILL), and,
// where asked, an oom_score_adj, larger pipes, a cgroup of its own
// (package contain) and a place on a Reaper's list. Process.Wait waits for
// it exactly once and then kills what it left behind: its process group,
// then its cgroup.
//
// The parent-death signal fires when the *thread* that started the process
// exits, and Go ends the thread of a locked goroutine that returns: start
// processes that must outlive such a goroutine from a Spawner, whose thread
// lives until Stop.
package launch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/internal/contain"
)

// What ppool gives its workers: pipes of 1 MiB for fds 3 and 4 (a burst of
// small tasks or a large payload moves in fewer wakeups), and an
// oom_score_adj that makes the kernel's OOM killer pick a worker, never the
// master.
const (
	PipeSize    = 1 << 20
	OOMScoreAdj = 500
)

// BinaryFD is the worker's descriptor for Cmd.Binary: after 3 and 4.
const BinaryFD = 5

// ThreadVars are the variables through which Go and the BLAS libraries
// read how many threads to use. They read them once, when they load, so a
// worker's thread budget must be in its environment at exec.
var ThreadVars = []string{"GOMAXPROCS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}

// ThreadEnv is ThreadVars set to n, as "NAME=n" entries.
func ThreadEnv(n int) []string {
	env := make([]string, len(ThreadVars))
	for i, k := range ThreadVars {
		env[i] = k + "=" + strconv.Itoa(n)
	}
	return env
}

// Cmd describes a worker process to start. Fill it, then call Start (or a
// Spawner's Start). The zero values of the optional fields leave what
// they set alone.
type Cmd struct {
	Path string   // the program
	Args []string // its arguments, after argv[0] (which is Path)
	Env  []string // its whole environment; os/exec keeps the last of duplicate keys

	// Binary, if set, is what runs: an open copy of Path (the pool's
	// sealed, checksummed one), handed to the process as its fd BinaryFD
	// and executed as /proc/self/fd/5, so that what runs is what was
	// checked. A script's interpreter reads the script from that fd.
	Binary *os.File

	Cgroups     *contain.Root // where the process gets a cgroup of its own; nil for none
	Reaper      *Reaper       // lists the process group and cgroup while the process lives; nil for none
	PipeSize    int           // the buffer size asked for fds 3 and 4 (F_SETPIPE_SZ); refusal is harmless
	OOMScoreAdj int           // written to /proc/PID/oom_score_adj if not 0

	// Output gets every byte the process writes to stdout and stderr, as
	// the Tail does; nil discards them.
	Output io.Writer

	// KillGrace is how long after Terminate's SIGTERM the process is sent
	// SIGKILL (exec.Cmd.WaitDelay). Zero: Terminate sends SIGTERM only.
	KillGrace time.Duration

	// Starter, if set, starts the process in place of exec.Cmd.Start:
	// hashicorp/go-plugin's handshake (package pool/goplugin).
	Starter Starter
	// StartTimeout is passed on to Starter.
	StartTimeout time.Duration

	// Log gets warnings: a cgroup that could not be made or emptied.
	// nil: they are dropped.
	Log *slog.Logger
}

// A Starter starts a prepared process in a way of its own.
type Starter interface {
	// Start calls cmd.Start, once, and returns when the worker may be
	// given tasks. cmd's program, arguments, environment, descriptors,
	// process attributes, Cancel and WaitDelay are set: Start may add to
	// cmd.Env, and sets cmd.Stdout and cmd.Stderr, copying what arrives
	// there to output. timeout bounds the start. exited is closed once the
	// process has been waited for; Start never waits for it itself.
	// release, if not nil, is called once the process is gone, or at once
	// if Start fails.
	Start(cmd *exec.Cmd, output io.Writer, exited <-chan struct{}, timeout time.Duration) (release func(), err error)
}

// Process is a started worker process.
type Process struct {
	PID     int
	Tasks   *os.File // the master's end of the worker's fd 3; the caller closes it
	Results *os.File // the master's end of the worker's fd 4; the caller closes it
	Output  *Tail    // the start and the end of what it wrote
	Cgroup  *contain.Group

	cmd     *exec.Cmd
	cancel  context.CancelFunc
	logR    *os.File      // our end of its stdout and stderr, when we copy them
	copied  chan struct{} // closed when the copy into Output ends
	release func()
	reaper  *Reaper
	log     *slog.Logger
	exited  chan struct{}
}

// Start starts the process on the calling thread (see the package doc
// for which thread that should be).
func (c *Cmd) Start() (*Process, error) {
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	frR, frW, err := os.Pipe()
	if err != nil {
		toR.Close()
		toW.Close()
		return nil, err
	}
	p := &Process{
		Tasks: toW, Results: frR, Output: &Tail{out: c.Output},
		reaper: c.Reaper, log: c.Log, exited: make(chan struct{}),
	}
	var ctx context.Context
	ctx, p.cancel = context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	p.cmd = cmd
	cmd.Env = c.Env
	cmd.ExtraFiles = []*os.File{toR, frW} // fds 3 and 4
	if c.Binary != nil {
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(BinaryFD)
		cmd.ExtraFiles = append(cmd.ExtraFiles, c.Binary)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // a terminal's Ctrl-C reaches the master only, which decides
		Pdeathsig: syscall.SIGKILL,
	}
	// Terminate is the first step of the escalation, WaitDelay the second
	// (os/exec then kills the process; Wait kills its group).
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = c.KillGrace
	// A cgroup holds whatever the worker starts, even what leaves its
	// process group.
	if p.Cgroup, err = c.Cgroups.Prepare(cmd.SysProcAttr); err != nil && c.Log != nil {
		c.Log.Warn("cannot make a cgroup for a worker: from now on, programs workers start that leave their process group will not be killed", "err", err)
	}
	// os/exec passes on every descriptor without close-on-exec: ones this
	// process inherited, ones opened raw.
	contain.CloseOnExec()
	if c.Starter != nil {
		p.release, err = c.Starter.Start(cmd, p.Output, p.exited, c.StartTimeout)
	} else {
		err = p.startCopying()
	}
	toR.Close()
	frW.Close()
	p.Cgroup.Started()
	if err != nil {
		p.failed()
		return nil, err
	}
	p.PID = cmd.Process.Pid
	if c.PipeSize > 0 {
		setPipeSize(toW, c.PipeSize)
		setPipeSize(frR, c.PipeSize)
	}
	if c.OOMScoreAdj != 0 {
		_ = os.WriteFile("/proc/"+strconv.Itoa(p.PID)+"/oom_score_adj", []byte(strconv.Itoa(c.OOMScoreAdj)), 0)
	}
	cgroup := ""
	if p.Cgroup != nil {
		cgroup = p.Cgroup.Path
	}
	p.reaper.add(p.PID, cgroup)
	return p, nil
}

// startCopying starts the process with its stdout and stderr on one pipe
// that a goroutine copies into Output until the pipe closes.
func (p *Process) startCopying() error {
	logR, logW, err := os.Pipe()
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = logW, logW
	err = p.cmd.Start()
	logW.Close()
	if err != nil {
		logR.Close()
		return err
	}
	p.logR, p.copied = logR, make(chan struct{})
	go func() {
		defer close(p.copied)
		_, _ = io.Copy(p.Output, logR)
	}()
	return nil
}

// failed cleans up after a start that failed: a Starter may have started
// the process before failing.
func (p *Process) failed() {
	p.Tasks.Close()
	p.Results.Close()
	if p.cmd.Process != nil {
		p.PID = p.cmd.Process.Pid
		p.Kill()
		_ = p.Wait()
		return
	}
	p.cancel()
	p.Cgroup.Kill(time.Second)
	if p.release != nil {
		p.release()
	}
}

// Kill sends SIGKILL to the process's group.
func (p *Process) Kill() { _ = syscall.Kill(-p.PID, syscall.SIGKILL) }

// Terminate sends SIGTERM to the process's group, and SIGKILL to the
// process KillGrace later if it is still running (Wait then kills the
// group). It does nothing once the process is waited for.
func (p *Process) Terminate() { p.cancel() }

// Exited is closed once Wait has waited for the process and killed what it
// left behind.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit; call it once. Then it kills the
// process's group and cgroup, so that whatever the worker started dies
// with it, reads the rest of its output, and closes Exited.
func (p *Process) Wait() error {
	err := p.cmd.Wait()
	killGroup(p.PID)
	if p.Cgroup.Kill(time.Second) {
		p.reaper.remove(p.PID)
	} else if p.log != nil { // the reaper tries again when it stops
		p.log.Warn("a process the worker started is still in its cgroup a second after the kill", "worker", p.PID, "cgroup", p.Cgroup.Path)
	}
	if p.copied != nil {
		// The output pipe closes once every holder is dead; a grandchild
		// that escaped the group must not keep us waiting.
		select {
		case <-p.copied:
		case <-time.After(100 * time.Millisecond):
		}
		p.logR.Close()
		<-p.copied
	}
	p.cancel()
	if p.release != nil {
		p.release()
	}
	close(p.exited)
	return err
}

// Status says how the process ended, once Exited is closed: its exit
// code, or -1 and the signal that killed it.
func (p *Process) Status() (code int, signal syscall.Signal) {
	st := p.cmd.ProcessState
	if st == nil {
		return -1, 0
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return st.ExitCode(), 0
}

// killGroup kills the process group pgid and waits, briefly, until the
// kernel has dealt the signal to every member, so that a caller told the
// workers are gone finds their children gone too. A member that is a
// zombie waiting for init to reap it still counts as present: the wait is
// bounded.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(100 * time.Millisecond)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// setPipeSize asks for a larger pipe buffer, so a burst of small tasks or
// a large payload moves in fewer wakeups. Refusal (e.g. over
// /proc/sys/fs/pipe-max-size for an unprivileged user) is harmless.
func setPipeSize(f *os.File, size int) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	})
}

// ErrStopped is what a stopped Spawner's Start returns.
var ErrStopped = errors.New("launch: the spawner is stopped")
