// Package goplugin launches a pool's workers through hashicorp/go-plugin:
// set pool.Config.Launcher to a Launcher, and Config.Command to a Go
// worker built with workerproc/plugin.Main. go-plugin checks the worker's
// handshake cookie and protocol version and forwards its output to the
// pool's Logger; tasks flow over the worker's pipes as for any worker, not
// over gRPC.
//
// It is a package of its own so that a program that embeds a pool links
// go-plugin, and gRPC with it, only if it imports this.
package goplugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/ppool/ppool/workerproc/plugin"
)

// go-plugin's defaults fight the pool's guarantees, so it
// is used for what it is good at, the handshake (cookie and protocol
// version) and collecting the worker's output, and nothing else:
//
//   - a RunnerFunc, so the launcher (internal/launch) still does the exec
//     (on the pool's spawner thread, with its fds 3 and 4, process group,
//     parent-death signal and cgroup), and is the only one to Wait for the
//     process; go-plugin's Wait just waits for the launcher's;
//   - SkipHostEnv, since go-plugin appends the host's environment after
//     ours and the last duplicate wins, which would undo the thread budget;
//   - its start timeout is the pool's StartTimeout (its default is a minute);
//   - Client.Kill is never called (it waits a fixed 2 s); the pool kills;
//   - stdin is /dev/null, and stdout and stderr are read to the end;
//   - the checksum is the pool's own (Config.SHA256: hash once into a
//     sealed in-memory copy and execute that), not SecureConfig, which
//     hashes a path and then executes the path, leaving a window to swap
//     the binary.

// pluginRunner is the runner.Runner go-plugin drives. Start runs the
// launcher's exec.Cmd as prepared; Wait waits for the launcher's own wait.
type pluginRunner struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File // read ends, given to go-plugin
	exited         <-chan struct{}
}

func (r *pluginRunner) Start(ctx context.Context) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	r.cmd.Stdin = nil // /dev/null, whatever go-plugin set
	r.cmd.Stdout, r.cmd.Stderr = outW, errW
	err = r.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	r.stdout, r.stderr = outR, errR
	return nil
}

func (r *pluginRunner) Wait(ctx context.Context) error {
	<-r.exited
	if st := r.cmd.ProcessState; st != nil && !st.Success() {
		return &exec.ExitError{ProcessState: st}
	}
	return nil
}

// Kill is called by go-plugin only when its start fails; the launcher reaps.
func (r *pluginRunner) Kill(ctx context.Context) error {
	if r.cmd.Process != nil {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
	return nil
}

func (r *pluginRunner) Diagnose(ctx context.Context) string { return "" }
func (r *pluginRunner) Stdout() io.ReadCloser               { return r.stdout }
func (r *pluginRunner) Stderr() io.ReadCloser               { return r.stderr }
func (r *pluginRunner) Name() string                        { return r.cmd.Args[0] }
func (r *pluginRunner) ID() string                          { return strconv.Itoa(r.cmd.Process.Pid) }
func (r *pluginRunner) PluginToHost(n, a string) (string, string, error) {
	return n, a, nil
}
func (r *pluginRunner) HostToPlugin(n, a string) (string, string, error) {
	return n, a, nil
}

// Launcher starts workers through go-plugin; its zero value is ready.
// It is a pool.Launcher.
type Launcher struct{}

// Start starts cmd through go-plugin and waits for its handshake, then
// connects go-plugin's RPC channel, which carries the worker's output once
// it is served. The pool runs it on its spawner's thread, like every exec. release
// removes go-plugin's socket folder; the connection needs no closing: it
// ends with the process, and closing it would make yamux log a broken pipe
// to the process's stderr.
func (Launcher) Start(cmd *exec.Cmd, output io.Writer, exited <-chan struct{}, timeout time.Duration) (release func(), err error) {
	var socketDir string
	release = func() {
		if socketDir != "" {
			os.RemoveAll(socketDir)
		}
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.Plugins,
		SkipHostEnv:      true,
		StartTimeout:     timeout,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		Stderr:           output, // raw stderr lines: logged, and kept for crash reports
		SyncStdout:       output, // what the worker writes to os.Stdout and os.Stderr once served
		SyncStderr:       output,
		RunnerFunc: func(_ hclog.Logger, c *exec.Cmd, dir string) (runner.Runner, error) {
			// c is a blank Cmd carrying go-plugin's variables (cookie,
			// versions, socket folder): add them to ours.
			cmd.Env = append(append([]string(nil), cmd.Env...), c.Env...)
			socketDir = dir
			return &pluginRunner{cmd: cmd, exited: exited}, nil
		},
	})
	if _, err := client.Start(); err != nil {
		return release, fmt.Errorf("go-plugin: %w", err)
	}
	// The connection carries what the worker writes to os.Stdout and
	// os.Stderr once go-plugin has redirected them; it ends with the worker.
	if _, err := client.Client(); err != nil {
		fmt.Fprintf(output, "ppool: go-plugin connection failed: the worker's output after start-up is lost: %v\n", err)
	}
	return release, nil
}
