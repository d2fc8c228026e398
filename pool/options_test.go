package pool_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
)

// Every option given to a call it does not apply to fails the call, naming
// the option and the call, instead of being ignored; options that apply
// still work.
func TestOptionNotApplicable(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	apply := func(o pool.Option) error {
		_, err := pool.Apply(ctx, p, square, 3, o)
		return err
	}
	applyAsync := func(o pool.Option) error {
		_, err := pool.ApplyAsync(ctx, p, square, 3, o).Get(ctx)
		return err
	}
	mapCall := func(o pool.Option) error {
		_, err := pool.Map(ctx, p, square, []int{1, 2}, o)
		return err
	}
	imapOf := func(ordered bool) func(o pool.Option) error {
		return func(o pool.Option) error {
			f := pool.Imap[int, int]
			if !ordered {
				f = pool.ImapUnordered[int, int]
			}
			var errs []error
			for _, err := range f(ctx, p, square, slices.Values([]int{1, 2}), o) {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
	}
	calls := map[string]func(pool.Option) error{
		"Apply": apply, "ApplyAsync": applyAsync, "Map": mapCall,
		"Imap": imapOf(true), "ImapUnordered": imapOf(false),
	}
	options := map[string]pool.Option{
		"Timeout":       pool.Timeout(time.Minute),
		"Retries":       pool.Retries(1),
		"MemoryLimit":   pool.MemoryLimit(1 << 40),
		"RetryErrors":   pool.RetryErrors(),
		"Callback":      pool.Callback(func(int) {}),
		"ErrorCallback": pool.ErrorCallback(func(error) {}),
		"DoneCallback":  pool.DoneCallback(func(int, error, pool.TaskInfo) {}),
		"ChunkSize":     pool.ChunkSize(1),
		"Window":        pool.Window(2),
	}
	takes := map[string][]string{
		"Apply":         {"Timeout", "Retries", "MemoryLimit", "RetryErrors"},
		"ApplyAsync":    {"Timeout", "Retries", "MemoryLimit", "RetryErrors", "Callback", "ErrorCallback", "DoneCallback"},
		"Map":           {"Timeout", "Retries", "MemoryLimit", "ChunkSize"},
		"Imap":          {"Timeout", "Retries", "MemoryLimit", "ChunkSize", "Window"},
		"ImapUnordered": {"Timeout", "Retries", "MemoryLimit", "ChunkSize", "Window"},
	}
	for call, run := range calls {
		for name, o := range options {
			err := run(o)
			if slices.Contains(takes[call], name) {
				if err != nil {
					t.Errorf("%s with %s: %v", call, name, err)
				}
				continue
			}
			if !errors.Is(err, pool.ErrOptionNotApplicable) {
				t.Errorf("%s with %s: err = %v, want ErrOptionNotApplicable", call, name, err)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, name+" given to "+call+" ") {
				t.Errorf("%s with %s: the error does not name both: %v", call, name, err)
			}
		}
	}
	if s := p.Stats(); s.Queued != 0 {
		t.Errorf("refused calls left %d tasks queued", s.Queued)
	}
}

// A refused option fails ApplyAsync the way a failure to queue does:
// through the result and the error callbacks, with nothing sent.
func TestOptionNotApplicableApplyAsync(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	got := make(chan error, 1)
	r := pool.ApplyAsync(ctx, p, square, 3, pool.ChunkSize(2), pool.ErrorCallback(func(err error) { got <- err }))
	if _, err := r.Get(ctx); !errors.Is(err, pool.ErrOptionNotApplicable) {
		t.Fatalf("Get: %v", err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, pool.ErrOptionNotApplicable) {
			t.Errorf("ErrorCallback got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no error callback")
	}
	if d := p.Stats().Done; d != 0 {
		t.Errorf("a refused call ran: Stats.Done = %d", d)
	}
}

// DoneCallback sees the outcome and the TaskInfo of its own task, final
// when it runs, without the caller passing the AsyncResult to it.
func TestDoneCallbackInfo(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 1})
	type done struct {
		v    int
		err  error
		info pool.TaskInfo
	}
	got := make(chan done, 2)
	cb := pool.DoneCallback(func(v int, err error, info pool.TaskInfo) { got <- done{v, err, info} })
	ok := pool.ApplyAsync(ctx, p, square, 7, cb)
	bad := pool.ApplyAsync(ctx, p, fail, "no luck", cb)
	byID := map[uint64]done{}
	for range 2 {
		select {
		case d := <-got:
			byID[d.info.ID] = d
		case <-ctx.Done():
			t.Fatal("DoneCallback did not run twice")
		}
	}
	d, found := byID[ok.Info().ID]
	if !found || d.v != 49 || d.err != nil {
		t.Errorf("success: %+v (found %v)", d, found)
	}
	if d.info.PID == 0 || d.info.Attempts != 1 || !slices.Equal(d.info.RetriedAfter, ok.Info().RetriedAfter) || d.info.Duration != ok.Info().Duration {
		t.Errorf("success: TaskInfo %+v, AsyncResult.Info %+v", d.info, ok.Info())
	}
	d, found = byID[bad.Info().ID]
	var re *pool.RemoteError
	if !found || !errors.As(d.err, &re) || d.v != 0 {
		t.Errorf("failure: %+v (found %v)", d, found)
	}
	if d.info.PID == 0 || d.info.Attempts != 1 {
		t.Errorf("failure: TaskInfo %+v", d.info)
	}
	// The type is checked at the call, as Callback's is.
	defer func() {
		if recover() == nil {
			t.Error("a DoneCallback of the wrong result type did not panic")
		}
	}()
	pool.ApplyAsync(ctx, p, square, 1, pool.DoneCallback(func(string, error, pool.TaskInfo) {}))
}

// Every failure of a task carries the same embedded TaskRef, so that the
// task's id, function and worker read the same on each, and errors.As
// finds each type as before.
func TestFailuresShareTaskRef(t *testing.T) {
	ref := pool.TaskRef{Task: 7, Function: "f", PID: 99}
	errs := []error{
		&pool.WorkerExitError{TaskRef: ref, ExitCode: 2},
		&pool.TimeoutError{TaskRef: ref, Timeout: time.Second},
		&pool.MemoryLimitError{TaskRef: ref, Limit: 1, Seen: 2},
		&pool.CancelledError{TaskRef: ref, Cause: context.Canceled},
		&pool.RemoteError{TaskRef: ref, Type: "error", Message: "m"},
	}
	for _, err := range errs {
		wrapped := errors.Join(errors.New("context"), err)
		var got pool.TaskRef
		var (
			we *pool.WorkerExitError
			te *pool.TimeoutError
			me *pool.MemoryLimitError
			ce *pool.CancelledError
			re *pool.RemoteError
		)
		switch {
		case errors.As(wrapped, &we):
			got = we.TaskRef
		case errors.As(wrapped, &te):
			got = pool.TaskRef{Task: te.Task, Function: te.Function, PID: te.PID}
		case errors.As(wrapped, &me):
			got = me.TaskRef
		case errors.As(wrapped, &ce):
			got = ce.TaskRef
		case errors.As(wrapped, &re):
			got = re.TaskRef
		default:
			t.Fatalf("errors.As found no failure type in %v", wrapped)
		}
		if got != ref {
			t.Errorf("%T: TaskRef %+v, want %+v", err, got, ref)
		}
		if !strings.Contains(err.Error(), "7") || !strings.Contains(err.Error(), "(f)") {
			t.Errorf("%T: message %q does not name the task", err, err)
		}
	}
}
