package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

type runOptions struct {
	file      string
	workers   int
	results   string
	journal   string
	noJournal bool
	resume    bool
	progress  string
	failFast  bool
	dryRun    bool
	logFormat string
	only      []string // --job: run these jobs and those they run after
	// --nats: run the tasks on the agents of a NATS server
	dist       bool
	conn       dist.ConnOptions
	ackWait    time.Duration
	maxDeliver int
	sharedRoot string
}

func newRunCmd(io *IO, runF func(*runOptions) error) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run JOBS.yaml",
		Short: "Run a file of jobs on every core",
		Long: `Run the jobs in a jobs file. Every problem in the file is reported, as
FILE:LINE:COL with the line shown, before any work starts.

Progress goes to stderr; results (one JSON line per task) to --results.
A journal beside the jobs file records finished tasks, so that --resume
after an interrupted or killed run redoes exactly the unfinished tasks and
those whose inputs or parameters changed.

The first Ctrl-C (or SIGTERM, SIGHUP) stops handing out tasks and lets
running ones finish; a second kills the workers. Exit status: 0 all tasks
succeeded, 1 some failed, 2 bad usage or jobs file, 130 interrupted.

With --nats, the tasks run on the agents of a NATS server (ppool agent)
instead of local workers, with the same scheduling, progress, results,
journal and --resume; the first Ctrl-C withdraws the tasks no agent has
taken yet, the second cancels those the agents run.`,
		Example: `  ppool run examples/jobs.yaml
  ppool run --workers 4 --results results.jsonl jobs.yaml
  ppool run --resume jobs.yaml            # after an interrupted run
  ppool run --dry-run jobs.yaml           # list the tasks, run nothing
  ppool run --job stats jobs.yaml         # one job, and the jobs it runs after
  ppool run --results - --progress none jobs.yaml | jq .status
  ppool run --nats nats://10.0.0.5:4222 jobs.yaml  # on the agents of a NATS server`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("run takes one jobs file, got %d arguments\nSee 'ppool run --help'.", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			o.dist = cmd.Flags().Changed("nats")
			if runF != nil {
				return runF(o)
			}
			return runJobs(cmd.Context(), io, o)
		},
	}
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	f := cmd.Flags()
	f.IntVarP(&o.workers, "workers", "j", 0, "worker processes (default: one per usable core); -j as in GNU parallel")
	// -w, the shorthand before -j, still works.
	f.IntVarP(&o.workers, "w", "w", 0, "same as --workers")
	f.Lookup("w").Hidden = true
	f.StringArrayVar(&o.only, "job", nil, "run only this `JOB` and the jobs it runs after (repeatable)")
	f.StringVar(&o.results, "results", "", "write one JSON line per task to `FILE` (- for stdout)")
	f.StringVar(&o.journal, "journal", "", "journal `FILE` (default .ppool/NAME.journal.jsonl beside the jobs file)")
	f.BoolVar(&o.noJournal, "no-journal", false, "keep no journal (such a run cannot be resumed)")
	f.BoolVar(&o.resume, "resume", false, "skip tasks the journal shows done, with unchanged inputs, params and output")
	f.StringVar(&o.progress, "progress", "auto", "progress on stderr, `MODE`: auto (bars on a terminal, else plain), plain or none")
	f.BoolVar(&o.failFast, "fail-fast", false, "stop handing out tasks after the first failure")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the expanded task list and exit")
	addConnFlags(cmd, &o.conn)
	f.Lookup("nats").Usage = "run the tasks on the agents of the NATS server at `URL`s, comma separated (--nats '' takes $NATS_URL); a user and password or a token go in the URL"
	f.StringVar(&o.sharedRoot, "shared-root", "", "with --nats: a `folder` every agent mounts too (ppool agent --shared-root): its files are read in place by agents that prove they see it, not sent through the server")
	f.DurationVar(&o.ackWait, "ack-wait", 30*time.Second, "with --nats: how long an agent may go silent with a task before it goes to another")
	f.IntVar(&o.maxDeliver, "max-deliver", 5, "with --nats: deliveries of one task (agents lost with it) before it fails; apart from the job's retries")
	f.StringVar(&o.logFormat, "log-format", "text", "log `FORMAT` on stderr: text, or json (then progress, the summary and errors are JSON lines too)")
	fixed := func(values ...cobra.Completion) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	_ = cmd.RegisterFlagCompletionFunc("progress", fixed("auto\tbars on a terminal, else plain", "plain\ta line a second", "none\tnothing"))
	_ = cmd.RegisterFlagCompletionFunc("log-format", fixed("text", "json"))
	_ = cmd.RegisterFlagCompletionFunc("job", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		file, err := jobs.ReadFile(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, j := range file.Jobs {
			names = append(names, cobra.CompletionWithDesc(j.Name, j.Kind.Name))
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func runJobs(ctx context.Context, io *IO, o *runOptions) error {
	var handler slog.Handler
	switch o.logFormat {
	case "text":
		handler = slog.NewTextHandler(io.Err, &slog.HandlerOptions{Level: slog.LevelWarn})
	case "json":
		handler = slog.NewJSONHandler(io.Err, &slog.HandlerOptions{Level: slog.LevelInfo})
	default:
		return usageError("--log-format must be text or json, not %q", o.logFormat)
	}
	log := slog.New(handler)
	err := runLogged(ctx, io, o, log)
	// With JSON logs, stderr holds JSON lines only: the final error too.
	var ee *exitError
	if o.logFormat == "json" && errors.As(err, &ee) && ee.err != nil && ee.err.Error() != "" {
		log.Error(ee.err.Error(), "exit", ee.code)
		return &exitError{code: ee.code, err: errors.New("")}
	}
	return err
}

func runLogged(ctx context.Context, io *IO, o *runOptions, log *slog.Logger) error {
	switch o.progress {
	case "auto", "plain", "none":
	default:
		return usageError("--progress must be auto, plain or none, not %q", o.progress)
	}
	if o.noJournal && (o.resume || o.journal != "") {
		return usageError("--no-journal cannot be used with --resume or --journal")
	}
	if o.workers < 0 {
		return usageError("--workers must not be negative (0 means one per core)")
	}

	file, err := jobs.ReadFile(o.file)
	if err != nil {
		return jobsFileError(err)
	}
	plan, err := file.Expand()
	if err != nil {
		return jobsFileError(err)
	}
	if len(o.only) > 0 {
		if plan, err = plan.Only(o.only); err != nil {
			return usageError("--job: %v in %s", err, o.file)
		}
	}
	if o.dryRun {
		printPlan(io.Out, plan)
		return nil
	}

	self, err := selfBinary()
	if err != nil {
		return err
	}
	opts := jobs.Options{Workers: o.workers, SelfBinary: self, Journal: o.journal, NoJournal: o.noJournal, Resume: o.resume, FailFast: o.failFast, Logger: log}
	if o.sharedRoot != "" && !o.dist {
		return usageError("--shared-root goes with --nats: it spares agents the transfer of files they mount")
	}
	if o.dist {
		if o.workers != 0 {
			return usageError("--workers cannot be used with --nats: the agents' workers run the tasks")
		}
		if o.sharedRoot != "" {
			if fi, err := os.Stat(o.sharedRoot); err != nil || !fi.IsDir() {
				return usageError("--shared-root %s: not a folder", o.sharedRoot)
			}
		}
		if o.ackWait < time.Second || o.maxDeliver < 1 {
			return usageError("--ack-wait must be at least 1s and --max-deliver at least 1")
		}
		runID := ""
		if o.noJournal {
			var b [12]byte
			rand.Read(b[:])
			runID = hex.EncodeToString(b[:])
		} else {
			jpath := o.journal
			if jpath == "" {
				jpath = jobs.DefaultJournal(plan.File.Path)
			}
			runID = dist.RunID(jpath)
		}
		o.conn.Name = "ppool run"
		o.conn.Reconnect = true // outlive a server restart
		nc, err := dist.Connect(o.conn)
		if err != nil {
			return failed(err)
		}
		defer nc.Close()
		ex, err := dist.NewExecutor(ctx, nc, dist.RunConfig{
			RunID: runID, Resume: o.resume, Logger: log, Dir: plan.File.Dir, SharedRoot: o.sharedRoot,
			Queue: dist.QueueConfig{AckWait: o.ackWait, MaxDeliver: o.maxDeliver},
		})
		if err != nil {
			return failed(err)
		}
		opts.Executor = ex                   // closed by the run
		defer ex.Close(context.Background()) // or here, if it never starts
		if ex.Slots() == 0 {
			log.Warn("no agent is connected yet: the run waits for one", "server", nc.ConnectedUrlRedacted())
		}
	}
	switch o.results {
	case "":
	case "-":
		opts.Results = io.Out
	default:
		rf, err := createResults(o.results)
		if err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
		defer rf.Close()
		opts.Results = rf
	}
	var bars *barsObserver
	switch {
	case o.progress == "none":
	case o.logFormat == "json":
		// Progress as JSON events, not text among the JSON lines;
		// failures are logged once, by the run itself.
		opts.Observer = &jsonObserver{log: log}
	case o.progress == "auto" && terminalWidth(io.Err) > 0:
		bars = &barsObserver{w: io.Err}
		opts.Observer = bars
	default:
		// Also a terminal that reports no size (script(1), some CI
		// runners): bars cannot be drawn in zero columns.
		opts.Observer = &plainObserver{w: io.Err}
	}

	// First signal: drain. Second: kill the workers now.
	drain := make(chan struct{})
	opts.Drain = drain
	runCtx, kill := context.WithCancel(ctx)
	defer kill()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	go func() {
		select {
		case <-sigs:
			close(drain)
		case <-stopSignals:
			return
		}
		select {
		case <-sigs:
			kill()
		case <-stopSignals:
		}
	}()

	// A reader of --results - that stops reading (| head) must end the
	// results, not kill the run with SIGPIPE: with SIGPIPE notified, a
	// write to the closed pipe fails with EPIPE instead, and the run goes
	// on. (Notify, not Ignore: an ignored signal would stay ignored in the
	// workers, which inherit it through exec.)
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)

	summary, err := jobs.Run(runCtx, plan, opts)
	if bars != nil {
		bars.finish()
	}
	if busy := (*jobs.JournalBusyError)(nil); errors.As(err, &busy) {
		return &exitError{code: ExitUsage, err: err}
	}
	if err != nil {
		return &exitError{code: ExitTaskFailed, err: err}
	}
	switch {
	case o.progress == "none":
	case o.logFormat == "json":
		logSummary(log, summary)
	default:
		printSummary(io.Err, summary)
	}
	left := summary.Failed + summary.Cancelled
	switch {
	case summary.Interrupted && left > 0:
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted with %d of %d tasks not done; run again with --resume to finish them", left, plan.Tasks)}
	case summary.Interrupted:
		return &exitError{code: ExitInterrupted, err: errors.New("interrupted, but every task had finished")}
	case summary.Failed > 0 || summary.Cancelled > 0:
		return &exitError{code: ExitTaskFailed, err: fmt.Errorf("%d of %d tasks failed, %d not run", summary.Failed, plan.Tasks, summary.Cancelled)}
	case summary.Unrecorded > 0:
		return &exitError{code: ExitTaskFailed, err: fmt.Errorf("every task succeeded, but %d could not be recorded (%v): --resume would redo those missing from the journal", summary.Unrecorded, summary.RecordErr)}
	}
	return nil
}

// createResults opens the results file for writing, making its folder.
func createResults(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	return f, nil
}

// jobsFileError: a jobs file that is missing or wrong is a usage error.
func jobsFileError(err error) error { return &exitError{code: ExitUsage, err: err} }

func printPlan(w io.Writer, plan *jobs.Plan) {
	for _, j := range plan.Jobs {
		after := ""
		if len(j.Job.After) > 0 {
			after = fmt.Sprintf(" (after %v)", j.Job.After)
		}
		fmt.Fprintf(w, "job %s: %s, %d tasks%s\n", j.Name, j.Kind.Name, len(j.Tasks), after)
		printOutputDirs(w, plan.File.Dir, j)
		for _, t := range j.Tasks {
			var ins []string
			for _, s := range j.Kind.Slots {
				in := t.Inputs[s.Name]
				if in.Gen != nil {
					ins = append(ins, fmt.Sprintf("%s=%s%v(seed %d)", s.Name, in.Gen.Kind, in.Gen.Shape, in.Gen.Seed))
				} else {
					ins = append(ins, s.Name+"="+in.Path)
				}
			}
			fmt.Fprintf(w, "  %s/%s %v -> %s\n", t.Job, t.Name, ins, t.Output)
		}
	}
	fmt.Fprintf(w, "%d tasks\n", plan.Tasks)
}

// printOutputDirs says where a job writes, as absolute folders: outputs may
// be anywhere (../x, /tmp/y), and a dry run is where to see it.
func printOutputDirs(w io.Writer, jobsDir string, j *jobs.PlannedJob) {
	base, _ := filepath.Abs(jobsDir)
	var dirs []string
	seen := map[string]bool{}
	for _, t := range j.Tasks {
		d, err := filepath.Abs(filepath.Dir(t.Output))
		if err != nil || seen[d] {
			continue
		}
		seen[d] = true
		dirs = append(dirs, d)
	}
	const most = 3
	for i, d := range dirs {
		if i == most {
			fmt.Fprintf(w, "  writes to %d more folders\n", len(dirs)-most)
			break
		}
		where := ""
		if rel, err := filepath.Rel(base, d); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			where = " (outside the jobs file's folder)"
		}
		fmt.Fprintf(w, "  writes to %s%s\n", d, where)
	}
}
