package workerproc_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/ipc/codec"
	"github.com/ppool/ppool/workerproc"
)

func TestMain(m *testing.M) {
	workerproc.Main()
	os.Exit(m.Run())
}

var (
	_ = workerproc.Register("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
	_ = workerproc.Register("procs", func(ctx context.Context, _ struct{}) (int, error) { return runtime.GOMAXPROCS(0), nil })
	_ = workerproc.Register("wait", func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	_ = workerproc.Register("oops", func(ctx context.Context, _ struct{}) (int, error) { panic("oops") })
)

// rawWorker starts the test binary as a worker and talks the protocol to it
// by hand.
type rawWorker struct {
	t   *testing.T
	cmd *exec.Cmd
	w   io.WriteCloser
	r   *ipc.Reader
}

func startRaw(t *testing.T, env ...string) *rawWorker {
	t.Helper()
	toR, toW, _ := os.Pipe()
	frR, frW, _ := os.Pipe()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{workerproc.EnvWorker + "=1", ipc.EnvProtocol + "=1"}, env...)...)
	cmd.ExtraFiles = []*os.File{toR, frW}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toR.Close()
	frW.Close()
	rw := &rawWorker{t: t, cmd: cmd, w: toW, r: ipc.NewReader(frR, 4096, 0)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return rw
}

func (rw *rawWorker) send(frame []byte) {
	if _, err := rw.w.Write(frame); err != nil {
		rw.t.Fatal(err)
	}
}

func (rw *rawWorker) recv() ipc.Msg {
	rw.t.Helper()
	m, err := rw.r.ReadMsg()
	if err != nil {
		rw.t.Fatal(err)
	}
	return m
}

func args(t *testing.T, v any) []byte {
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exitsWithin waits for the worker to exit and returns its exit code.
func (rw *rawWorker) exitsWithin(d time.Duration) int {
	done := make(chan error, 1)
	go func() { done <- rw.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(d):
		rw.t.Fatalf("worker still running after %v", d)
		return -1
	}
}

func TestProtocol(t *testing.T) {
	rw := startRaw(t, ipc.EnvThreads+"=3")
	hello := rw.recv()
	if hello.Kind != ipc.KindHello || hello.PID != rw.cmd.Process.Pid || !slices.Contains(hello.Versions, 1) {
		t.Fatalf("hello = %+v", hello)
	}
	for _, fn := range []string{"double", "procs", "wait", "oops"} {
		if !slices.Contains(hello.Functions, fn) {
			t.Errorf("hello lists %v, missing %q", hello.Functions, fn)
		}
	}
	var v int
	rw.send(ipc.AppendTask(nil, 1, "double", args(t, 21), 0, false))
	if m := rw.recv(); m.ID != 1 || m.Err != nil || codec.Decode(m.Value, &v) != nil || v != 42 {
		t.Errorf("double(21): %+v", m)
	}
	rw.send(ipc.AppendTask(nil, 2, "procs", args(t, struct{}{}), 0, false))
	if m := rw.recv(); codec.Decode(m.Value, &v) != nil || v != 3 {
		t.Errorf("GOMAXPROCS in a worker with a thread budget of 3: %d", v)
	}
	rw.send(ipc.AppendTask(nil, 3, "nope", args(t, 1), 0, false))
	if m := rw.recv(); m.ID != 3 || m.Err == nil || m.Err.Type != ipc.ErrTypeUnknownFunction {
		t.Errorf("unknown function: %+v", m)
	}
	rw.send(ipc.AppendTask(nil, 4, "double", args(t, "x"), 0, false))
	if m := rw.recv(); m.ID != 4 || m.Err == nil || m.Err.Type != ipc.ErrTypeBadArguments {
		t.Errorf("bad arguments: %+v", m)
	}
	rw.send(ipc.AppendTask(nil, 5, "oops", args(t, struct{}{}), 0, false))
	if m := rw.recv(); m.ID != 5 || m.Err == nil || m.Err.Type != ipc.ErrTypePanic || m.Err.Traceback == "" {
		t.Errorf("panic: %+v", m)
	}
	// Cancel a running task, and a queued one.
	rw.send(ipc.AppendTask(nil, 6, "wait", args(t, struct{}{}), 0, false))
	rw.send(ipc.AppendTask(nil, 7, "double", args(t, 1), 0, false))
	rw.send(ipc.AppendCancel(nil, 7))
	rw.send(ipc.AppendCancel(nil, 6))
	for _, id := range []uint64{6, 7} {
		if m := rw.recv(); m.ID != id || m.Err == nil || m.Err.Type != ipc.ErrTypeCancelled {
			t.Errorf("cancelled task %d: %+v", id, m)
		}
	}
	// A batch, with one bad item.
	batch := ipc.AppendArrayHeader(nil, 3)
	batch = append(batch, args(t, 1)...)
	batch = append(batch, args(t, "bad")...)
	batch = append(batch, args(t, 3)...)
	rw.send(ipc.AppendTask(nil, 8, "double", batch, 0, true))
	m := rw.recv()
	items, err := ipc.DecodeBatch(m.Value)
	if err != nil || len(items) != 3 || items[1].Err == nil || items[0].Err != nil {
		t.Fatalf("batch: %+v, %v", items, err)
	}
	if codec.Decode(items[2].Value, &v) != nil || v != 6 {
		t.Errorf("batch item 2 = %d", v)
	}
	// A worker-side deadline.
	rw.send(ipc.AppendTask(nil, 9, "wait", args(t, struct{}{}), 50*time.Millisecond, false))
	if m := rw.recv(); m.ID != 9 || m.Err == nil || m.Err.Type != ipc.ErrTypeCancelled {
		t.Errorf("task past its deadline: %+v", m)
	}
	rw.send(ipc.AppendShutdown(nil))
	if code := rw.exitsWithin(5 * time.Second); code != 0 {
		t.Errorf("exit code after shutdown: %d", code)
	}
}

func TestExitOnEOF(t *testing.T) {
	rw := startRaw(t)
	rw.recv()
	rw.w.Close()
	if code := rw.exitsWithin(5 * time.Second); code != 0 {
		t.Errorf("exit code after EOF: %d", code)
	}
}

func TestVersionMismatch(t *testing.T) {
	rw := startRaw(t, ipc.EnvProtocol+"=99")
	hello := rw.recv() // the worker still says which versions it speaks
	if _, err := ipc.Negotiate([]int{99}, hello.Versions); err == nil {
		t.Fatalf("hello %+v negotiated with a master speaking 99", hello)
	}
	if code := rw.exitsWithin(5 * time.Second); code == 0 {
		t.Error("worker with no common version exited 0")
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	reg := workerproc.NewRegistry()
	workerproc.RegisterIn(reg, "f", func(ctx context.Context, x int) (int, error) { return x, nil })
	defer func() {
		if recover() == nil {
			t.Error("second registration of f did not panic")
		}
	}()
	workerproc.RegisterIn(reg, "f", func(ctx context.Context, x int) (int, error) { return x, nil })
}
