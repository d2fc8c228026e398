package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
)

// proc is a ppool process a test started: killed and waited for when the
// test ends, its stderr logged if the test failed.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer // read only once done is closed
	done   chan struct{}
}

// startPPool starts the ppool in $PATH (this test binary) with args.
func startPPool(t *testing.T, stdout *bytes.Buffer, args ...string) *proc {
	t.Helper()
	ppool, err := exec.LookPath("ppool")
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(ppool, args...), stderr: new(bytes.Buffer), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10", "NATS_URL=")
	p.cmd.Stderr = p.stderr
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // harmless if it has exited
		<-p.done
		if t.Failed() {
			t.Logf("ppool %s: stderr:\n%s", strings.Join(args, " "), p.stderr)
		}
	})
	return p
}

// startServerProcess starts `ppool server` on a free loopback port and
// returns its URL, read from its first line of output.
func startServerProcess(t *testing.T) string {
	t.Helper()
	ppool, err := exec.LookPath("ppool")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ppool, "server", "--listen", "127.0.0.1:0", "--store", t.TempDir())
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10", "NATS_URL=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
		cmd.Wait() // after stdout is read to its end
		close(done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	select {
	case url := <-lines:
		if !strings.HasPrefix(url, "nats://") {
			t.Fatalf("ppool server printed %q", url)
		}
		return url
	case <-time.After(waitTimeout):
		t.Fatalf("no URL from ppool server within %v", waitTimeout)
	}
	return ""
}

// `ppool run --nats` killed with SIGKILL while an agent runs its tasks,
// then run again with --resume: the tasks the agent finished while no
// ppool run was there are collected from the results stream, not run
// again. The work queue's delivery count proves it: every task is
// delivered exactly once over both runs.
func TestRunNATSKilledThenResumed(t *testing.T) {
	const tasks = 6
	url := startServerProcess(t)
	startPPool(t, nil, "agent", "--nats", url, "--workers", "2", "--name", "k1", "--cache", t.TempDir())

	dir := t.TempDir()
	jobsFile := filepath.Join(dir, "jobs.yaml")
	// Tasks of a few hundred milliseconds (seconds under -race): the kill
	// comes while the agent runs some.
	yaml := fmt.Sprintf("jobs:\n  - name: m\n    kind: image.mandelbrot\n    count: %d\n    params: {width: 300, height: 200, max_iter: 3000}\n    output: out/m{index}.png\n", tasks)
	if err := os.WriteFile(jobsFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, ".ppool", "jobs.journal.jsonl")

	nc, err := dist.Connect(dist.ConnOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	consumer := func() *jetstream.ConsumerInfo {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, dist.TaskStream, dist.TaskConsumer)
		if err != nil {
			return nil // not created yet
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}

	run := startPPool(t, nil, "run", "--nats", url, "--progress", "none", jobsFile)
	// Killed once a task is journalled and another runs on the agent.
	if !poll(waitTimeout, func() bool {
		info := consumer()
		return lineCount(journal) >= 1 && info != nil && info.NumAckPending >= 1
	}) {
		t.Fatalf("no task journalled with another running within %v", waitTimeout)
	}
	if err := run.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-run.done
	journalled := lineCount(journal)

	// The agent finishes what it was given, with no ppool run there.
	var info *jetstream.ConsumerInfo
	if !poll(waitTimeout, func() bool {
		info = consumer()
		return info.NumAckPending == 0 && info.NumPending == 0
	}) {
		t.Fatalf("the agent did not finish its tasks within %v: %+v", waitTimeout, info)
	}
	finished := int(info.Delivered.Consumer)
	if finished <= journalled {
		t.Fatalf("%d tasks delivered, %d journalled: the kill came after the run collected every task, and proves nothing", finished, journalled)
	}

	var out bytes.Buffer
	resumed := startPPool(t, &out, "run", "--nats", url, "--progress", "none", "--resume", "--results", "-", jobsFile)
	select {
	case <-resumed.done:
	case <-time.After(waitTimeout):
		t.Fatalf("the resumed run did not end within %v", waitTimeout)
	}
	if code := resumed.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the resumed run exited %d", code)
	}
	status := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r struct{ Status string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("results line %q: %v", line, err)
		}
		status[r.Status]++
	}
	if status["skipped"] != journalled || status["ok"] != tasks-journalled {
		t.Errorf("resumed run: %v, want %d skipped (journalled) and %d ok", status, journalled, tasks-journalled)
	}
	if info := consumer(); info.Delivered.Consumer != tasks {
		t.Errorf("%d deliveries over both runs, want %d: the %d tasks finished while ppool run was dead were run again",
			info.Delivered.Consumer, tasks, finished-journalled)
	}
	want, err := os.ReadFile(filepath.Join(dir, "out", "m0.png")) // the same render, each
	if err != nil {
		t.Fatal(err)
	}
	for i := range tasks {
		if got, err := os.ReadFile(filepath.Join(dir, "out", fmt.Sprintf("m%d.png", i))); err != nil || !bytes.Equal(got, want) {
			t.Errorf("output m%d.png: %d bytes, %v; want the %d of m0.png", i, len(got), err, len(want))
		}
	}
	t.Logf("%d tasks journalled before the kill, %d more finished while ppool run was dead", journalled, finished-journalled)
}
