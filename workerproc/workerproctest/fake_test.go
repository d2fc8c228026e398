package workerproctest_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/ipc/codec"
	"github.com/ppool/ppool/workerproc"
)

// envFake selects a mode of fakeWorker: the test binary, started with it,
// becomes a small hand-written worker that gets one thing wrong.
const envFake = "WORKERPROCTEST_FAKE"

// fakeWorker speaks the protocol correctly in mode "good", and in every
// other mode breaks one rule. It returns the exit status.
func fakeWorker(mode string) int {
	in, out := os.NewFile(ipc.FromMasterFD, "in"), os.NewFile(ipc.ToMasterFD, "out")
	maxFrame := ipc.DefaultMaxFrame
	if n, err := strconv.Atoi(os.Getenv(ipc.EnvMaxFrame)); err == nil && n > 0 {
		maxFrame = n
	}
	if mode == "accept-oversized" {
		maxFrame = 1 << 30
	}
	var wmu sync.Mutex
	send := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		if _, err := out.Write(b); err != nil {
			os.Exit(1)
		}
	}

	versions := ipc.Versions
	master, err := ipc.ParseVersions(os.Getenv(ipc.EnvProtocol))
	if mode == "version-liar" && err == nil {
		versions = master // claims whatever the master speaks
	}
	hello := ipc.AppendHello(nil, versions, os.Getpid(),
		[]string{workerproc.BuiltinEcho, workerproc.BuiltinFail, workerproc.BuiltinPanic, workerproc.BuiltinSleep}, "fake")
	switch mode {
	case "no-hello":
		time.Sleep(time.Hour)
	case "garbage":
		send([]byte("\x00\x00\x00\x05hello"))
		time.Sleep(time.Hour)
	case "double-hello":
		send(append(hello, hello...))
	default:
		send(hello)
	}
	if _, err := ipc.Negotiate(master, versions); err != nil && mode != "serve-any-version" {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// The reader never blocks on the runner, so that a cancel reaches a
	// running task: tasks go into an unbounded queue.
	var (
		mu        sync.Mutex
		cond      = sync.NewCond(&mu)
		queue     []ipc.Msg
		end       string // "shutdown" or "eof"
		runningID uint64
		stop      context.CancelFunc
		cancelled = map[uint64]bool{}
	)
	go func() {
		if mode == "stop-reading" {
			time.Sleep(time.Hour) // fd 3 fills up
		}
		r := ipc.NewReader(in, 64<<10, maxFrame)
		for {
			if mode == "read-between-tasks" {
				// Reads the next frame only when it has nothing to do.
				mu.Lock()
				for runningID != 0 || len(queue) > 0 {
					cond.Wait()
				}
				mu.Unlock()
			}
			m, err := r.ReadMsg()
			if err == io.EOF && mode == "ignore-eof" {
				time.Sleep(time.Hour)
			}
			if err != nil && err != io.EOF {
				if mode == "skip-malformed" || mode == "ignore-unknown-type" && strings.Contains(err.Error(), "unknown message type") {
					fmt.Fprintln(os.Stderr, "fake worker: ignoring", err)
					continue
				}
				fmt.Fprintln(os.Stderr, "fake worker:", err)
				os.Exit(1)
			}
			mu.Lock()
			switch {
			case err == io.EOF:
				end = "eof"
			case m.Kind == ipc.KindTask:
				queue = append(queue, m)
			case m.Kind == ipc.KindCancel && mode != "ignore-cancel":
				if m.ID == runningID {
					stop()
				} else {
					cancelled[m.ID] = true
				}
			case m.Kind == ipc.KindShutdown:
				end = "shutdown"
			}
			cond.Broadcast()
			mu.Unlock()
			if end != "" {
				return
			}
		}
	}()

	for n := 0; ; n++ {
		mu.Lock()
		for len(queue) == 0 && end == "" {
			cond.Wait()
		}
		if len(queue) == 0 || end == "shutdown" {
			mu.Unlock()
			if end == "shutdown" && mode == "exit1-on-shutdown" {
				return 1
			}
			if end == "shutdown" && mode != "drop-queued-on-shutdown" {
				for _, m := range queue {
					send(ipc.AppendResult(nil, m.ID, nil, &ipc.Error{Type: ipc.ErrTypeCancelled, Message: "worker shutting down"}, 0, m.Batch))
				}
			}
			return 0
		}
		m := queue[0]
		queue = queue[1:]
		ctx, cancel := context.WithCancel(context.Background())
		if m.Timeout > 0 && mode != "ignore-timeout" {
			ctx, cancel = context.WithTimeout(context.Background(), m.Timeout)
		}
		runningID, stop = m.ID, cancel
		skip := cancelled[m.ID]
		mu.Unlock()

		// Progress is optional; the fake reports some, for the running task
		// (or, in one mode, for another).
		progressID := m.ID
		if mode == "stray-progress" {
			progressID += 7
		}
		if mode != "lossy-pipeline" { // its lost result would make the next progress stray
			send(ipc.AppendProgress(nil, progressID, 0, 1))
		}

		var value []byte
		var e *ipc.Error
		switch {
		case skip:
			e = &ipc.Error{Type: ipc.ErrTypeCancelled, Message: "cancelled before it started"}
		case m.Batch:
			items, _ := ipc.SplitArray(m.Args)
			value = ipc.AppendArrayHeader(nil, len(items))
			for _, it := range items {
				v, ie := fakeCall(ctx, mode, m.Function, it)
				value = ipc.AppendItem(value, v, ie)
			}
		default:
			value, e = fakeCall(ctx, mode, m.Function, m.Args)
		}
		cancel()
		mu.Lock()
		runningID, stop = 0, nil
		cond.Broadcast()
		mu.Unlock()

		id := m.ID
		if mode == "wrong-id" {
			id += 1000
		}
		if mode == "lossy-pipeline" && n == 500 {
			continue // a result lost in a burst
		}
		send(ipc.AppendResult(nil, id, value, e, 0, m.Batch))
	}
}

func fakeCall(ctx context.Context, mode, fn string, args []byte) ([]byte, *ipc.Error) {
	bad := func(err error) *ipc.Error {
		if mode == "bad-args-as-error" {
			return &ipc.Error{Type: ipc.ErrTypeError, Message: err.Error()}
		}
		return &ipc.Error{Type: ipc.ErrTypeBadArguments, Message: err.Error()}
	}
	switch fn {
	case workerproc.BuiltinEcho:
		return args, nil
	case workerproc.BuiltinSleep:
		var s float64
		if err := codec.Decode(args, &s); err != nil {
			return nil, bad(err)
		}
		select {
		case <-time.After(time.Duration(s * float64(time.Second))):
			return []byte{0xc0}, nil
		case <-ctx.Done():
			return nil, &ipc.Error{Type: ipc.ErrTypeCancelled, Message: ctx.Err().Error()}
		}
	case workerproc.BuiltinFail, workerproc.BuiltinPanic:
		var msg string
		if err := codec.Decode(args, &msg); err != nil {
			return nil, bad(err)
		}
		if fn == workerproc.BuiltinFail {
			return nil, &ipc.Error{Type: ipc.ErrTypeError, Message: msg}
		}
		e := &ipc.Error{Type: ipc.ErrTypePanic, Message: "panic: " + msg, Traceback: "goroutine 1 [running]:\nmain.fake()"}
		if mode == "no-traceback" {
			e.Traceback = ""
		}
		return nil, e
	}
	if mode == "crash-unknown-function" {
		fmt.Fprintf(os.Stderr, "fake worker: no function %q, giving up\n", fn)
		os.Exit(3)
	}
	return nil, &ipc.Error{Type: ipc.ErrTypeUnknownFunction, Message: fmt.Sprintf("no function %q", fn)}
}
