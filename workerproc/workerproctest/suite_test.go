package workerproctest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/workerproctest"
	"go.uber.org/goleak"
)

// The test binary is also every worker under test: the built-in Go worker
// when PPOOL_WORKER is set, a broken one when envFake is.
func TestMain(m *testing.M) {
	if mode := os.Getenv(envFake); mode == "nil-optional-keys" {
		os.Exit(nilWorker())
	} else if mode != "" {
		os.Exit(fakeWorker(mode))
	}
	workerproc.Main()
	os.Exit(m.Run())
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// goEnv is the environment of Go workers started from this test binary:
// a binary built with -race otherwise sleeps a second before it exits.
var goEnv = []string{"GORACE=atexit_sleep_ms=0"}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// runAll runs every check and fails the test for each check that fails.
func runAll(t *testing.T, argv []string, opts workerproctest.Options) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	results := workerproctest.Run(testCtx(t), argv, opts)
	var report bytes.Buffer
	ok := workerproctest.Report(&report, results)
	for _, r := range results {
		t.Logf("%-22s %-4v %v", r.Name, r.Passed, r.Duration.Round(time.Millisecond))
	}
	if !ok {
		t.Errorf("the worker fails the suite:\n%s", report.String())
	}
	if len(results) != len(workerproctest.Checks()) {
		t.Errorf("%d results for %d checks", len(results), len(workerproctest.Checks()))
	}
}

func TestGoWorker(t *testing.T) {
	runAll(t, []string{self(t)}, workerproctest.Options{Env: append(goEnv, workerproc.EnvWorker+"=1")})
}

func TestPythonWorker(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("the Python worker runs on the system python, and %s is missing: %v", python, err)
	}
	worker, err := filepath.Abs("../../examples/pyworker/worker.py")
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, []string{python, worker}, workerproctest.Options{})
}

func TestFakeWorkerConforms(t *testing.T) {
	// The fake in its good mode passes, so that each broken mode's
	// failure is down to the one rule it breaks.
	runAll(t, []string{self(t)}, workerproctest.Options{Env: append(goEnv, envFake+"=good")})
}

// TestBrokenWorkers runs workers that each break one rule, and checks that
// the right check fails, for the right reason, while a neighbouring check
// passes.
func TestBrokenWorkers(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	tests := []struct {
		mode    string
		fails   string // the check that must fail
		because string // a phrase its reason must contain
		passes  string // a check that must still pass, if any
		tweak   func(*workerproctest.Options)
	}{
		{mode: "no-hello", fails: "hello", because: "no hello within 300ms",
			tweak: func(o *workerproctest.Options) { o.StartTimeout = 300 * time.Millisecond }},
		{mode: "garbage", fails: "hello", because: "malformed frame"},
		{mode: "double-hello", fails: "hello", because: "second frame (hello)"},
		{mode: "version-liar", fails: "version-unknown", because: "claims protocol 65535", passes: "task"},
		{mode: "wrong-id", fails: "task", because: "answered task 1001", passes: "hello"},
		{mode: "crash-unknown-function", fails: "unknown-function", because: "exited with status 3", passes: "task"},
		{mode: "bad-args-as-error", fails: "bad-arguments", because: `want type "bad_arguments"`, passes: "error"},
		{mode: "no-traceback", fails: "panic", because: "no traceback", passes: "error"},
		{mode: "ignore-cancel", fails: "cancel-running", because: "no answer to task 1 within 1s", passes: "timeout"},
		{mode: "ignore-timeout", fails: "timeout", because: "no answer to task 2 within 1.2s", passes: "cancel-running"},
		{mode: "lossy-pipeline", fails: "pipeline", because: "answer 501: it answered task 502 before task 501", passes: "task"},
		{mode: "exit1-on-shutdown", fails: "shutdown", because: "exited with status 1", passes: "eof"},
		// ExitWithin bounds the failing check's wait, and must still give
		// the passing one room to exit on a loaded machine.
		{mode: "ignore-eof", fails: "eof", because: "still running 5s later", passes: "shutdown",
			tweak: func(o *workerproctest.Options) { o.ExitWithin = 5 * time.Second }},
		{mode: "skip-malformed", fails: "malformed-frame", because: "still running 1s later", passes: "task",
			tweak: func(o *workerproctest.Options) { o.ExitWithin = time.Second }},
		{mode: "stray-progress", fails: "task", because: "progress for task 8, which is not running (running: task 1)", passes: "hello"},
		{mode: "accept-oversized", fails: "oversized-frame", because: "answered a task frame of 65537 bytes", passes: "huge-frame-header"},
		{mode: "serve-any-version", fails: "version-unknown", because: "said hello and is still running 1s later", passes: "task",
			tweak: func(o *workerproctest.Options) { o.ExitWithin = time.Second }},
		{mode: "drop-queued-on-shutdown", fails: "shutdown-queued", because: "task 2, queued when shutdown arrived", passes: "shutdown"},
		{mode: "ignore-unknown-type", fails: "unknown-message-type", because: "still running 1s later", passes: "malformed-frame",
			tweak: func(o *workerproctest.Options) { o.ExitWithin = time.Second }},
		{mode: "read-between-tasks", fails: "read-while-running", because: "it did not read its fd 3: of 2", passes: "task",
			tweak: func(o *workerproctest.Options) { o.ReplyTimeout = time.Second }},
		// It stops reading fd 3 after its hello: the suite's first task,
		// 70 kB, does not fit in the pipe. The check ends at ReplyTimeout.
		{mode: "stop-reading", fails: "task", because: "it did not read its fd 3: of 7", passes: "hello",
			tweak: func(o *workerproctest.Options) { o.ReplyTimeout = time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			opts := workerproctest.Options{Env: append(goEnv, envFake+"="+tt.mode), Only: []string{tt.fails}}
			if tt.passes != "" {
				opts.Only = append(opts.Only, tt.passes)
			}
			if tt.tweak != nil {
				tt.tweak(&opts)
			}
			results := workerproctest.Run(testCtx(t), []string{self(t)}, opts)
			var report bytes.Buffer
			workerproctest.Report(&report, results)
			t.Logf("%s", report.String())
			i := slices.IndexFunc(results, func(r workerproctest.Result) bool { return r.Name == tt.fails })
			switch {
			case i < 0:
				t.Fatalf("no result for %s", tt.fails)
			case results[i].Passed:
				t.Errorf("%s passed; want it to fail because %s", tt.fails, tt.because)
			case !strings.Contains(results[i].Reason, tt.because):
				t.Errorf("%s failed for another reason:\n%s\nwant a reason containing %q", tt.fails, results[i].Reason, tt.because)
			}
			// Every check has deadlines: a broken worker costs seconds,
			// never a hang (a generous bound, for a loaded machine).
			if d := results[i].Duration; d > 30*time.Second {
				t.Errorf("%s took %v to fail", tt.fails, d)
			}
			if tt.passes != "" {
				j := slices.IndexFunc(results, func(r workerproctest.Result) bool { return r.Name == tt.passes })
				if j < 0 || !results[j].Passed {
					t.Errorf("%s should pass for this worker:\n%s", tt.passes, report.String())
				}
			}
		})
	}
}

func TestUnknownCheckAndEmptyCommand(t *testing.T) {
	results := workerproctest.Run(testCtx(t), nil, workerproctest.Options{Only: []string{"hello", "no-such-check"}})
	var report bytes.Buffer
	if workerproctest.Report(&report, results) {
		t.Errorf("Report said ok for:\n%s", report.String())
	}
	want := "FAIL no-such-check: no such check; the checks are hello, "
	if !strings.Contains(report.String(), want) || !strings.Contains(report.String(), "FAIL hello: no worker program given") {
		t.Errorf("report:\n%s\nwant lines for the unknown check and the missing program", report.String())
	}
	if workerproctest.Report(&report, nil) {
		t.Error("Report of no results said ok")
	}
}

func TestStartFailure(t *testing.T) {
	results := workerproctest.Run(testCtx(t), []string{"/nonexistent/worker"}, workerproctest.Options{})
	if len(results) != len(workerproctest.Checks()) || results[0].Passed || !strings.Contains(results[0].Reason, "cannot start /nonexistent/worker") {
		t.Fatalf("first result: %+v", results[0])
	}
	if !strings.Contains(results[1].Reason, "not run: the worker fails the hello check") {
		t.Errorf("second result: %+v", results[1])
	}
}
