package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

func newAgentCmd(io *IO) *cobra.Command {
	var conn dist.ConnOptions
	var cfg dist.AgentConfig
	var verbose bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run this machine's workers for tasks from a NATS server",
		Long: `Run a pool of workers on this machine and take tasks for them from a NATS
JetStream work queue: one task per free worker, never more, so that a
task is never held by an agent that cannot start it. Each task's result
goes back on a results stream; a task running longer than a third of the
queue's ack wait is kept alive with heartbeats.

Tasks carry data, never code: only the job kinds built into this ppool run,
and their outputs go to --cache, whatever paths the task names. A "call"
job's custom worker runs if this machine has it at the path the job names
(hashing to the job's sha256, if it names one), or if the run shipped it
pinned by that sha256: fetched into --cache and checked against the hash
(--no-fetch-workers refuses shipped binaries).

The agent registers itself for ppool agents and refreshes its entry while
it runs. On SIGINT or SIGTERM it leaves the list, pulls no more tasks, lets
running ones finish for --grace and hands them back to the queue if they
have not; a second signal hands them back at once.

ppool run --nats sends a jobs file's tasks to the agents.`,
		Example: `  ppool agent --nats nats://10.0.0.5:4222
  ppool agent --nats tls://nats.example.com:4222 --creds agent.creds --workers 16 --metrics :9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Workers < 0 {
				return usageError("--workers %d: want 0 (one per core) or more", cfg.Workers)
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(io.Err, &slog.HandlerOptions{Level: level}))
			cfg.Version = jobs.Version
			// The agent's own pool runs the slim worker if it can; pools
			// of a job's own worker binary run that binary (Command).
			self, err := selfBinary()
			if err != nil {
				return err
			}
			cfg.Pool.SelfBinary = self
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()

			conn.Name = "ppool agent"
			if cfg.Name != "" {
				conn.Name += " " + cfg.Name
			}
			conn.Reconnect = true // outlive a server restart
			nc, err := dist.Connect(conn)
			if err != nil {
				return failed(err)
			}
			defer nc.Close()
			a, err := dist.NewAgent(ctx, nc, cfg)
			if err != nil {
				return failed(err)
			}
			fmt.Fprintf(io.Err, "ppool agent %s: connected to %s\n", a.Name(), nc.ConnectedUrlRedacted())
			if addr := a.MetricsAddr(); addr != "" {
				fmt.Fprintf(io.Err, "ppool agent %s: metrics on http://%s/metrics\n", a.Name(), addr)
			}
			done := make(chan struct{})
			defer close(done)
			go func() {
				select {
				case <-sigs:
					stop() // first signal: stop pulling, let running tasks finish
				case <-done:
					return
				}
				select {
				case <-sigs:
					a.CancelRunning() // a second one: hand them back now
				case <-done:
				}
			}()
			return a.Run(ctx)
		},
	}
	addConnFlags(cmd, &conn)
	f := cmd.Flags()
	f.IntVarP(&cfg.Workers, "workers", "w", 0, "worker processes (default: one per usable core)")
	f.StringVar(&cfg.Name, "name", "", "this agent's `name` in ppool agents and in results (default HOST-PID)")
	f.StringVar(&cfg.CacheDir, "cache", "", "the only `folder` tasks write to (default: ppool/agent in the user's cache folder)")
	f.StringVar(&cfg.Metrics, "metrics", "", "serve Prometheus metrics on `HOST:PORT`, at /metrics")
	f.DurationVar(&cfg.ShutdownGrace, "grace", 10*time.Second, "how long running tasks may finish after SIGTERM before they are handed back")
	f.StringVar(&cfg.SharedRoot, "shared-root", "", "where this machine mounts the `folder` runs name with --shared-root: their files there are read in place once the run's token is found there")
	f.BoolVar(&cfg.NoFetchWorkers, "no-fetch-workers", false, "refuse custom worker binaries shipped by runs: run only those this machine has at the path a job names")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every pull and hand-back")
	return cmd
}
