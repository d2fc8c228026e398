package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ppool server, agent and agents, as processes: the server prints its URL
// when ready, an agent appears in agents (table and JSON, URL from
// --nats or NATS_URL), leaves it at once on SIGTERM, and the server stops
// cleanly on SIGTERM. The ppool in $PATH is this test binary (TestMain).
func TestServerAgentCommands(t *testing.T) {
	ppool, err := exec.LookPath("ppool")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GORACE=atexit_sleep_ms=10", "NATS_URL=")
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(ppool, args...)
		cmd.Env = env
		var stderr bytes.Buffer // read once the process is waited for
		cmd.Stderr = &stderr
		return cmd, &stderr
	}
	// The server: its first line of stdout is the URL.
	server, serverErr := start("server", "--listen", "127.0.0.1:0", "--store", t.TempDir())
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	serverDone := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		serverDone <- server.Wait() // after stdout is read to its end
	}()
	t.Cleanup(func() {
		server.Process.Kill() // if it is still running; harmless otherwise
		<-serverDone
		if t.Failed() {
			t.Logf("server stderr:\n%s", serverErr)
		}
	})
	var url string
	select {
	case url = <-lines:
	case <-time.After(waitTimeout):
		t.Fatalf("no URL from ppool server within %v", waitTimeout)
	}
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ppool server printed %q", url)
	}

	run := func(extraEnv []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(ppool, args...)
		cmd.Env = append(env, extraEnv...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ppool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run(nil, "agents", "--nats", url); out != "no live agents\n" {
		t.Errorf("agents with none: %q", out)
	}

	agent, agentErr := start("agent", "--nats", url, "--workers", "1", "--name", "cli-agent", "--cache", t.TempDir(), "--metrics", "127.0.0.1:0")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Kill()
		<-agentDone
		if t.Failed() {
			t.Logf("agent stderr:\n%s", agentErr)
		}
	})
	type info struct {
		Name    string `json:"name"`
		Workers int    `json:"workers"`
		Free    int    `json:"free_workers"`
		Cores   int    `json:"cores"`
		Version string `json:"version"`
	}
	var agents []info
	if !poll(waitTimeout, func() bool {
		agents = nil
		if err := json.Unmarshal([]byte(run([]string{"NATS_URL=" + url}, "agents", "--json")), &agents); err != nil {
			t.Fatal(err)
		}
		return len(agents) == 1
	}) {
		t.Fatalf("the agent not listed within %v", waitTimeout)
	}
	if a := agents[0]; a.Name != "cli-agent" || a.Workers != 1 || a.Free != 1 || a.Cores < 1 || a.Version == "" {
		t.Errorf("agents --json: %+v", a)
	}
	table := run(nil, "agents", "--nats", url)
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "LAST SEEN") || !strings.Contains(table, "cli-agent") {
		t.Errorf("agents table:\n%s", table)
	}

	// ppool run --nats: the same outputs as a local run, each result
	// naming the agent; run again with --resume, nothing is redone.
	dir := t.TempDir()
	jobsFile := "jobs:\n  - name: products\n    kind: matrix.multiply\n    count: 3\n    inputs:\n      a: {random: [24, 24], seed: 1}\n      b: {random: [24, 24], seed: 101}\n"
	for _, sub := range []string{"local", "dist"} {
		if err := os.MkdirAll(dir+"/"+sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+sub+"/jobs.yaml", []byte(jobsFile), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(nil, "run", "--progress", "none", "--workers", "1", dir+"/local/jobs.yaml")
	resLines := run(nil, "run", "--progress", "none", "--results", "-", "--nats", url, dir+"/dist/jobs.yaml")
	for _, line := range strings.Split(strings.TrimSpace(resLines), "\n") {
		var r struct{ Status, Agent, Task string }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Status != "ok" || r.Agent != "cli-agent" {
			t.Errorf("run --nats result %s: %+v, %v", line, r, err)
		}
	}
	for _, name := range []string{"0", "1", "2"} {
		local, err1 := os.ReadFile(dir + "/local/out/products/" + name + ".npy")
		remote, err2 := os.ReadFile(dir + "/dist/out/products/" + name + ".npy")
		if err1 != nil || err2 != nil || !bytes.Equal(local, remote) {
			t.Errorf("product %s: through the agent %d bytes (%v), locally %d (%v)", name, len(remote), err2, len(local), err1)
		}
	}
	resumed := run([]string{"NATS_URL=" + url}, "run", "--progress", "none", "--results", "-", "--resume", "--nats", "", dir+"/dist/jobs.yaml")
	if n := strings.Count(resumed, `"status":"skipped"`); n != 3 {
		t.Errorf("run --nats --resume: %d skipped, want 3:\n%s", n, resumed)
	}

	agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-agentDone:
		agentDone <- err // for the cleanup
		if err != nil {
			t.Errorf("agent after SIGTERM: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the agent still runs %v after SIGTERM", waitTimeout)
	}
	if out := run(nil, "agents", "--nats", url); out != "no live agents\n" {
		t.Errorf("agents after SIGTERM: %q", out)
	}

	server.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-serverDone:
		serverDone <- err
		if err != nil {
			t.Errorf("server after SIGTERM: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the server still runs %v after SIGTERM", waitTimeout)
	}

	// Nothing listens any more: a clear error, exit status 1.
	cmd := exec.Command(ppool, "agents", "--nats", url)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "no server answered") {
		t.Errorf("agents with no server: %v\n%s", err, out)
	}
}
