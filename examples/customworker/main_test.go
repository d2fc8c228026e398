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
	// go-plugin's server makes its socket in plugin.EnvSocketDir, or else
	// in the system's temporary folder, where a worker the suite kills
	// leaves it behind. The pool's launcher gives each worker a folder and
	// removes it; here the test's own folder does that.
	env := []string{"CUSTOMWORKER_TEST_SERVE=1", plugin.Handshake.MagicCookieKey + "=" + plugin.Handshake.MagicCookieValue, "GORACE=atexit_sleep_ms=0",
		plugin.EnvSocketDir + "=" + t.TempDir()}
	results := workerproctest.Run(ctx, []string{os.Args[0]}, workerproctest.Options{Env: env})
	var report strings.Builder
	if !workerproctest.Report(&report, results) {
		t.Errorf("the custom worker fails the conformance suite:\n%s", report.String())
	}
}
