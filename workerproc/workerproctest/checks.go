package workerproctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/workerproc"
)

// futureVersion is a protocol version no worker speaks.
const futureVersion = 65535

const (
	echo     = workerproc.BuiltinEcho
	sleep    = workerproc.BuiltinSleep
	fail     = workerproc.BuiltinFail
	panicFn  = workerproc.BuiltinPanic
	noSuchFn = "conformance.no-such-function"
)

// check is one named check. Its run starts the worker processes it needs
// through the checker, which kills them all when the check ends.
type check struct {
	name string
	run  func(k *checker) error
}

var checks = []check{
	{"hello", checkHello},
	{"version-newer-master", checkVersionNewerMaster},
	{"version-unknown", checkVersionUnknown},
	{"task", checkTask},
	{"unknown-keys", checkUnknownKeys},
	{"fragmented-frames", checkFragmentedFrames},
	{"batch", checkBatch},
	{"unknown-function", checkUnknownFunction},
	{"bad-arguments", checkBadArguments},
	{"error", checkError},
	{"panic", checkPanic},
	{"cancel-running", checkCancelRunning},
	{"cancel-queued", checkCancelQueued},
	{"timeout", checkTimeout},
	{"pipeline", checkPipeline},
	{"read-while-running", checkReadWhileRunning},
	{"answer-before-next", checkAnswerBeforeNext},
	{"shutdown", checkShutdown},
	{"shutdown-queued", checkShutdownQueued},
	{"eof", checkEOF},
	{"malformed-frame", checkMalformedFrame},
	{"unknown-message-type", checkUnknownMessageType},
	{"oversized-frame", checkOversizedFrame},
	{"huge-frame-header", checkHugeFrameHeader},
}

func (c check) runIn(ctx context.Context, argv []string, opts *Options) error {
	k := &checker{ctx: ctx, argv: argv, opts: opts}
	defer func() {
		for _, p := range k.procs {
			p.close()
		}
	}()
	return c.run(k)
}

type checker struct {
	ctx   context.Context
	argv  []string
	opts  *Options
	procs []*proc
}

// start launches a worker that may send frames up to maxFrame bytes.
func (k *checker) start(maxFrame int, env ...string) (*proc, error) {
	p, err := launch(k.ctx, k.argv, k.opts, maxFrame, env...)
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, p)
	return p, nil
}

// ready launches a worker and reads its hello.
func (k *checker) ready(env ...string) (*proc, error) {
	p, err := k.start(ipc.DefaultMaxFrame, env...)
	if err != nil {
		return nil, err
	}
	if _, err := p.hello(); err != nil {
		return nil, err
	}
	return p, nil
}

// alive checks that the worker still answers a task after something that
// must not have stopped it.
func alive(p *proc, after string) error {
	arg := ipc.AppendString(nil, "still there?")
	m, err := p.call(echo, arg, 0)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("after %s, a call of %s: %w", after, echo, err)
	}
	return nil
}

func wantValue(m ipc.Msg, want []byte) error {
	if m.Err != nil {
		return fmt.Errorf("it failed (%s)", describeError(m.Err))
	}
	if ok, diff := sameValue(m.Value, want); !ok {
		return fmt.Errorf("wrong value: %s", diff)
	}
	return nil
}

func wantError(m ipc.Msg, typ string) error {
	if m.Err == nil {
		return fmt.Errorf("it answered with a value; want an error of type %q", typ)
	}
	if m.Err.Type != typ {
		return fmt.Errorf("it answered with an error of type %q (%s); want type %q", m.Err.Type, describeError(m.Err), typ)
	}
	if m.Err.Message == "" {
		return fmt.Errorf("its error of type %q has no message (key \"msg\")", typ)
	}
	return nil
}

func describeError(e *ipc.Error) string {
	s := e.Type + ": " + e.Message
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

func checkHello(k *checker) error {
	p, err := k.start(ipc.DefaultMaxFrame)
	if err != nil {
		return err
	}
	m, err := p.hello()
	if err != nil {
		return err
	}
	if len(m.Versions) == 0 {
		return errors.New("its hello lists no protocol versions (key \"vs\")")
	}
	if _, err := ipc.Negotiate(ipc.Versions, m.Versions); err != nil {
		return fmt.Errorf("its hello: %w", err)
	}
	if m.PID <= 0 {
		return errors.New("its hello has no pid (key \"pid\")")
	}
	var missing []string
	for _, fn := range []string{echo, sleep, fail, panicFn} {
		if !slices.Contains(m.Functions, fn) {
			missing = append(missing, fn)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("its hello does not list %s (key \"fns\"): every worker serves the ppool.* built-ins, which health checks and this suite call", strings.Join(missing, ", "))
	}
	for i, fn := range m.Functions {
		if slices.Contains(m.Functions[i+1:], fn) {
			return fmt.Errorf("its hello lists %q twice", fn)
		}
	}
	switch m2, err := p.next(k.opts.Settle); {
	case err == errSilent:
		return nil
	case err != nil:
		return fmt.Errorf("right after its hello: %w", err)
	default:
		return fmt.Errorf("it sent a second frame (%s) after its hello, before any task was sent: a worker speaks only to answer tasks", m2.Kind)
	}
}

func checkVersionNewerMaster(k *checker) error {
	master := append(slices.Clone(ipc.Versions), futureVersion)
	setting := ipc.EnvProtocol + "=" + ipc.FormatVersions(master)
	p, err := k.start(ipc.DefaultMaxFrame, setting)
	if err != nil {
		return err
	}
	m, err := p.hello()
	if err != nil {
		return fmt.Errorf("with %s (ppool speaking a newer version too): %w", setting, err)
	}
	if slices.Contains(m.Versions, futureVersion) {
		return fmt.Errorf("with %s, its hello claims protocol %d, which does not exist: a hello lists the versions the worker speaks", setting, futureVersion)
	}
	if _, err := ipc.Negotiate(master, m.Versions); err != nil {
		return fmt.Errorf("with %s: %w", setting, err)
	}
	return alive(p, "a hello with "+setting)
}

func checkVersionUnknown(k *checker) error {
	setting := ipc.EnvProtocol + "=" + strconv.Itoa(futureVersion)
	p, err := k.start(ipc.DefaultMaxFrame, setting)
	if err != nil {
		return err
	}
	m, err := p.next(k.opts.StartTimeout)
	said := "it said hello"
	switch {
	case err == errSilent:
		return fmt.Errorf("with %s, a version it cannot speak, it neither exited nor said hello within %v: it must exit with a non-zero status, after a hello listing the versions it does speak or without one", setting, k.opts.StartTimeout)
	case errors.Is(err, errPipeClosed):
		said = "it sent no hello" // allowed: exiting is what matters
	case err != nil:
		return fmt.Errorf("with %s: %w", setting, err)
	case m.Kind != ipc.KindHello:
		return fmt.Errorf("with %s, its first frame is a %s, not a hello", setting, m.Kind)
	case slices.Contains(m.Versions, futureVersion):
		return fmt.Errorf("with %s, its hello claims protocol %d, which does not exist: a hello lists the versions the worker speaks, whatever the master asks for", setting, futureVersion)
	}
	// Sharing no version with the master, it must not wait for tasks it
	// could misread: it exits non-zero, with the reason on stderr.
	switch code, running, how := p.exitStatus(k.opts.ExitWithin); {
	case running:
		return fmt.Errorf("with %s, a version it cannot speak, %s and is still running %v later: a worker that shares no version with the master writes the reason to stderr and exits with a non-zero status", setting, said, k.opts.ExitWithin)
	case code == -1:
		return fmt.Errorf("with %s, %s and then %s: it must exit with a non-zero status, not crash", setting, said, how)
	case code == 0:
		return fmt.Errorf("with %s, %s and then %s: a worker that shares no version with the master exits with a non-zero status", setting, said, how)
	}
	return nil
}

func checkTask(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	arg := richValue()
	m, err := p.call(echo, arg, 0)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("%s of a map holding every msgpack type: %w", echo, err)
	}
	return nil
}

func checkUnknownKeys(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	id := p.newID()
	arg := ipc.AppendString(nil, "keys in another order")
	body := mpMap(nil, 6)
	body = append(ipc.AppendString(body, "a"), arg...)
	body = append(ipc.AppendString(body, "x-future-key"), 0x81, 0xa1, 'x', 0x92, 0x01, 0x02)
	body = ipc.AppendString(ipc.AppendString(body, "fn"), echo)
	body = mpInt(ipc.AppendString(body, "id"), int64(id))
	body = ipc.AppendString(ipc.AppendString(body, "t"), "task")
	body = append(ipc.AppendString(body, "x-another"), 0xc0)
	if err := p.write(withLength(body)); err != nil {
		return err
	}
	m, err := p.result(id, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("a task whose keys come in another order, with keys it does not know: %w", err)
	}
	return nil
}

func withLength(body []byte) []byte {
	return append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func checkFragmentedFrames(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	arg := ipc.AppendString(nil, "one byte at a time")
	id := p.newID()
	frame := ipc.AppendTask(nil, id, echo, arg, 0, false)
	for i := range frame {
		if err := p.write(frame[i : i+1]); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	m, err := p.result(id, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("a task written one byte at a time: %w", err)
	}
	// A whole frame followed by the start of the next must be answered
	// without waiting for the rest.
	first, second := ipc.AppendString(nil, "whole"), ipc.AppendString(nil, "split")
	id1, id2 := p.newID(), p.newID()
	both := ipc.AppendTask(nil, id1, echo, first, 0, false)
	cut := len(both) + 3
	both = ipc.AppendTask(both, id2, echo, second, 0, false)
	if err := p.write(both[:cut]); err != nil {
		return err
	}
	m, err = p.result(id1, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, first)
	}
	if err != nil {
		return fmt.Errorf("a whole task frame followed by 3 bytes of the next: %w", err)
	}
	if err := p.write(both[cut:]); err != nil {
		return err
	}
	m, err = p.result(id2, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, second)
	}
	if err != nil {
		return fmt.Errorf("the rest of a split task frame: %w", err)
	}
	return nil
}

// batchCall sends fn a batch of items and returns the item results.
func batchCall(p *proc, fn string, items ...[]byte) ([]ipc.ItemResult, error) {
	args := ipc.AppendArrayHeader(nil, len(items))
	for _, it := range items {
		args = append(args, it...)
	}
	id, err := p.task(fn, args, 0, true)
	if err != nil {
		return nil, err
	}
	m, err := p.result(id, p.opts.ReplyTimeout)
	switch {
	case err != nil:
		return nil, err
	case m.Err != nil:
		return nil, fmt.Errorf("the whole batch failed (%s)", describeError(m.Err))
	case !m.Batch:
		return nil, fmt.Errorf("the result of batch task %d lacks \"b\": true", id)
	}
	res, err := ipc.DecodeBatch(m.Value)
	if err != nil {
		return nil, fmt.Errorf("its value is not an array of item results ({\"v\": value} or {\"e\": error}): %w", err)
	}
	if len(res) != len(items) {
		return nil, fmt.Errorf("it answered %d items for a batch of %d", len(res), len(items))
	}
	for i, r := range res {
		if r.Err == nil && r.Value == nil {
			return nil, fmt.Errorf("item %d has neither \"v\" nor \"e\"", i)
		}
	}
	return res, nil
}

func checkBatch(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	items := [][]byte{
		mpInt(nil, 1), ipc.AppendString(nil, "two"), {0xc0},
		append(mpArray(nil, 2), append(mpInt(nil, 3), mpFloat(nil, 4.5)...)...),
		append(ipc.AppendString(mpMap(nil, 1), "k"), ipc.AppendBin(nil, []byte("bytes"))...),
	}
	res, err := batchCall(p, echo, items...)
	if err != nil {
		return fmt.Errorf("a batch of %d for %s: %w", len(items), echo, err)
	}
	for i, r := range res {
		if err := wantValue(ipc.Msg{Value: r.Value, Err: r.Err}, items[i]); err != nil {
			return fmt.Errorf("a batch for %s, item %d: %w", echo, i, err)
		}
	}

	res, err = batchCall(p, sleep, mpInt(nil, 0), ipc.AppendString(nil, "soon"), mpFloat(nil, 0.001))
	if err != nil {
		return fmt.Errorf("a batch for %s with one bad item: %w", sleep, err)
	}
	for i, r := range res {
		m := ipc.Msg{Value: r.Value, Err: r.Err}
		if i == 1 {
			err = wantError(m, ipc.ErrTypeBadArguments)
		} else {
			err = wantValue(m, []byte{0xc0})
		}
		if err != nil {
			return fmt.Errorf("a batch for %s of [0, \"soon\", 0.001], item %d: %w", sleep, i, err)
		}
	}

	res, err = batchCall(p, fail, ipc.AppendString(nil, "first"), ipc.AppendString(nil, "second"))
	if err != nil {
		return fmt.Errorf("a batch for %s: %w", fail, err)
	}
	for i, msg := range []string{"first", "second"} {
		m := ipc.Msg{Value: res[i].Value, Err: res[i].Err}
		if err := wantError(m, ipc.ErrTypeError); err != nil {
			return fmt.Errorf("a batch for %s, item %d: %w", fail, i, err)
		}
		if !strings.Contains(m.Err.Message, msg) {
			return fmt.Errorf("a batch for %s, item %d: message %q does not contain %q", fail, i, m.Err.Message, msg)
		}
	}
	return nil
}

func checkUnknownFunction(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	m, err := p.call(noSuchFn, mpInt(nil, 1), 0)
	if err == nil {
		err = wantError(m, ipc.ErrTypeUnknownFunction)
	}
	if err != nil {
		return fmt.Errorf("a call of %q, which it does not serve: %w", noSuchFn, err)
	}
	return alive(p, "a call of an unknown function")
}

func checkBadArguments(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	for _, c := range []struct {
		fn, what string
		arg      []byte
	}{
		{sleep, "a string", ipc.AppendString(nil, "soon")},
		{fail, "an integer", mpInt(nil, 42)},
		{panicFn, "an array", append(mpArray(nil, 1), 0x01)},
	} {
		m, err := p.call(c.fn, c.arg, 0)
		if err == nil {
			err = wantError(m, ipc.ErrTypeBadArguments)
		}
		if err != nil {
			return fmt.Errorf("%s given %s: %w", c.fn, c.what, err)
		}
	}
	return alive(p, "bad arguments")
}

func checkError(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	const text = "conformance: an expected failure"
	m, err := p.call(fail, ipc.AppendString(nil, text), 0)
	if err == nil {
		err = wantError(m, ipc.ErrTypeError)
	}
	if err == nil && !strings.Contains(m.Err.Message, text) {
		err = fmt.Errorf("its message %q does not contain the argument", m.Err.Message)
	}
	if err != nil {
		return fmt.Errorf("%s(%q): %w", fail, text, err)
	}
	return alive(p, "a failed task")
}

func checkPanic(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	const text = "conformance: an expected panic"
	m, err := p.call(panicFn, ipc.AppendString(nil, text), 0)
	if err != nil {
		return fmt.Errorf("%s(%q): %w", panicFn, text, err)
	}
	switch e := m.Err; {
	case e == nil:
		return fmt.Errorf("%s(%q) answered with a value; want an error with a traceback", panicFn, text)
	case slices.Contains([]string{ipc.ErrTypeUnknownFunction, ipc.ErrTypeBadArguments, ipc.ErrTypeCancelled, ipc.ErrTypeInit, ""}, e.Type):
		return fmt.Errorf("%s(%q) answered with an error of type %q (%s); want %q or the exception's class name", panicFn, text, e.Type, describeError(e), ipc.ErrTypePanic)
	case !strings.Contains(e.Message, text):
		return fmt.Errorf("%s(%q): its message %q does not contain the argument", panicFn, text, e.Message)
	case strings.TrimSpace(e.Traceback) == "":
		return fmt.Errorf("%s(%q): its error (%s) has no traceback (key \"tb\"): a panic or an uncaught exception carries the worker-side stack", panicFn, text, describeError(e))
	}
	return alive(p, "a panic")
}

// startSleep sends ppool.sleep(seconds) and checks that nothing comes back
// for Settle, so the task is running when the caller goes on.
func startSleep(p *proc, seconds float64, timeout time.Duration) (uint64, error) {
	id, err := p.task(sleep, mpFloat(nil, seconds), timeout, false)
	if err != nil {
		return 0, err
	}
	switch m, err := p.next(p.opts.Settle); {
	case err == errSilent:
		return id, nil
	case err != nil:
		return 0, fmt.Errorf("%s(%g): %w", sleep, seconds, err)
	default:
		return 0, fmt.Errorf("%s(%g): it sent a %s frame (task %d) within %v", sleep, seconds, m.Kind, m.ID, p.opts.Settle)
	}
}

func checkCancelRunning(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	id, err := startSleep(p, 30, 0)
	if err != nil {
		return err
	}
	if err := p.write(ipc.AppendCancel(nil, id)); err != nil {
		return err
	}
	m, err := p.result(id, k.opts.CancelWithin)
	if err == nil {
		err = wantError(m, ipc.ErrTypeCancelled)
	}
	if err != nil {
		return fmt.Errorf("%s(30) cancelled while running: %w", sleep, err)
	}
	return alive(p, "a cancelled task")
}

func checkCancelQueued(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	// All in one write: the cancel arrives while the sleep runs and the
	// echo waits behind it. The last cancel names a task never sent, as
	// when the master cancels a task whose answer is already on its way.
	running, queued := p.newID(), p.newID()
	b := ipc.AppendTask(nil, running, sleep, mpFloat(nil, 0.3), 0, false)
	b = ipc.AppendTask(b, queued, echo, ipc.AppendString(nil, "must not run"), 0, false)
	b = ipc.AppendCancel(b, queued)
	b = ipc.AppendCancel(b, 999_999_999)
	if err := p.write(b); err != nil {
		return err
	}
	m, err := p.result(running, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, []byte{0xc0})
	}
	if err != nil {
		return fmt.Errorf("%s(0.3), running while a queued task was cancelled: %w", sleep, err)
	}
	m, err = p.result(queued, k.opts.ReplyTimeout)
	if err == nil {
		err = wantError(m, ipc.ErrTypeCancelled)
	}
	if err != nil {
		return fmt.Errorf("a task cancelled while queued must be answered as cancelled without running: %w", err)
	}
	return alive(p, "a cancel of a task it never received")
}

// checkAnswerBeforeNext: a worker writes the answers it has before it
// starts the next task. The master blames a crash on the first task it has
// no answer for, so an answer left in a buffer while a later task runs
// would make a finished task fail if that later one crashed.
func checkAnswerBeforeNext(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	done, long := p.newID(), p.newID()
	arg := ipc.AppendString(nil, "answered before the next task starts")
	b := ipc.AppendTask(nil, done, echo, arg, 0, false)
	b = ipc.AppendTask(b, long, sleep, mpFloat(nil, 30), 0, false)
	if err := p.write(b); err != nil {
		return err
	}
	m, err := p.result(done, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("%s, sent with %s(30) behind it: its answer must be written before the sleep starts: %w", echo, sleep, err)
	}
	if err := p.write(ipc.AppendCancel(nil, long)); err != nil {
		return err
	}
	m, err = p.result(long, k.opts.CancelWithin)
	if err == nil {
		err = wantError(m, ipc.ErrTypeCancelled)
	}
	if err != nil {
		return fmt.Errorf("%s(30) cancelled while running: %w", sleep, err)
	}
	return alive(p, "a task cancelled after another was answered")
}

func checkTimeout(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	to := k.opts.TaskTimeout
	arg := ipc.AppendString(nil, "in time")
	m, err := p.call(echo, arg, to)
	if err == nil {
		err = wantValue(m, arg)
	}
	if err != nil {
		return fmt.Errorf("%s with a timeout (\"to\") of %v: %w", echo, to, err)
	}
	start := time.Now()
	id, err := p.task(sleep, mpFloat(nil, 30), to, false)
	if err != nil {
		return err
	}
	m, err = p.result(id, to+k.opts.CancelWithin)
	if err == nil {
		err = wantError(m, ipc.ErrTypeCancelled)
	}
	if err != nil {
		return fmt.Errorf("%s(30) with a timeout (\"to\") of %v: %w", sleep, to, err)
	}
	if took := time.Since(start); took < to*9/10 {
		return fmt.Errorf("%s(30) with a timeout of %v was answered as cancelled after %v, before its timeout", sleep, to, took.Round(time.Millisecond))
	}
	return alive(p, "a task past its timeout")
}

func checkPipeline(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	// About 40 kB: the write fits in a pipe's buffer, so it completes
	// whatever the worker's reading habits.
	const n = 1000
	ids := make([]uint64, n)
	args := make([][]byte, n)
	var b []byte
	for i := range n {
		ids[i] = p.newID()
		args[i] = ipc.AppendString(mpInt(mpArray(nil, 2), int64(i)), "item "+strconv.Itoa(i))
		b = ipc.AppendTask(b, ids[i], echo, args[i], 0, false)
	}
	if err := p.write(b); err != nil {
		return err
	}
	deadline := time.Now().Add(k.opts.ReplyTimeout)
	for i := range n {
		m, err := p.result(ids[i], max(time.Until(deadline), time.Millisecond))
		if err == nil {
			err = wantValue(m, args[i])
		}
		if err != nil {
			return fmt.Errorf("%d tasks sent in one write, answer %d: %w", n, i+1, err)
		}
	}
	return nil
}

func checkShutdown(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	id, err := startSleep(p, 0.3, 0)
	if err != nil {
		return err
	}
	if err := p.write(ipc.AppendShutdown(nil)); err != nil {
		return err
	}
	m, err := p.result(id, k.opts.ReplyTimeout)
	if errors.Is(err, errPipeClosed) {
		return fmt.Errorf("it did not answer task %d, running when shutdown arrived: shutdown means exit once the running task is done (%w)", id, err)
	}
	if err == nil {
		err = wantValue(m, []byte{0xc0})
	}
	if err != nil {
		return fmt.Errorf("%s(0.3), running when shutdown arrived, must finish: %w", sleep, err)
	}
	if err := exitsZero(p, k.opts.ExitWithin, "after shutdown and the answer to its running task", "after shutdown"); err != nil {
		return err
	}
	switch m, err := p.next(k.opts.Settle); {
	case err == nil:
		return fmt.Errorf("it sent a %s frame after answering its last task and exiting", m.Kind)
	case err != errSilent && !errors.Is(err, errPipeClosed):
		return fmt.Errorf("after shutdown: %w", err)
	}
	return nil
}

// checkShutdownQueued: at shutdown, tasks still queued are answered (type
// cancelled) before the worker exits, so that the master never waits on
// them.
func checkShutdownQueued(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	running, err := startSleep(p, 0.3, 0)
	if err != nil {
		return err
	}
	first, second := p.newID(), p.newID()
	b := ipc.AppendTask(nil, first, echo, ipc.AppendString(nil, "queued at shutdown"), 0, false)
	b = ipc.AppendTask(b, second, sleep, mpFloat(nil, 30), 0, false)
	b = ipc.AppendShutdown(b)
	if err := p.write(b); err != nil {
		return err
	}
	m, err := p.result(running, k.opts.ReplyTimeout)
	if err == nil {
		err = wantValue(m, []byte{0xc0})
	}
	if err != nil {
		return fmt.Errorf("%s(0.3), running when shutdown arrived with two tasks queued behind it, must finish: %w", sleep, err)
	}
	for _, id := range []uint64{first, second} {
		m, err := p.result(id, k.opts.ReplyTimeout)
		if err == nil {
			err = wantError(m, ipc.ErrTypeCancelled)
		}
		if err != nil {
			return fmt.Errorf("task %d, queued when shutdown arrived: a worker answers each queued task with type cancelled before it exits, so that the master never waits on it: %w", id, err)
		}
	}
	return exitsZero(p, k.opts.ExitWithin, "after shutdown and the answers to its running and queued tasks", "after shutdown")
}

// checkReadWhileRunning: a worker reads fd 3 while a task runs, so that a
// cancel reaches the running task and the master's writes never wait on a
// full pipe. More tasks than any pipe holds are written while ppool.sleep
// runs, then a cancel for it.
func checkReadWhileRunning(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	running, err := startSleep(p, 30, 0)
	if err != nil {
		return err
	}
	// 2 MiB: over a pipe's default 64 KiB and over the 1 MiB the pool may
	// enlarge it to.
	const n, size = 512, 4 << 10
	ids := make([]uint64, n)
	args := make([][]byte, n)
	var b []byte
	for i := range n {
		ids[i] = p.newID()
		args[i] = ipc.AppendBin(nil, bytes.Repeat([]byte{byte(i)}, size))
		b = ipc.AppendTask(b, ids[i], echo, args[i], 0, false)
	}
	b = ipc.AppendCancel(b, running)
	if err := p.write(b); err != nil {
		return fmt.Errorf("while %s(30) ran (task %d), %d tasks and a cancel for it were written to its fd 3: %w", sleep, running, n, err)
	}
	m, err := p.result(running, k.opts.CancelWithin)
	if err == nil {
		err = wantError(m, ipc.ErrTypeCancelled)
	}
	if err != nil {
		return fmt.Errorf("%s(30), cancelled behind %d tasks written while it ran: %w", sleep, n, err)
	}
	deadline := time.Now().Add(k.opts.ReplyTimeout)
	for i := range n {
		m, err := p.result(ids[i], max(time.Until(deadline), time.Millisecond))
		if err == nil {
			err = wantValue(m, args[i])
		}
		if err != nil {
			return fmt.Errorf("%d tasks written while %s(30) ran, answer %d: %w", n, sleep, i+1, err)
		}
	}
	return nil
}

func checkEOF(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	if err := alive(p, "hello"); err != nil {
		return err
	}
	p.toW.Close()
	const after = "after its fd 3 reached end of input (the master is gone)"
	return exitsZero(p, k.opts.ExitWithin, after, after)
}

// exitsZero checks that the worker exits with status 0 within the bound:
// whileRunning says what came before, for a worker still running then, and
// exited for one that exited otherwise.
func exitsZero(p *proc, within time.Duration, whileRunning, exited string) error {
	code, running, how := p.exitStatus(within)
	if running {
		return fmt.Errorf("%s, it is still running %v later; want it to exit with status 0", whileRunning, within)
	}
	if code != 0 {
		return fmt.Errorf("%s, %s; want exit status 0", exited, how)
	}
	return nil
}

// refused checks that the worker, just sent what, exits non-zero promptly
// without answering.
func refused(p *proc, what string) error {
	m, err := p.next(p.opts.ExitWithin)
	switch {
	case err == nil:
		return fmt.Errorf("it answered %s with a %s frame: it must refuse it and exit with a non-zero status", what, m.Kind)
	case err != errSilent && !errors.Is(err, errPipeClosed):
		return fmt.Errorf("after %s: %w", what, err)
	}
	switch code, running, how := p.exitStatus(0); {
	case running:
		return fmt.Errorf("after %s, it is still running %v later: it must exit with a non-zero status", what, p.opts.ExitWithin)
	case code == -1:
		return fmt.Errorf("after %s, %s: it must exit with a non-zero status, not crash", what, how)
	case code == 0:
		return fmt.Errorf("after %s, %s: a worker refusing a frame exits with a non-zero status", what, how)
	}
	return nil
}

func checkMalformedFrame(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	if err := alive(p, "hello"); err != nil {
		return err
	}
	if err := p.write([]byte{0, 0, 0, 1, 0xc1}); err != nil {
		return err
	}
	return refused(p, "a malformed frame (payload 0xc1, a byte msgpack reserves)")
}

// checkUnknownMessageType: a "t" the worker does not know is a protocol
// error (new message types come with a new protocol version), not a frame
// to skip.
func checkUnknownMessageType(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	if err := alive(p, "hello"); err != nil {
		return err
	}
	body := mpMap(nil, 2)
	body = ipc.AppendString(ipc.AppendString(body, "t"), "x-future-message")
	body = mpInt(ipc.AppendString(body, "id"), 1)
	if err := p.write(withLength(body)); err != nil {
		return err
	}
	return refused(p, `a frame of unknown type {"t": "x-future-message", "id": 1}, a protocol error`)
}

func checkOversizedFrame(k *checker) error {
	limit := k.opts.MaxFrame
	setting := ipc.EnvMaxFrame + "=" + strconv.Itoa(limit)
	p, err := k.start(limit, setting)
	if err != nil {
		return err
	}
	if _, err := p.hello(); err != nil {
		return fmt.Errorf("with %s: %w", setting, err)
	}
	id := p.newID()
	frame, err := paddedTask(id, limit)
	if err != nil {
		return err
	}
	if err := p.write(frame); err != nil {
		return err
	}
	if _, err := p.result(id, k.opts.ReplyTimeout); err != nil {
		return fmt.Errorf("with %s, a task frame of exactly %d bytes is within the limit: %w", setting, limit, err)
	}
	frame, err = paddedTask(p.newID(), limit+1)
	if err != nil {
		return err
	}
	// The frame is larger than a pipe's buffer: a worker that refuses it
	// after reading the header exits while this write waits, and one that
	// neither reads it nor exits fails in refused.
	if err := p.write(frame); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, errNotReading) {
		return err
	}
	return refused(p, fmt.Sprintf("a task frame of %d bytes, over its %s", limit+1, setting))
}

// paddedTask is a ppool.echo task frame whose payload is exactly size
// bytes, padded with a key the worker does not know.
func paddedTask(id uint64, size int) ([]byte, error) {
	pad := size
	for range 4 {
		body := mpMap(nil, 5)
		body = ipc.AppendString(ipc.AppendString(body, "t"), "task")
		body = mpInt(ipc.AppendString(body, "id"), int64(id))
		body = ipc.AppendString(ipc.AppendString(body, "fn"), echo)
		body = ipc.AppendBin(ipc.AppendString(body, "x-pad"), make([]byte, pad))
		body = mpInt(ipc.AppendString(body, "a"), 1)
		if len(body) == size {
			return withLength(body), nil
		}
		if pad += size - len(body); pad < 0 {
			break
		}
	}
	return nil, fmt.Errorf("cannot build a task frame of exactly %d bytes", size)
}

func checkHugeFrameHeader(k *checker) error {
	p, err := k.ready()
	if err != nil {
		return err
	}
	if err := alive(p, "hello"); err != nil {
		return err
	}
	// The header, then a few bytes of a frame that never ends.
	if err := p.write([]byte{0xff, 0xff, 0xff, 0xff, 0x85, 0xa1, 't'}); err != nil {
		return err
	}
	return refused(p, "a frame header declaring 4294967295 bytes, over any limit (PPOOL_MAX_FRAME, default 256 MiB)")
}
