package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/internal/benchmark"
)

type benchOptions struct {
	json    bool
	python  bool
	pyPath  string
	quick   bool
	quiet   bool
	workers int
}

func newBenchCmd(io *IO) *cobra.Command {
	return newBenchCmdWith(io, nil)
}

// newBenchCmdWith lets tests see the parsed options instead of measuring.
func newBenchCmdWith(io *IO, runF func(*benchOptions) error) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure ppool on this machine, and compare it with Python's pools in the same run",
		Long: `Measure, in one run: the floor any pipe-based pool can reach here (two
processes echoing 16 bytes over pipes), ppool's Apply round trip (p50),
ApplyAsync, Map and ImapUnordered throughput on tiny tasks, the start time
of a pool of every core, an idle worker's memory, a 64 MiB payload's
round trip, and CPU-bound work in workers: a float64 1024×1024 product
(GFLOPS), a Gaussian blur (σ 2, 2048×1536 RGB), and the speedup of every
worker over one on a job of several of each. Then what users run, on
files it writes in a temporary folder: 6 MP JPEGs to 256 px thumbnails
and 6 MP PNGs blurred (σ 2) to PNGs, read to write through the jobs
runner as ` + "`ppool run`" + ` does, and vipsthumbnail (if on PATH) on the same
files.

With --python, the same run measures multiprocessing.Pool, numpy and
Pillow with /usr/bin/python3 (Debian: apt-get install python3-numpy
python3-pil), Pillow in multiprocessing.Pool on the same files, and adds
python_* figures and ratios. These machines are
noisy: compare figures from one run only.

bench/README.md explains every figure.`,
		Example: `  ppool bench
  ppool bench --json --python > bench.json
  ppool bench --quick`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runBench(cmd.Context(), io, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print one JSON object instead of a table")
	f.BoolVar(&o.python, "python", false, "also measure Python's multiprocessing.Pool, numpy and Pillow, and the ratios")
	f.StringVar(&o.pyPath, "python-bin", benchmark.DefaultPython, "the Python interpreter for --python")
	f.BoolVar(&o.quick, "quick", false, "small counts and sizes: a smoke test in seconds, not figures to quote")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "do not print each step on stderr")
	f.IntVarP(&o.workers, "workers", "w", 0, "workers for the all-workers figures (default: one per usable core)")
	return cmd
}

func runBench(ctx context.Context, io *IO, o *benchOptions) error {
	if o.workers < 0 {
		return usageError("--workers must be positive")
	}
	self, err := selfBinary()
	if err != nil {
		return err
	}
	bo := benchmark.Options{Quick: o.quick, Python: o.python, PythonPath: o.pyPath, Workers: o.workers, SelfBinary: self}
	if !o.quiet {
		bo.Progress = func(step string) { fmt.Fprintf(io.Err, "ppool bench: %s\n", step) }
	}
	// Ctrl-C stops the measurements and closes the pools cleanly.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	r, err := benchmark.Run(ctx, bo)
	if err != nil && ctx.Err() != nil {
		return &exitError{code: ExitInterrupted, err: errors.New("bench interrupted")}
	}
	if err != nil {
		return &exitError{code: ExitTaskFailed, err: fmt.Errorf("bench: %w", err)}
	}
	if o.json {
		err = r.WriteJSON(io.Out)
	} else {
		err = r.WriteTable(io.Out)
	}
	if err != nil {
		return &exitError{code: ExitTaskFailed, err: fmt.Errorf("bench: %w", err)}
	}
	return nil
}
