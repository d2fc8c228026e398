// Package cli is the ppool command line: one file per command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	// The built-in job kinds register themselves.
	_ "github.com/ppool/ppool/jobs/image"
	_ "github.com/ppool/ppool/jobs/matrix"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitTaskFailed  = 1   // some tasks failed
	ExitUsage       = 2   // bad flags or a bad jobs file
	ExitInterrupted = 130 // Ctrl-C, SIGTERM or SIGHUP
)

// exitError carries an exit code up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// IO is where commands read and write.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// Main runs the command line and returns the process's exit code.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	root := NewRoot(&IO{In: in, Out: out, Err: errw})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(errw, "ppool:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command or flag, wrong arguments.
	fmt.Fprintln(errw, "ppool:", err)
	return ExitUsage
}

// NewRoot builds the command tree.
func NewRoot(io *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "ppool",
		Short: "Run CPU-bound jobs on every core, in worker processes that cannot take the run down",
		Long: `ppool runs files of CPU-bound jobs (matrix and image work built in, or your
own worker binaries) on one worker process per core. A crashed, hung or
bloated worker fails only its own task; nothing is left running after ppool
exits; an interrupted run resumes where it stopped.`,
		Example: `  ppool run examples/jobs.yaml
  ppool kinds
  ppool worker check ./myworker`,
		SilenceUsage:  true, // a runtime error is not a usage mistake
		SilenceErrors: true, // Main prints errors once, its own way
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%v\nSee '%s --help'.", err, c.CommandPath())
	})
	root.AddCommand(newRunCmd(io, nil), newKindsCmd(io), newWorkerCmd(io), newBenchCmd(io), newVersionCmd(io))
	root.AddCommand(newServerCmd(io))
	root.AddCommand(newAgentCmd(io))
	root.AddCommand(newAgentsCmd(io))
	return root
}
