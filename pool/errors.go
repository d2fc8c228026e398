package pool

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"time"
)

// Conditions, matched with errors.Is.
var (
	// ErrPoolClosed: the pool was closed or terminated before the task ran.
	ErrPoolClosed = errors.New("ppool: pool is closed")
	// ErrCrashLoop: Config.CrashLoopLimit workers in a row failed to start
	// (could not be executed, or died or were killed before their hello or
	// during the initializer), so the pool fails every call until, after a
	// backoff, a probe worker starts and it runs again. The error that wraps
	// it says how the last one failed.
	ErrCrashLoop = errors.New("ppool: workers keep failing to start (crash loop)")
	// ErrUnknownFunction: the workers do not serve the function called.
	ErrUnknownFunction = errors.New("ppool: unknown function")
	// ErrBadArguments: the worker could not decode the task's arguments,
	// or they nest arrays and maps deeper than a task frame carries (99
	// levels), which the pool refuses before sending anything.
	ErrBadArguments = errors.New("ppool: arguments do not decode")
	// ErrOptionNotApplicable: an Option was given to a call it does not
	// apply to (Callback to Map, Window to Apply, ...). The call does
	// nothing; the error that wraps it names the option and the call.
	ErrOptionNotApplicable = errors.New("ppool: option does not apply to this call")
)

// TaskRef names the task a failure happened to. Every failure type of a
// task embeds it, so err.Task, err.Function and err.PID read the same on
// each, and a failure is moved onto another task in one way (see attach).
type TaskRef struct {
	Task     uint64 // 0: no single task (a Map or Imap call as a whole, a worker killed between tasks)
	Function string
	PID      int // the worker that ran it; 0 if none did
}

// taskRef gives the pool the reference inside any failure type that
// embeds TaskRef.
func (r *TaskRef) taskRef() *TaskRef { return r }

// taskFailure is a failure type that embeds TaskRef.
type taskFailure interface {
	error
	taskRef() *TaskRef
}

// attach returns a copy of err whose task is ref, leaving err as it was:
// one failure (a pack's crash, say) becomes each of its tasks' own.
func attach(err taskFailure, ref TaskRef) error {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return err
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	e := c.Interface().(taskFailure)
	*e.taskRef() = ref
	return e
}

// WorkerExitError reports that the worker running a task exited.
type WorkerExitError struct {
	TaskRef
	ExitCode int            // -1 if killed by a signal
	Signal   syscall.Signal // 0 unless killed by a signal
	Stderr   string         // the first 1 KiB and last 4 KiB the worker wrote to stderr or stdout
	Reason   string         // what the master saw, e.g. "pipe closed", "malformed frame: ..."
}

func (e *WorkerExitError) Error() string {
	var b strings.Builder
	if e.Task != 0 {
		fmt.Fprintf(&b, "task %d (%s): ", e.Task, e.Function)
	}
	fmt.Fprintf(&b, "worker %d ", e.PID)
	switch {
	case e.Signal != 0:
		fmt.Fprintf(&b, "was killed by signal %d (%s)", int(e.Signal), e.Signal)
	default:
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	if out := strings.TrimSpace(e.Stderr); out != "" {
		// The first KiB and the last 4 KiB (see launch.Tail).
		fmt.Fprintf(&b, "; its output:\n%s", out)
	}
	return b.String()
}

// TimeoutError reports a task that ran past its timeout. It matches
// context.DeadlineExceeded with errors.Is.
type TimeoutError struct {
	TaskRef
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("task %d (%s) on worker %d: timed out after %v", e.Task, e.Function, e.PID, e.Timeout)
}

func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// MemoryLimitError reports a worker killed for using more memory than the
// pool's MaxWorkerMemory while running a task.
type MemoryLimitError struct {
	TaskRef
	Limit uint64 // bytes
	Seen  uint64 // bytes of anonymous memory (RSS less shared pages) when killed
}

func (e *MemoryLimitError) Error() string {
	return fmt.Sprintf("task %d (%s): worker %d was killed for using %s of memory, over the limit of %s",
		e.Task, e.Function, e.PID, formatBytes(e.Seen), formatBytes(e.Limit))
}

// CancelledError reports a task cancelled by AsyncResult.Cancel or by its
// context. It matches context.Canceled with errors.Is (and the context's own
// cause, if that was different).
type CancelledError struct {
	TaskRef // Task 0: a Map or Imap call, cancelled as a whole
	Cause   error
}

func (e *CancelledError) Error() string {
	what := fmt.Sprintf("task %d (%s)", e.Task, e.Function)
	if e.Task == 0 {
		what = "a call of " + e.Function
	}
	if e.Cause != nil && e.Cause != context.Canceled {
		return fmt.Sprintf("%s cancelled: %v", what, e.Cause)
	}
	return what + " cancelled"
}

func (e *CancelledError) Is(target error) bool { return target == context.Canceled }
func (e *CancelledError) Unwrap() error        { return e.Cause }

// RemoteError is a failure reported by the worker: an error the function
// returned, a panic, an unknown function, arguments that did not decode.
type RemoteError struct {
	TaskRef
	Type      string // "error", "panic", "unknown_function", "bad_arguments", or a language's class name
	Message   string
	Traceback string // the worker-side stack, for panics and exceptions
}

func (e *RemoteError) Error() string {
	msg := e.Message
	if e.Type != "" && e.Type != "error" && !strings.Contains(msg, e.Type) {
		msg = e.Type + ": " + msg
	}
	return fmt.Sprintf("task %d (%s) on worker %d: %s", e.Task, e.Function, e.PID, msg)
}

// Is lets errors.Is match ErrUnknownFunction and ErrBadArguments.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrUnknownFunction:
		return e.Type == "unknown_function"
	case ErrBadArguments:
		return e.Type == "bad_arguments"
	}
	return false
}

// StartError reports a worker that could not be started or failed before it
// was ready: it exited, sent something other than a hello, spoke no common
// protocol version, its initializer failed, or it did not say hello in time.
type StartError struct {
	Command string
	PID     int
	Reason  string
	Err     error // the underlying cause, if any
}

func (e *StartError) Error() string {
	s := fmt.Sprintf("starting worker %s", e.Command)
	if e.PID != 0 {
		s += fmt.Sprintf(" (pid %d)", e.PID)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StartError) Unwrap() error { return e.Err }

// ItemError is one failed item of a Map.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// MapError reports the items of a Map that failed; the others succeeded and
// their results are in the slice Map returned.
type MapError struct {
	Total  int
	Failed []*ItemError // in item order
}

func (e *MapError) Error() string {
	first := e.Failed[0]
	if len(e.Failed) == 1 {
		return fmt.Sprintf("1 of %d items failed: %v", e.Total, first)
	}
	return fmt.Sprintf("%d of %d items failed; first: %v", len(e.Failed), e.Total, first)
}

// Unwrap exposes every item's error to errors.Is and errors.As.
func (e *MapError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
