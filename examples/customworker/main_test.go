package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/workerproc/plugin"
	"github.com/ppool/ppool/workerproc/workerproctest"
)

// The test binary doubles as the worker: with the marker set it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("CUSTOMWORKER_TEST_SERVE") != "" {
		main()
	}
	os.Exit(m.Run())
}

// TestConformance runs this worker through the whole conformance suite,
// launched as the pool launches it: with go-plugin's handshake cookie.
func TestConformance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// go-plugin's sockets go in the test's folder, removed with it.
	env := append(plugin.Env(t.TempDir()), "CUSTOMWORKER_TEST_SERVE=1", "GORACE=atexit_sleep_ms=0")
	results := workerproctest.Run(ctx, []string{os.Args[0]}, workerproctest.Options{Env: env})
	var report strings.Builder
	if !workerproctest.Report(&report, results) {
		t.Errorf("the custom worker fails the conformance suite:\n%s", report.String())
	}
}
