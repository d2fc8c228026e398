package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ppool/ppool/internal/contain"
	"github.com/ppool/ppool/ipc"
)

// workerState is where a worker process is in its life.
type workerState int

const (
	workerStarting workerState = iota // started; no hello (or initializer result) yet
	workerReady                       // taking tasks
	workerStalled                     // its running task was cancelled or timed out; no new tasks until it answers
	workerRetiring                    // done its MaxTasksPerWorker; shut down once idle
	workerStopping                    // shutdown sent or killed by the pool
	workerDead                        // exited and waited for
)

var workerStateNames = [...]string{"starting", "ready", "stalled", "retiring", "stopping", "dead"}

func (s workerState) String() string {
	if int(s) < len(workerStateNames) {
		return workerStateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// slot is a task sent to a worker and not yet answered. Workers run tasks
// strictly in order, so inflight[0] is the one running.
type slot struct {
	t         *task
	abandoned bool // resolved already (cancelled, timed out); the answer is ignored
	init      bool // the initializer
}

type worker struct {
	p    *Pool
	pid  int
	cmd  *exec.Cmd
	toW  *os.File // master → worker (the worker's fd 3)
	frR  *os.File // worker → master (the worker's fd 4)
	logR *os.File // the worker's stdout and stderr
	tail *tailWriter

	pluginDir string         // with Config.Plugin: the folder of go-plugin's socket
	cgroup    *contain.Group // holds the worker and all it starts; nil without cgroups

	exited  chan struct{} // closed once the process is waited for
	waitErr error
	ready   chan error // startup outcome, buffered; read by New only

	wmu sync.Mutex // serialises writes to toW

	// Reading: whoever holds rmu reads frames from frR with rd. That is
	// the worker's reader goroutine, except when an Apply caller is the
	// only one waiting on the worker: then the caller reads its own answer,
	// on its own thread, which saves a wakeup of another thread per call.
	rmu  sync.Mutex
	rd   *ipc.Reader
	wake chan struct{} // size 1: there may be something to read

	// Guarded by p.mu.
	state        workerState
	inflight     []*slot
	segs         [][]byte // frames waiting to be written before out: large ones, and the out buffers queued ahead of them
	out, spare   []byte   // small frames waiting to be written, and a buffer to swap in
	sent         int      // tasks sent, for MaxTasksPerWorker
	finished     int      // tasks answered
	killCause    error    // why the pool killed it, blamed on its running task
	killedByPool bool
	headTimer    *time.Timer
	helloed      bool   // its hello has been read
	claimed      bool   // an Apply caller is reading
	readFail     string // why reading stopped for good; the worker is finished
}

// start launches one worker process. It runs on the spawner's thread.
func (p *Pool) start() (*worker, error) {
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
	w := &worker{
		p: p, toW: toW, frR: frR,
		exited: make(chan struct{}), ready: make(chan error, 1), wake: make(chan struct{}, 1),
		rd: ipc.NewReader(frR, 256<<10, p.maxFrame),
	}
	var logPID atomic.Int64
	w.tail = &tailWriter{logLine: func(line string) { p.log.Info(line, "worker", logPID.Load()) }}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.ExtraFiles = []*os.File{toR, frW} // fds 3 and 4
	if p.binary != nil {
		// Execute what was hashed, not whatever is at the path now.
		if err := p.binary.check(); err != nil {
			toR.Close()
			toW.Close()
			frR.Close()
			frW.Close()
			return nil, err
		}
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(binaryFD)
		cmd.ExtraFiles = append(cmd.ExtraFiles, p.binary.f)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // a terminal's Ctrl-C reaches the master only, which decides
		Pdeathsig: syscall.SIGKILL,
	}
	// A cgroup holds whatever the worker starts, even what leaves its
	// process group.
	if w.cgroup, err = p.cgroups.Prepare(cmd.SysProcAttr); err != nil {
		p.log.Warn("cannot make a cgroup for a worker: from now on, programs workers start that leave their process group will not be killed", "err", err)
	}
	w.cmd = cmd
	contain.CloseOnExec()
	if p.cfg.Plugin {
		err = p.startPlugin(w)
	} else {
		var logW *os.File
		if w.logR, logW, err = os.Pipe(); err == nil {
			cmd.Stdout, cmd.Stderr = logW, logW
			err = cmd.Start()
			logW.Close()
			if err != nil {
				w.logR.Close()
			}
		}
	}
	toR.Close()
	frW.Close()
	w.cgroup.Started()
	if err != nil {
		toW.Close()
		frR.Close()
		w.cgroup.Kill(time.Second)
		return nil, &StartError{Command: p.path, Reason: "cannot start it", Err: err}
	}
	w.pid = cmd.Process.Pid
	logPID.Store(int64(w.pid))
	enlargePipe(toW)
	enlargePipe(frR)
	// The kernel's OOM killer should pick a worker, never the master.
	_ = os.WriteFile("/proc/"+strconv.Itoa(w.pid)+"/oom_score_adj", []byte("500"), 0)
	cgroup := ""
	if w.cgroup != nil {
		cgroup = w.cgroup.Path
	}
	p.reaper.add(w.pid, cgroup)
	return w, nil
}

// run starts the worker's goroutines: the waiter, the output copier and the
// reader, which handles the worker's death when its pipe closes.
func (w *worker) run() {
	p := w.p
	p.wg.Add(3)
	copied := make(chan struct{})
	startTimer := time.AfterFunc(p.cfg.StartTimeout, func() {
		p.mu.Lock()
		starting := w.state == workerStarting
		if starting {
			w.killCause = &StartError{Command: p.path, PID: w.pid, Reason: fmt.Sprintf("no hello within the start timeout (%v)", p.cfg.StartTimeout)}
		}
		p.mu.Unlock()
		if starting {
			w.kill()
		}
	})
	go func() {
		defer p.wg.Done()
		defer close(copied)
		if w.logR != nil { // a plugin worker's output is go-plugin's to read
			_, _ = io.Copy(w.tail, w.logR)
		}
	}()
	go func() {
		defer p.wg.Done()
		w.waitErr = w.cmd.Wait()
		startTimer.Stop()
		// Whatever the worker started goes with it, before Close returns.
		killGroup(w.pid)
		if w.cgroup.Kill(time.Second) {
			p.reaper.remove(w.pid)
		} else { // the reaper tries again when the pool ends
			p.log.Warn("a process the worker started is still in its cgroup a second after the kill", "worker", w.pid, "cgroup", w.cgroup.Path)
		}
		// Its output pipe closes once every holder is dead; a grandchild
		// that escaped the group must not keep us waiting.
		select {
		case <-copied:
		case <-time.After(100 * time.Millisecond):
		}
		if w.logR != nil {
			w.logR.Close()
		}
		w.closePlugin()
		close(w.exited)
	}()
	go func() {
		defer p.wg.Done()
		reason := w.readLoop()
		// A worker that closed its pipe is usually exiting: give it a
		// moment, so its own exit status and last words are what the
		// error reports, rather than our SIGKILL. One that broke the
		// protocol is killed at once.
		grace := time.Duration(0)
		if strings.HasPrefix(reason, "its pipe closed") {
			grace = min(p.cfg.KillGrace, 250*time.Millisecond)
		}
		select {
		case <-w.exited:
		case <-time.After(grace):
			w.kill()
			<-w.exited
		}
		w.toW.Close()
		w.frR.Close()
		p.workerExited(w, reason)
	}()
}

func (w *worker) kill() { _ = syscall.Kill(-w.pid, syscall.SIGKILL) }

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// wantsReaderLocked reports whether the reader goroutine should be reading:
// a hello or answers are due and no Apply caller is reading them.
func (w *worker) wantsReaderLocked() bool {
	return w.readFail == "" && !w.claimed && (!w.helloed || len(w.inflight) > 0)
}

// readLoop is the worker's reader goroutine: it reads whenever answers are
// due and nobody else is reading them, until reading fails, and says why.
func (w *worker) readLoop() string {
	p := w.p
	for {
		p.mu.Lock()
		fail, want := w.readFail, w.wantsReaderLocked()
		p.mu.Unlock()
		if fail != "" {
			return fail
		}
		died := false
		if !want {
			select {
			case <-w.wake:
				continue
			case <-w.exited:
				died = true // read what it said last, up to the end of the pipe
			}
		}
		w.rmu.Lock()
		reason := w.readFrames(false, func() bool {
			if died {
				return true
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			return w.wantsReaderLocked()
		})
		w.rmu.Unlock()
		if reason != "" {
			return reason
		}
	}
}

// readFor is an Apply caller reading until its own task t is answered, or
// ctx ends. The caller has claimed the worker (w.claimed); readFor gives the
// claim back, and wakes the reader goroutine if there is more to read.
func (w *worker) readFor(ctx context.Context, t *task) {
	p := w.p
	reason := ""
	if w.rmu.TryLock() {
		stop := func() bool { return true }
		if ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() { _ = w.frR.SetReadDeadline(time.Now()) })
		}
		reason = w.readFrames(true, func() bool { return !t.resolved.Load() })
		if !stop() {
			_ = w.frR.SetReadDeadline(time.Time{})
		}
		w.rmu.Unlock()
	}
	p.mu.Lock()
	w.claimed = false
	if reason != "" && w.readFail == "" {
		w.readFail = reason
	}
	more := w.readFail != "" || w.wantsReaderLocked()
	p.mu.Unlock()
	if more {
		w.signal()
	}
	p.pump()
}

// readFrames reads and handles frames while more() holds (checked whenever
// nothing is buffered), and returns why reading failed, or "" if it just
// stopped. A read deadline stops it if stopOnDeadline is set (an Apply
// caller whose context ended); otherwise it is cleared and reading goes on.
func (w *worker) readFrames(stopOnDeadline bool, more func() bool) string {
	p := w.p
	var now time.Time
	for more() {
		fresh := w.rd.Buffered() == 0 // this read waits for the worker
		frame, err := w.rd.ReadFrame()
		if fresh || now.IsZero() {
			now = time.Now()
		}
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if stopOnDeadline {
					return ""
				}
				_ = w.frR.SetReadDeadline(time.Time{})
				continue
			case errors.Is(err, io.EOF):
				return "its pipe closed"
			case errors.Is(err, io.ErrUnexpectedEOF):
				return "its pipe closed in the middle of a frame"
			case errors.Is(err, os.ErrClosed):
				return "the pool closed its pipe"
			}
			return "protocol error: " + err.Error()
		}
		m, err := ipc.Decode(frame)
		if err != nil {
			return "protocol error: malformed frame: " + err.Error()
		}
		p.mu.Lock()
		first := !w.helloed
		p.mu.Unlock()
		if first {
			if m.Kind != ipc.KindHello {
				return fmt.Sprintf("protocol error: first frame was %s, not hello", m.Kind)
			}
			if reason := p.hello(w, m); reason != "" {
				return reason
			}
			continue
		}
		switch m.Kind {
		case ipc.KindResult:
			if reason := p.result(w, m, now); reason != "" {
				return reason
			}
		case ipc.KindProgress:
			p.progress(w, m)
		default:
			return fmt.Sprintf("protocol error: unexpected %s frame", m.Kind)
		}
		if w.rd.Buffered() == 0 {
			p.pump()
		}
	}
	return ""
}

// exitError describes how the worker process ended.
func (w *worker) exitError(reason string) *WorkerExitError {
	e := &WorkerExitError{PID: w.pid, ExitCode: -1, Stderr: w.tail.String(), Reason: reason}
	if st := w.cmd.ProcessState; st != nil {
		e.ExitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal()
		}
	}
	return e
}

// flush writes the frames queued for the worker. Writes to one worker are
// serialised by wmu, and the buffer is swapped under p.mu inside it, so
// frames go out in the order they were queued.
func (w *worker) flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	p := w.p
	p.mu.Lock()
	segs, buf := w.segs, w.out
	w.segs, w.out, w.spare = nil, w.spare[:0], nil
	p.mu.Unlock()
	for _, b := range append(segs, buf) {
		if len(b) == 0 {
			continue
		}
		if _, err := w.toW.Write(b); err != nil {
			// The worker is dying or dead; its reader reports why.
			p.log.Debug("writing to worker", "worker", w.pid, "err", err)
			break
		}
	}
	p.mu.Lock()
	if cap(buf) <= 4<<20 && w.spare == nil {
		w.spare = buf[:0]
	}
	p.mu.Unlock()
}

// bigFrame is the size from which a task frame is written from its own
// buffer rather than copied into the worker's output buffer.
const bigFrame = 64 << 10

// enqueueLocked queues a task frame for the worker, in order, and tail,
// the rest of the frame, if any. Small frames are coalesced into one
// buffer; a large one is queued as it is, so a 64 MiB argument is not
// copied once more on its way out.
func (w *worker) enqueueLocked(frame, tail []byte) {
	if len(frame) < bigFrame && tail == nil {
		w.out = append(w.out, frame...)
		return
	}
	if len(w.out) > 0 {
		w.segs = append(w.segs, w.out)
		w.out = nil
	}
	w.segs = append(w.segs, frame)
	if tail != nil {
		w.segs = append(w.segs, tail)
	}
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
