package workerproctest_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/workerproctest"
)

// Checking a worker program from a test. Here the worker is this test
// binary, which TestMain turns into ppool's built-in Go worker when
// PPOOL_WORKER is set; for a Python worker argv would be
// {"/usr/bin/python3", "worker.py"}. From the command line, the same suite
// is `ppool worker check BINARY [ARGS...]`.
func Example() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return
	}
	results := workerproctest.Run(context.Background(), []string{exe}, workerproctest.Options{
		Env:  []string{workerproc.EnvWorker + "=1"},
		Only: []string{"hello", "task", "panic", "cancel-running"},
	})
	if ok := workerproctest.Report(os.Stdout, results); !ok {
		fmt.Println("the worker does not conform")
	}
	// Output:
	// PASS hello
	// PASS task
	// PASS panic
	// PASS cancel-running
}
