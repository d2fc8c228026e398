package workerproctest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Options tunes a run. The zero value checks a worker with the protocol's
// defaults and timeouts generous enough for a loaded machine.
type Options struct {
	// Env is added to each worker's environment after the variables the
	// pool sets (PPOOL_PROTOCOL, PPOOL_THREADS, ...), e.g. go-plugin's
	// handshake cookie, or PPOOL_WORKER=1 for a Go binary built on
	// workerproc.Main.
	Env []string
	// Only runs the named checks (see Checks), in the suite's order; empty
	// runs them all.
	Only []string
	// Log receives the workers' stdout and stderr; nil discards them (their
	// last lines still appear in failure reasons).
	Log io.Writer

	// StartTimeout bounds the wait for hello. Default 5 s.
	StartTimeout time.Duration
	// ReplyTimeout bounds the wait for the answer to a quick task, and for
	// the whole of the pipeline check. Default 5 s.
	ReplyTimeout time.Duration
	// CancelWithin is how soon a running task must be answered once it is
	// cancelled or past its timeout. Default 1 s.
	CancelWithin time.Duration
	// ExitWithin is how soon the worker must exit after shutdown, end of
	// input or a frame it must refuse. Default 2 s.
	ExitWithin time.Duration
	// TaskTimeout is the timeout ("to") the timeout check gives a task.
	// Default 200 ms.
	TaskTimeout time.Duration
	// Settle is how long a check lets a task get going before it cancels
	// it, and how long the worker must stay quiet after hello. Default
	// 100 ms.
	Settle time.Duration
	// MaxFrame is the PPOOL_MAX_FRAME the oversized-frame check sets.
	// Default 64 KiB.
	MaxFrame int
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StartTimeout, 5*time.Second)
	def(&o.ReplyTimeout, 5*time.Second)
	def(&o.CancelWithin, time.Second)
	def(&o.ExitWithin, 2*time.Second)
	def(&o.TaskTimeout, 200*time.Millisecond)
	def(&o.Settle, 100*time.Millisecond)
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	return o
}

// Result is the outcome of one check.
type Result struct {
	Name     string
	Passed   bool
	Reason   string // why it failed; empty if it passed
	Duration time.Duration
}

// Checks returns the names of the checks, in the order Run runs them.
func Checks() []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.name
	}
	return names
}

// Run checks the worker program argv (a binary and its arguments, e.g.
// "/usr/bin/python3", "worker.py") against the protocol. Each check starts
// a fresh worker process and kills its process group when done, so nothing
// outlives Run. If the hello check fails, the checks after it are reported
// as not run: they all need a hello. If ctx ends, the checks not yet run
// fail with its error.
func Run(ctx context.Context, argv []string, opts Options) []Result {
	opts = opts.withDefaults()
	var results []Result
	selected := checks
	if len(opts.Only) > 0 {
		selected = nil
		for _, name := range opts.Only {
			if !slices.ContainsFunc(checks, func(c check) bool { return c.name == name }) {
				results = append(results, Result{Name: name, Reason: "no such check; the checks are " + strings.Join(Checks(), ", ")})
			}
		}
		for _, c := range checks {
			if slices.Contains(opts.Only, c.name) {
				selected = append(selected, c)
			}
		}
	}
	helloFailed := false
	for _, c := range selected {
		r := Result{Name: c.name}
		switch {
		case len(argv) == 0:
			r.Reason = "no worker program given"
		case ctx.Err() != nil:
			r.Reason = "not run: " + context.Cause(ctx).Error()
		case helloFailed:
			r.Reason = "not run: the worker fails the hello check"
		default:
			start := time.Now()
			err := c.runIn(ctx, argv, &opts)
			r.Duration = time.Since(start)
			if err == nil {
				r.Passed = true
			} else {
				r.Reason = err.Error()
				helloFailed = c.name == "hello"
			}
		}
		results = append(results, r)
	}
	return results
}

// Report writes one line per check, "PASS name" or "FAIL name: reason",
// and reports whether every check passed (false for no checks at all).
func Report(w io.Writer, results []Result) (ok bool) {
	ok = len(results) > 0
	for _, r := range results {
		if r.Passed {
			fmt.Fprintf(w, "PASS %s\n", r.Name)
			continue
		}
		ok = false
		fmt.Fprintf(w, "FAIL %s: %s\n", r.Name, strings.ReplaceAll(r.Reason, "\n", " | "))
	}
	return ok
}
