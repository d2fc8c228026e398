package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ppool/ppool/internal/launch"
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

// worker is the master's connection to one worker process: the process,
// what waits to be written to it (its outbox, under its own lock), what
// its reader has read (reading, the holder of rmu's alone), and what it
// knows of the tasks it holds (connState, under mu).
//
// Locks, and the order they are taken in (a lock may be taken while
// holding those before it, never those after):
//
//	rmu → p.mu → mu → box.mu
//	wmu → box.mu
//
// The pool's mutex p.mu guards what is pool-wide (the queue, the worker
// list, the pool's state). A connection's mu guards its in-flight list and
// the facts about it; the scheduler, the supervisor and Stats reach them
// through the connection's methods below. Whoever holds mu takes no other
// lock but box.mu: the reader, the timers and the memory watch use mu
// alone; the scheduler and the results handler take it inside p.mu. Only
// the dispatcher holds several connections' mu at once, under p.mu (which
// is why no order among them is needed). watchMu and the callbacks' lock
// are taken alone.
type worker struct {
	p *Pool
	workerProcess
	wmu  sync.Mutex // serialises writes to toW
	box  outbox
	rmu  sync.Mutex // held by whoever reads: the reader goroutine, or an Apply caller (readFor)
	in   reading
	wake chan struct{} // size 1: there may be something to read

	mu sync.Mutex // guards connState; after p.mu, before box.mu
	connState
}

// workerProcess is the process behind a worker, set once at its start.
type workerProcess struct {
	pid    int
	proc   *launch.Process
	toW    *os.File        // master → worker (the worker's fd 3)
	frR    *os.File        // worker → master (the worker's fd 4)
	exited <-chan struct{} // closed once the process is waited for, and what it left behind killed
	ready  chan error      // startup outcome, buffered; read by New only
}

// flags are a worker's facts the pool's dispatcher and reader consult,
// guarded by the connection's mu. An Apply caller that finds an idle worker reads its
// own answer on its own thread (readFor), which saves a wakeup of another
// thread per call; claimed says one is reading.
type flags struct {
	killedByPool bool
	helloed      bool   // its hello has been read
	claimed      bool   // an Apply caller is reading
	readFail     string // why reading stopped for good; the worker is finished
}

// run starts the worker's goroutines: the waiter (the launcher's copy of
// its output ends with it) and the reader, which handles the worker's
// death when its pipe closes. Both are counted in p.wg, which stop waits
// for.
func (w *worker) run() {
	p := w.p
	p.wg.Add(2)
	startTimer := time.AfterFunc(p.cfg.StartTimeout, func() {
		w.mu.Lock()
		starting := w.state == workerStarting
		if starting {
			w.killCause = &StartError{Command: p.path, PID: w.pid, Reason: fmt.Sprintf("no hello within the start timeout (%v)", p.cfg.StartTimeout)}
		}
		w.mu.Unlock()
		if starting {
			w.kill()
		}
	})
	go func() {
		defer p.wg.Done()
		// Whatever the worker started goes with it, before Close returns.
		_ = w.proc.Wait()
		startTimer.Stop()
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

func (w *worker) kill() { w.proc.Kill() }

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

// readerState says why reading stopped for good ("" if it has not), and
// whether the reader goroutine should be reading.
func (w *worker) readerState() (fail string, want bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readFail, w.wantsReaderLocked()
}

// readLoop is the worker's reader goroutine: it reads whenever answers are
// due and nobody else is reading them, until reading fails, and says why.
func (w *worker) readLoop() string {
	for {
		fail, want := w.readerState()
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
			_, want := w.readerState()
			return want
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
		// Read while t is unresolved and its answer still to come: a
		// timeout that fires as the worker answers resolves t after the
		// answer is read, and reading on would wait for a frame that
		// never comes (the worker has nothing more to say).
		reason = w.readFrames(true, func() bool { return !t.resolved.Load() && w.holds(t) })
		if !stop() {
			_ = w.frR.SetReadDeadline(time.Time{})
		}
		w.rmu.Unlock()
	}
	w.mu.Lock()
	w.claimed = false
	if reason != "" && w.readFail == "" {
		w.readFail = reason
	}
	more := w.readFail != "" || w.wantsReaderLocked()
	w.mu.Unlock()
	if more {
		w.signal()
	}
	p.pump()
}

// reading is what only the holder of a worker's rmu touches: the frame
// reader and what it has read.
type reading struct {
	rd      *ipc.Reader
	greeted bool      // the hello has been read
	msgs    []ipc.Msg // the run of frames read in one go, reused
	done    []answer  // the outcomes of a run, reused by pool.answers
}

// readFrames reads frames while more() holds, checked before each run of
// frames, and hands each run to the pool at once (pool.answers: one lock
// for the run, not one per frame). It returns why reading failed, or "" if
// it just stopped. A read deadline stops it if stopOnDeadline is set (an
// Apply caller whose context ended); otherwise it is cleared and reading
// goes on. It only reads and records: new tasks are sent by the
// dispatcher, or by a caller, never from here.
func (w *worker) readFrames(stopOnDeadline bool, more func() bool) string {
	for more() {
		msgs, reason := w.readRun()
		if len(msgs) > 0 {
			// What was read before a failure is handled first: the last
			// answers of a worker that then exited are its own.
			if r := w.handle(msgs); r != "" {
				return r
			}
		}
		switch {
		case reason == errDeadline && stopOnDeadline:
			return ""
		case reason == errDeadline:
			_ = w.frR.SetReadDeadline(time.Time{})
		case reason != "":
			return reason
		}
	}
	return ""
}

// errDeadline is readRun's reason for a read deadline that passed.
const errDeadline = "read deadline"

// readRun reads one frame, waiting for it, then every frame already
// buffered behind it, and returns them decoded, with why reading stopped
// early ("" if it did not).
func (w *worker) readRun() ([]ipc.Msg, string) {
	in := &w.in
	clear(in.msgs)
	in.msgs = in.msgs[:0]
	for {
		frame, err := in.rd.ReadFrame()
		if err != nil {
			return in.msgs, readError(err)
		}
		m, err := ipc.Decode(frame)
		if err != nil {
			return in.msgs, "protocol error: malformed frame: " + err.Error()
		}
		in.msgs = append(in.msgs, m)
		if in.rd.Buffered() == 0 {
			return in.msgs, ""
		}
	}
}

// readError says why a read failed.
func readError(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errDeadline
	case errors.Is(err, io.EOF):
		return "its pipe closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "its pipe closed in the middle of a frame"
	case errors.Is(err, os.ErrClosed):
		return "the pool closed its pipe"
	}
	return "protocol error: " + err.Error()
}

// handle hands a run of frames to the pool: the hello, first of all, then
// answers and progress reports.
func (w *worker) handle(msgs []ipc.Msg) string {
	p := w.p
	if !w.in.greeted {
		m := msgs[0]
		if m.Kind != ipc.KindHello {
			return fmt.Sprintf("protocol error: first frame was %s, not hello", m.Kind)
		}
		if reason := p.hello(w, m); reason != "" {
			return reason
		}
		w.in.greeted = true
		if msgs = msgs[1:]; len(msgs) == 0 {
			return ""
		}
	}
	return p.answers(w, msgs, time.Now())
}

// exitError describes how the worker process ended.
func (w *worker) exitError(reason string) *WorkerExitError {
	e := &WorkerExitError{TaskRef: TaskRef{PID: w.pid}, Stderr: w.proc.Output.String(), Reason: reason}
	e.ExitCode, e.Signal = w.proc.Status()
	return e
}

// flush writes the frames queued for the worker. Writes to one worker are
// serialised by wmu, and the outbox is emptied inside it, so frames go out
// in the order they were queued. It takes no lock of the pool's.
func (w *worker) flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	segs, buf := w.box.take()
	for _, b := range append(segs, buf) {
		if len(b) == 0 {
			continue
		}
		if _, err := w.toW.Write(b); err != nil {
			// The worker is dying or dead; its reader reports why.
			w.p.log.Debug("writing to worker", "worker", w.pid, "err", err)
			break
		}
	}
	w.box.giveBack(buf)
}

// bigFrame is the size from which a task frame is written from its own
// buffer rather than copied into the worker's output buffer.
const bigFrame = 64 << 10

// outbox is what waits to be written to one worker, in order. It has a
// lock of its own, taken after the pool's when both are held, so that a
// flush never takes the pool's.
type outbox struct {
	mu         sync.Mutex
	segs       [][]byte // frames waiting to be written before out: large ones, and the out buffers queued ahead of them
	out, spare []byte   // small frames waiting to be written, and a buffer to swap in
}

// put queues a task frame, and tail, the rest of the frame, if any. Small
// frames are coalesced into one buffer; a large one is queued as it is,
// so a 64 MiB argument is not copied once more on its way out.
func (o *outbox) put(frame, tail []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(frame) < bigFrame && tail == nil {
		o.out = append(o.out, frame...)
		return
	}
	if len(o.out) > 0 {
		o.segs = append(o.segs, o.out)
		o.out = nil
	}
	o.segs = append(o.segs, frame)
	if tail != nil {
		o.segs = append(o.segs, tail)
	}
}

// control queues a small control frame (cancel, shutdown), which app
// appends to a buffer.
func (o *outbox) control(app func([]byte) []byte) {
	o.mu.Lock()
	o.out = app(o.out)
	o.mu.Unlock()
}

// take empties the outbox, for a flush.
func (o *outbox) take() (segs [][]byte, buf []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	segs, buf = o.segs, o.out
	o.segs, o.out, o.spare = nil, o.spare[:0], nil
	return segs, buf
}

// giveBack returns a written buffer, to be reused unless it grew large.
func (o *outbox) giveBack(buf []byte) {
	o.mu.Lock()
	if cap(buf) <= 4<<20 && o.spare == nil {
		o.spare = buf[:0]
	}
	o.mu.Unlock()
}

// unshare gives a queued frame that starts at tail's first byte a copy of
// its own: its caller is about to reuse tail.
func (o *outbox) unshare(tail []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, s := range o.segs {
		if len(s) > 0 && &s[0] == &tail[0] {
			o.segs[i] = slices.Clone(s)
		}
	}
}
