package workerproctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ppool/ppool/internal/contain"
	launcher "github.com/ppool/ppool/internal/launch"
	"github.com/ppool/ppool/ipc"
)

var (
	// errSilent is what next returns when no frame arrived in time.
	errSilent = errors.New("no frame")
	// errPipeClosed is what next's error wraps when the worker's end of
	// fd 4 closed: it exited, most likely.
	errPipeClosed = errors.New("its pipe (fd 4) closed")
	// errNotReading is what write's error wraps when the worker left the
	// bytes in its fd 3 for longer than ReplyTimeout.
	errNotReading = errors.New("it did not read its fd 3")
)

// frameOrErr is one frame from the worker, or why reading stopped.
type frameOrErr struct {
	m   ipc.Msg
	err error
}

// proc is one worker process under test, launched by the pool's launcher
// (internal/launch) as the pool launches workers: fds 3 and 4 and no other,
// stdin /dev/null, output captured, its own process group and cgroup, a
// parent-death signal, the same oom_score_adj. Left out are the pool's
// reaper, for a master killed with SIGKILL, and its larger pipes: the
// kernel's default lets a check fill fd 3 with a few task frames, to see
// that the worker keeps reading it. Its owner
// calls close, which kills the group and waits for every goroutine started
// here.
type proc struct {
	ctx     context.Context
	opts    *Options
	process *launcher.Process
	toW     *os.File // our end of the worker's fd 3
	frR     *os.File // our end of the worker's fd 4

	frames  chan frameOrErr // unbuffered: the reader waits for the check
	readErr error           // why the reader stopped, once next has seen it
	stop    chan struct{}
	exited  chan struct{}
	waitErr error
	wg      sync.WaitGroup

	pending  []uint64 // tasks sent and not yet answered, in the order sent
	nextID   uint64
	maxFrame int
}

// launch starts argv with the protocol environment plus env (later entries
// win). maxFrame is the limit applied to frames from the worker.
func launch(ctx context.Context, argv []string, opts *Options, maxFrame int, env ...string) (*proc, error) {
	c := &launcher.Cmd{
		Path: argv[0], Args: argv[1:], Env: workerEnv(opts.Env, env),
		// A cgroup, where the machine offers one, holds what the worker
		// starts even if it leaves the process group; close kills it all.
		Cgroups:     cgroups(),
		OOMScoreAdj: launcher.OOMScoreAdj,
	}
	if opts.Log != nil {
		c.Output = opts.Log
	}
	process, err := c.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", argv[0], err)
	}
	p := &proc{
		ctx: ctx, opts: opts, process: process, toW: process.Tasks, frR: process.Results,
		frames: make(chan frameOrErr), stop: make(chan struct{}), exited: make(chan struct{}),
		maxFrame: maxFrame,
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.waitErr = process.Wait()
		close(p.exited)
	}()
	go p.read()
	return p, nil
}

// cgroups is where workers under test get their cgroups: nil if the
// machine offers none.
var cgroups = sync.OnceValue(func() *contain.Root {
	r, _ := contain.NewRoot()
	return r
})

// workerEnv is this process's environment with the variables the pool sets
// for its workers, then the caller's, then the check's own.
func workerEnv(user, check []string) []string {
	master := append([]string{
		ipc.EnvProtocol + "=" + ipc.FormatVersions(ipc.Versions),
		ipc.EnvThreads + "=1",
	}, launcher.ThreadEnv(1)...)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != ipc.EnvMaxFrame && k != "PPOOL_WORKER" {
			env = append(env, kv)
		}
	}
	// os/exec keeps the last of duplicate keys.
	env = append(env, master...)
	env = append(env, user...)
	return append(env, check...)
}

// read owns our end of fd 4.
func (p *proc) read() {
	defer p.wg.Done()
	r := ipc.NewReader(p.frR, 64<<10, p.maxFrame)
	for {
		var f frameOrErr
		frame, err := r.ReadFrame()
		switch {
		case err == nil:
			if f.m, err = ipc.Decode(frame); err != nil {
				f.err = fmt.Errorf("it sent a malformed frame (%w)", err)
			}
		case errors.Is(err, io.EOF):
			f.err = io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			f.err = errors.New("its pipe (fd 4) closed in the middle of a frame")
		case errors.Is(err, ipc.ErrFrameTooLarge):
			f.err = fmt.Errorf("it sent a frame over the limit (%w)", err)
		default:
			f.err = fmt.Errorf("reading its pipe (fd 4): %w", err)
		}
		select {
		case p.frames <- f:
		case <-p.stop:
			return
		}
		if f.err != nil {
			return
		}
	}
}

// close kills the worker's process group and waits for the process and
// every goroutine started for it.
func (p *proc) close() {
	p.process.Kill()
	<-p.exited // Wait killed its group and cgroup
	close(p.stop)
	p.toW.Close()
	p.frR.Close() // unblocks the reader if a grandchild holds fd 4 open
	p.wg.Wait()
}

// write sends b on the worker's fd 3. It waits at most ReplyTimeout for
// the worker to take the bytes: a worker that stops reading fd 3 fills the
// pipe, and must fail the check rather than hang the suite.
func (p *proc) write(b []byte) error {
	_ = p.toW.SetWriteDeadline(time.Now().Add(p.opts.ReplyTimeout))
	stop := context.AfterFunc(p.ctx, func() { _ = p.toW.SetWriteDeadline(time.Now()) })
	n, err := p.toW.Write(b)
	stop()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) && p.ctx.Err() != nil:
		return context.Cause(p.ctx)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: of %d bytes written to it, it had read %d when %v (ReplyTimeout) ran out, and %s; "+
			"a worker reads fd 3 continuously, queueing tasks, so that a cancel reaches the running task and the master never waits on a full pipe",
			errNotReading, len(b), n, p.opts.ReplyTimeout, p.describeExit(0))
	}
	return fmt.Errorf("writing to its fd 3: %w (%s)", err, p.describeExit(100*time.Millisecond))
}

// next returns the next frame other than progress, waiting at most d. It
// returns errSilent if none came, and a reason ready for a report if the
// pipe closed or the frame was bad.
func (p *proc) next(d time.Duration) (ipc.Msg, error) {
	if p.readErr != nil {
		return ipc.Msg{}, p.readErr
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-p.frames:
			if f.err == io.EOF {
				f.err = fmt.Errorf("%w: %s", errPipeClosed, p.describeExit(500*time.Millisecond))
			}
			if f.err != nil {
				p.readErr = f.err
				return ipc.Msg{}, f.err
			}
			if f.m.Kind != ipc.KindProgress {
				return f.m, nil
			}
			// Progress is optional and may come at any time, but only for
			// the running task: the oldest one not yet answered.
			if len(p.pending) == 0 || f.m.ID != p.pending[0] {
				return ipc.Msg{}, fmt.Errorf("it sent progress for task %d, which is not running (running: %s)", f.m.ID, p.running())
			}
		case <-timer.C:
			return ipc.Msg{}, errSilent
		case <-p.ctx.Done():
			return ipc.Msg{}, context.Cause(p.ctx)
		}
	}
}

func (p *proc) running() string {
	if len(p.pending) == 0 {
		return "none"
	}
	return fmt.Sprintf("task %d", p.pending[0])
}

// hello reads the first frame, which must be a hello.
func (p *proc) hello() (ipc.Msg, error) {
	m, err := p.next(p.opts.StartTimeout)
	switch {
	case err == errSilent:
		return m, fmt.Errorf("no hello within %v of starting (StartTimeout); the first frame on fd 4 must be a hello", p.opts.StartTimeout)
	case err != nil:
		return m, fmt.Errorf("waiting for hello: %w", err)
	case m.Kind != ipc.KindHello:
		return m, fmt.Errorf("its first frame is a %s, not a hello", m.Kind)
	}
	return m, nil
}

// task sends a task frame and returns its id.
func (p *proc) task(fn string, args []byte, timeout time.Duration, batch bool) (uint64, error) {
	id := p.newID()
	return id, p.write(ipc.AppendTask(nil, id, fn, args, timeout, batch))
}

func (p *proc) newID() uint64 {
	p.nextID++
	p.pending = append(p.pending, p.nextID)
	return p.nextID
}

// result waits at most d for the answer to task id, which must be the
// oldest unanswered task: workers answer in order.
func (p *proc) result(id uint64, d time.Duration) (ipc.Msg, error) {
	m, err := p.next(d)
	switch {
	case err == errSilent:
		return m, fmt.Errorf("no answer to task %d within %v", id, d)
	case err != nil:
		return m, fmt.Errorf("waiting for the answer to task %d: %w", id, err)
	case m.Kind != ipc.KindResult:
		return m, fmt.Errorf("waiting for the answer to task %d, it sent a %s frame", id, m.Kind)
	case !slices.Contains(p.pending, m.ID):
		return m, fmt.Errorf("it answered task %d, which was never sent or was answered already (expected task %d)", m.ID, id)
	case m.ID != p.pending[0]:
		return m, fmt.Errorf("it answered task %d before task %d: tasks must be answered in the order they were sent", m.ID, p.pending[0])
	case m.ID != id:
		return m, fmt.Errorf("it answered task %d, expected task %d", m.ID, id)
	}
	p.pending = p.pending[1:]
	if m.Err == nil && m.Value == nil {
		return m, fmt.Errorf("the result of task %d has neither \"v\" nor \"e\"", id)
	}
	return m, nil
}

// call sends a task and waits for its result.
func (p *proc) call(fn string, args []byte, timeout time.Duration) (ipc.Msg, error) {
	id, err := p.task(fn, args, timeout, false)
	if err != nil {
		return ipc.Msg{}, err
	}
	return p.result(id, p.opts.ReplyTimeout)
}

// exitStatus waits at most d for the process to end and describes how it
// did: code is its exit status, or -1 if a signal killed it or it is still
// running (then running is true).
func (p *proc) exitStatus(d time.Duration) (code int, running bool, how string) {
	select {
	case <-p.exited:
	default:
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-p.exited:
		case <-timer.C:
			return -1, true, "it is still running"
		}
	}
	code, sig := p.process.Status()
	if sig != 0 {
		return -1, false, fmt.Sprintf("it was killed by signal %d (%s)%s", int(sig), sig, lastLines(p.process.Output))
	}
	return code, false, fmt.Sprintf("it exited with status %d%s", code, lastLines(p.process.Output))
}

func (p *proc) describeExit(d time.Duration) string {
	_, _, how := p.exitStatus(d)
	return how
}

// lastLines returns the worker's last few output lines on one line, as
// "; its last output: a | b", preceded by its first line if that is not
// among them, or "" if it wrote nothing.
func lastLines(t *launcher.Tail) string {
	head, last := t.Ends()
	s := strings.TrimSpace(last)
	first, _, _ := strings.Cut(strings.TrimSpace(head), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	s = strings.Join(lines, " | ")
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	s = "; its last output: " + s
	if first = strings.TrimSpace(first); first != "" && !strings.Contains(s, first) {
		if len(first) > 200 {
			first = first[:200] + "..."
		}
		s = "; its first output: " + first + s
	}
	return s
}
