package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/dist"
)

// failed is a runtime failure of a command that runs no tasks (a server
// that cannot start, a connection refused): exit status 1.
func failed(err error) error { return &exitError{code: 1, err: err} }

func newServerCmd(io *IO) *cobra.Command {
	var cfg dist.ServerConfig
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run an embedded NATS server with JetStream, for agents on other machines",
		Long: `Run a NATS server with JetStream inside ppool, for a first cluster or a
laptop: agents (ppool agent) connect to it and take tasks from it. Real
deployments can point at their own NATS cluster instead.

The server listens on loopback only unless --listen says otherwise, and
keeps its streams in --store, so that a server restarted on the same store
has them back. Once it accepts connections it prints the URL to give
agents on stdout, and runs until SIGINT or SIGTERM, when it shuts down
cleanly. It has no authentication: listen beyond loopback only on a
network you trust, or run your own NATS servers with credentials and TLS.`,
		Example: `  ppool server
  ppool server --listen 0.0.0.0:4222 --store /var/lib/ppool/nats`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Signals are caught before the server starts, so that one
			// sent as soon as the URL is out stops it cleanly.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := dist.StartServer(cfg)
			if err != nil {
				return failed(err)
			}
			defer s.Shutdown()
			fmt.Fprintln(io.Out, s.URL())
			fmt.Fprintf(io.Err, "ppool server: ready; start agents with: ppool agent --nats %s\n", s.URL())
			<-ctx.Done()
			fmt.Fprintln(io.Err, "ppool server: shutting down")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", dist.DefaultListen, "`HOST:PORT` to listen on (port 0: any free port)")
	cmd.Flags().StringVar(&cfg.StoreDir, "store", "", "JetStream store `folder` (default: ppool/nats in the user's cache folder)")
	return cmd
}
