package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/ppool/ppool/dist"
)

// addConnFlags adds the nats CLI's connection flags, shared by every
// command that talks to a NATS server.
func addConnFlags(cmd *cobra.Command, o *dist.ConnOptions) {
	f := cmd.Flags()
	f.StringVar(&o.URL, "nats", "", "NATS server `URL`s, comma separated (default $NATS_URL, else "+dist.DefaultURL+"); a user and password or a token go in the URL")
	f.StringVar(&o.Creds, "creds", "", "user credentials `file` (default $NATS_CREDS)")
	f.StringVar(&o.NKey, "nkey", "", "NKey seed `file` (default $NATS_NKEY)")
	f.StringVar(&o.TLSCert, "tlscert", "", "TLS client certificate `file` (default $NATS_CERT)")
	f.StringVar(&o.TLSKey, "tlskey", "", "TLS client key `file` (default $NATS_KEY)")
	f.StringVar(&o.TLSCA, "tlsca", "", "CA certificates `file` to verify the server (default $NATS_CA)")
}

func newAgentsCmd(io *IO) *cobra.Command {
	var conn dist.ConnOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the live agents",
		Long: `List the agents connected to a NATS server: name, cores, workers and free
workers, one-minute load, ppool version and when each last said it was
alive. Agents refresh their entry every quarter of the registry's TTL
(10 s by default); one that stops (killed, cut off) leaves the list within
the TTL, one stopped with SIGTERM or Ctrl-C at once.`,
		Example: `  ppool agents --nats nats://10.0.0.5:4222
  NATS_URL=nats://10.0.0.5:4222 ppool agents --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn.Name = "ppool agents"
			nc, err := dist.Connect(conn)
			if err != nil {
				return failed(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return failed(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			agents, err := dist.ListAgents(ctx, js)
			if err != nil {
				return failed(err)
			}
			if asJSON {
				if agents == nil {
					agents = []dist.AgentInfo{} // [] rather than null
				}
				enc := json.NewEncoder(io.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(agents)
			}
			if len(agents) == 0 {
				fmt.Fprintln(io.Out, "no live agents")
				return nil
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tHOST\tCORES\tWORKERS\tFREE\tLOAD\tVERSION\tLAST SEEN")
			for _, a := range agents {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f\t%s\t%s ago\n", a.Name, a.Host, a.Cores, a.Workers, a.Free, a.Load, a.Version,
					max(time.Since(a.LastSeen), 0).Round(100*time.Millisecond))
			}
			return tw.Flush()
		},
	}
	addConnFlags(cmd, &conn)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
