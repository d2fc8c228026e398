// Package plugin lets a Go worker binary be launched through
// github.com/hashicorp/go-plugin: the master (pool.Config{Launcher:
// goplugin.Launcher{}}, package pool/goplugin)
// checks its handshake cookie and protocol version, and forwards its logs,
// while tasks still flow over fds 3 and 4 as for any worker.
//
// A custom worker's main is one line:
//
//	func main() { plugin.Main(registry) }
//
// Started any other way (by a pool without Plugin, or by `ppool worker
// check` without the cookie), it runs as a plain worker.
package plugin

import (
	"context"
	"fmt"
	"net/rpc"
	"os"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/workerproc"
)

// Handshake is what master and worker agree on before anything else: the
// cookie tells the worker it was started by ppool, and ProtocolVersion is
// go-plugin's application protocol, which is ppool's worker protocol
// version (negotiated again, finer, in the hello on fd 4).
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  uint(ipc.Versions[len(ipc.Versions)-1]),
	MagicCookieKey:   "PPOOL_PLUGIN_COOKIE",
	MagicCookieValue: "f1d0c2a7-ppool-worker-9b3e",
}

// EnvSocketDir names the folder go-plugin's server makes its socket in;
// without it, the system's temporary folder, where the socket of a worker
// that is killed stays behind. The pool's go-plugin launcher sets it to a
// folder of each worker's and removes the folder when the worker is gone.
const EnvSocketDir = goplugin.EnvUnixSocketDir

// Env is what a worker started outside a pool (a conformance check, a
// test) needs in its environment to run as the pool's go-plugin launcher
// would run it: the handshake cookie, and socketDir, a folder the caller
// made for go-plugin's sockets and removes once the workers are gone.
func Env(socketDir string) []string {
	return []string{Handshake.MagicCookieKey + "=" + Handshake.MagicCookieValue, EnvSocketDir + "=" + socketDir}
}

// Plugins is the plugin set both sides declare. It serves a single ping:
// go-plugin's RPC connection carries only the worker's stdout and stderr;
// tasks never go through it.
var Plugins = map[string]goplugin.Plugin{"ppool": pingPlugin{}}

type pingPlugin struct{}

// Pinger is the RPC service behind the plugin.
type Pinger struct{}

// Ping answers 1.
func (Pinger) Ping(_ int, reply *int) error { *reply = 1; return nil }

func (pingPlugin) Server(*goplugin.MuxBroker) (any, error) { return Pinger{}, nil }
func (pingPlugin) Client(_ *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	return c, nil
}

// Launched reports whether this process was started through go-plugin by
// a ppool master.
func Launched() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// Main serves reg (workerproc.Default if nil) and exits: through go-plugin
// when the master launched it so, as a plain worker otherwise.
func Main(reg *workerproc.Registry) {
	if Launched() {
		// Serve prints the handshake on stdout, then serves the RPC
		// connection the master uses to collect this process's output.
		go goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: Handshake, Plugins: Plugins})
	}
	if err := workerproc.Serve(context.Background(), reg); err != nil {
		fmt.Fprintf(os.Stderr, "ppool worker %d: %v\n", os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}
