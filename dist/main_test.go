package dist_test

// The test binary is its own agent and its own worker: TestMain serves as
// a pool worker when the pool re-executes it (PPOOL_WORKER), and as an
// agent process when a test starts it with PPOOL_TEST_AGENT set, so that
// agents can be killed like real ones.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
	_ "github.com/ppool/ppool/jobs/matrix"
	"github.com/ppool/ppool/workerproc"
)

func TestMain(m *testing.M) {
	workerproc.Main() // in a worker process this serves tasks and exits
	// Agents and workers are this test binary; under -race each would
	// sleep a second as it exits.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	if os.Getenv("PPOOL_TEST_AGENT") != "" {
		os.Exit(agentMain())
	}
	code := m.Run()
	if code == 0 {
		// nats.go's async publisher starts a goroutine per connection
		// that waits on the connection's status channel; when the
		// connection is closed before that goroutine reads the channel,
		// it finds it cleared (nil) and waits forever (nats.go v1.55.0,
		// jetstream/publish.go:565). It is the library's, not ppool's,
		// and only a test binary, which closes many connections, sees it.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// A job kind of the test binary: it sleeps for param ms (honouring
// cancellation), then writes a line naming the task, or fails if told.
// With marks, it first leaves a file there named AGENTPID-TASK.
func init() {
	jobs.Register(&jobs.Kind{
		Name: "test.sleep", Summary: "sleeps, then writes a line", Version: 1, Outputs: []string{"txt"},
		Params: []jobs.Param{
			{Name: "ms", Type: jobs.TypeInt, Default: 0},
			{Name: "fail", Type: jobs.TypeBool, Default: false},
			{Name: "marks", Type: jobs.TypeString, Default: ""},
		},
		Run: func(ctx context.Context, t *jobs.Task) (*jobs.Outcome, error) {
			if dir, _ := t.Params["marks"].(string); dir != "" {
				// PARENT-TASK: the worker's parent is the agent that runs it.
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s", os.Getppid(), t.Name)), nil, 0o644); err != nil {
					return nil, err
				}
			}
			select {
			case <-time.After(time.Duration(t.Int("ms")) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if t.Bool("fail") {
				return nil, errors.New("failing as asked")
			}
			return nil, os.WriteFile(t.Output, []byte("done "+t.Name+"\n"), 0o644)
		},
	})
}

// agentMain is an agent process, configured by the environment.
func agentMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	nc, err := dist.Connect(dist.ConnOptions{URL: os.Getenv("PPOOL_TEST_AGENT"), TLSCA: os.Getenv("PPOOL_TEST_TLSCA"), Reconnect: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ppool agent:", err)
		return 1
	}
	defer nc.Close()
	workers, _ := strconv.Atoi(os.Getenv("PPOOL_TEST_WORKERS"))
	ttl, _ := time.ParseDuration(os.Getenv("PPOOL_TEST_TTL"))
	grace, _ := time.ParseDuration(os.Getenv("PPOOL_TEST_GRACE"))
	a, err := dist.NewAgent(ctx, nc, dist.AgentConfig{
		Name: os.Getenv("PPOOL_TEST_NAME"), Workers: workers, CacheDir: os.Getenv("PPOOL_TEST_CACHE"),
		Version: "test", RegistryTTL: ttl, ShutdownGrace: grace, PullWait: 200 * time.Millisecond, Logger: log,
		NoFetchWorkers: os.Getenv("PPOOL_TEST_NOFETCH") != "", SharedRoot: os.Getenv("PPOOL_TEST_SHARED"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ppool agent:", err)
		return 1
	}
	if dir := os.Getenv("PPOOL_TEST_CPUPROFILE"); dir != "" {
		// Where an agent's time goes, for the benchmarks' breakdown.
		f, err := os.Create(filepath.Join(dir, "agent-"+a.Name()+".pprof"))
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ppool agent:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ppool agent:", err)
		return 1
	}
	return 0
}

// waitTimeout bounds every wait for a condition: generous, as the suite
// runs under -race on two cores beside other work.
const waitTimeout = 20 * time.Second

// startServer starts an embedded server on a free loopback port with a
// store of its own, shut down when the test ends.
func startServer(t testing.TB, cfg dist.ServerConfig) *dist.Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.StoreDir = t.TempDir()
	s, err := dist.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, o dist.ConnOptions) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := dist.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// syncBuffer is an agent's stderr, read while the agent writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// agentProc is an agent running as a separate process.
type agentProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's error, once exited is closed
}

// startAgent starts an agent process, killed and waited for when the test
// ends if it has not exited by then.
func startAgent(t testing.TB, url, name string, workers int, env ...string) *agentProc {
	t.Helper()
	a := &agentProc{name: name, stderr: new(syncBuffer), exited: make(chan struct{})}
	a.cmd = exec.Command(os.Args[0], "-test.run=^$")
	a.cmd.Env = append(os.Environ(),
		"PPOOL_TEST_AGENT="+url, "PPOOL_TEST_NAME="+name,
		"PPOOL_TEST_WORKERS="+strconv.Itoa(workers), "PPOOL_TEST_CACHE="+t.TempDir())
	a.cmd.Env = append(a.cmd.Env, env...)
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		if os.Getenv("PPOOL_TEST_CPUPROFILE") != "" {
			// Stopped, not killed: it writes its profile as it exits.
			a.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-a.exited:
			case <-time.After(waitTimeout):
			}
		}
		select {
		case <-a.exited:
		default:
			a.cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("agent %s's stderr:\n%s", name, a.stderr.String())
		}
	})
	return a
}

// signal sends sig and waits for the agent to exit.
func (a *agentProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("agent %s did not exit within %v of %v", a.name, waitTimeout, sig)
	}
}

// waitFor polls cond until it holds, failing the test after timeout with
// cond's last description of what it saw.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last seen: %s)", what, timeout, saw)
		}
		<-tick.C
	}
}

// listed returns the names of the live agents.
func listed(t testing.TB, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	agents, err := dist.ListAgents(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range agents {
		names = append(names, a.Name)
	}
	return names
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// sleepTask is a task of the test kind.
func sleepTask(id string, ms int, fail bool) *dist.TaskMessage {
	return &dist.TaskMessage{ID: id, Task: jobs.Task{
		Job: "sleepers", Kind: "test.sleep", Name: id, Mode: "run", Output: "/etc/" + id + ".txt",
		Params: map[string]any{"ms": ms, "fail": fail},
	}}
}

// results reads the results stream from its start until n results came or
// the timeout passed.
func results(t testing.TB, js jetstream.JetStream, n int, timeout time.Duration) []*dist.ResultMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, dist.ResultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*dist.ResultMessage
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("%d of %d results: %v", len(out), n, err)
		}
		for msg := range batch.Messages() {
			r, err := dist.DecodeResult(msg.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("%d of %d results: %v", len(out), n, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d results within %v", len(out), n, timeout)
		}
	}
	return out
}

func stderrHas(a *agentProc, s string) bool { return strings.Contains(a.stderr.String(), s) }
