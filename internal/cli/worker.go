package cli

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/plugin"
	"github.com/ppool/ppool/workerproc/workerproctest"
)

func newWorkerCmd(io *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Tools for custom worker binaries",
	}
	var only []string
	var self, verbose bool
	check := &cobra.Command{
		Use:   "check BINARY [ARGS...]",
		Short: "Run a worker binary through the protocol conformance suite",
		Long: `Run a worker program through every check of the conformance suite
(docs/protocol.md): hello and version negotiation, tasks and batches,
unknown functions, bad arguments, panics, cancel, timeouts, pipelining,
reading fd 3 while a task runs, shutdown with tasks queued, end of input,
malformed and oversized frames and unknown message types. One line per
check; the exit status is 1 if any check fails.

Every step of a check has a deadline (5 s for an answer or for the worker
to take what it is sent, less for cancels and exits), so a worker that
hangs or stops reading fails the check, which says what it did not do.

go-plugin's handshake cookie is set, so Go workers built with
workerproc/plugin.Main are checked as the pool would launch them.`,
		Example: `  ppool worker check ./myworker
  ppool worker check /usr/bin/python3 examples/pyworker/worker.py
  ppool worker check --only hello,cancel-running ./myworker`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if self {
				// The binary ppool's own pools run: ppool-worker when it
				// is beside ppool and built from the same code, else ppool.
				exe, err := selfBinary()
				if err != nil {
					return err
				}
				if exe == "" {
					if exe, err = os.Executable(); err != nil {
						return err
					}
				}
				fmt.Fprintf(io.Out, "checking %s\n", exe)
				args = append([]string{exe}, args...)
			}
			if len(args) == 0 {
				return usageError("worker check needs a worker program to run\nSee 'ppool worker check --help'.")
			}
			if _, err := exec.LookPath(args[0]); err != nil {
				return usageError("worker check: %v", err)
			}
			// A worker built on workerproc/plugin is checked as the pool
			// launches it, its go-plugin sockets in a folder of their own.
			sockets, err := os.MkdirTemp("", "ppool-worker-check-")
			if err != nil {
				return fmt.Errorf("worker check: a folder for go-plugin's sockets: %w", err)
			}
			defer os.RemoveAll(sockets)
			opts := workerproctest.Options{Env: plugin.Env(sockets), Only: only}
			if self {
				opts.Env = append(opts.Env, workerproc.EnvWorker+"=1")
			}
			if verbose {
				opts.Log = io.Err
			}
			known := workerproctest.Checks()
			for _, o := range only {
				if !slices.Contains(known, o) {
					return usageError("--only: no check named %q (checks: %s)", o, strings.Join(known, ", "))
				}
			}
			results := workerproctest.Run(cmd.Context(), args, opts)
			if !workerproctest.Report(io.Out, results) {
				failed := 0
				for _, r := range results {
					if !r.Passed {
						failed++
					}
				}
				return &exitError{code: ExitTaskFailed, err: fmt.Errorf("%s: %d of %d checks failed", args[0], failed, len(results))}
			}
			return nil
		},
	}
	check.Flags().StringSliceVar(&only, "only", nil, "run only these `checks` (comma separated)")
	check.Flags().BoolVar(&self, "self", false, "check the worker binary ppool's own pools run (ppool-worker beside ppool, or ppool itself; see ppool version)")
	check.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the workers' own output on stderr")
	cmd.AddCommand(check)
	return cmd
}
