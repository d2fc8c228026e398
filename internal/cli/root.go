// Package cli is the ppool command line: one file per command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/ppool/ppool/jobs"
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
	// A fatal error of the Go runtime (out of memory, a broken invariant)
	// or an unrecovered panic would exit with status 2, which to a script
	// means "bad usage or jobs file". Crash with SIGABRT instead (status
	// 134 in a shell, with the runtime's report on stderr): whatever ppool
	// itself gets wrong cannot be mistaken for the user's mistake.
	debug.SetTraceback("crash")
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
	// --version prints versionText, which loads the BLAS and JPEG
	// libraries to name them: only when asked, through a template
	// function (registered once, in init), not at every start (they cost
	// a command 10-20 ms).
	root.Version = jobs.Version
	root.SetVersionTemplate("{{ppoolVersionText}}")
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(newHelpCmd())
	strictGroups(root)
	return root
}

// cobra keeps template functions in one map for the process: this one is
// added once, not by every NewRoot (which would write the map each call).
func init() { cobra.AddTemplateFunc("ppoolVersionText", versionText) }

// newHelpCmd is cobra's help command, but a topic it does not know exits
// 2 with a suggestion, as an unknown command does.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() || sub == c {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err == nil && len(rest) > 0 && cmd.HasSubCommands() {
				err = cmd.RunE(cmd, rest) // strictGroups' error, with its suggestion
			} else if err == nil && len(rest) > 0 {
				err = usageError("unknown help topic %q: %s has no subcommands", strings.Join(args, " "), cmd.CommandPath())
			}
			if err != nil {
				return err
			}
			return cmd.Help()
		},
	}
}

// strictGroups makes every command that only groups others (ppool,
// ppool worker, ppool completion) refuse a word it does not know, with a
// suggestion, and exit 2: cobra would print help and exit 0, and a
// script's typo would pass unnoticed. Alone, such a command prints help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.SuggestionsMinimumDistance = 2
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		hint := " (commands: " + strings.Join(names, ", ") + ")"
		for _, s := range cmd.SuggestionsFor(args[0]) {
			// Two edits turn tcsh into bash: a suggestion must at least
			// start as the word typed.
			if s[0] == args[0][0] {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
				break
			}
		}
		return usageError("unknown command %q for %q%s\nSee '%s --help'.", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
	}
}
