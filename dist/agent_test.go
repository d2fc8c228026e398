package dist_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
	"github.com/ppool/ppool/jobs"
)

// An agent appears in the registry with what it says about itself; killed,
// it leaves within the TTL and one second; stopped, at once.
func TestAgentRegistryTTL(t *testing.T) {
	const ttl = 3 * time.Second
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	killed := startAgent(t, s.URL(), "killed", 1, "PPOOL_TEST_TTL="+ttl.String())
	stopped := startAgent(t, s.URL(), "stopped", 2, "PPOOL_TEST_TTL="+ttl.String())
	waitFor(t, waitTimeout, "both agents listed", func() (bool, string) {
		names := listed(t, js)
		return contains(names, "killed") && contains(names, "stopped"), fmt.Sprint(names)
	})
	agents, err := dist.ListAgents(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		want := map[string]int{"killed": 1, "stopped": 2}[a.Name]
		if a.Workers != want || a.Free != want || a.Cores < 1 || a.Version != "test" || a.Host == "" || a.PID < 1 ||
			time.Since(a.LastSeen) > ttl {
			t.Errorf("agent %s registered %+v", a.Name, a)
		}
	}

	killed.stop(t, syscall.SIGKILL)
	killedAt := time.Now()
	waitFor(t, ttl+5*time.Second, "the killed agent gone from the list", func() (bool, string) {
		names := listed(t, js)
		return !contains(names, "killed"), fmt.Sprint(names)
	})
	if gone := time.Since(killedAt); gone > ttl+time.Second {
		t.Errorf("the killed agent was listed for %v, more than its TTL %v and 1 s", gone, ttl)
	}
	// And the server itself dropped the entry: the list does not only
	// hide it.
	kv, err := js.KeyValue(context.Background(), dist.AgentBucket)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ttl+5*time.Second, "the killed agent's entry expired", func() (bool, string) {
		_, err := kv.Get(context.Background(), "killed")
		return errors.Is(err, jetstream.ErrKeyNotFound), fmt.Sprint(err)
	})

	if names := listed(t, js); !contains(names, "stopped") {
		t.Fatalf("the live agent left the list too: %v", names)
	}
	stopped.stop(t, syscall.SIGTERM)
	if stopped.err != nil {
		t.Errorf("agent stopped by SIGTERM: %v", stopped.err)
	}
	if names := listed(t, js); contains(names, "stopped") {
		t.Errorf("an agent stopped with SIGTERM is still listed: %v", names)
	}
	if _, err := kv.Get(context.Background(), "stopped"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the stopped agent's entry: %v, want it deleted", err)
	}
}

// An agent with 2 workers never holds more than 2 tasks, and every task
// published comes back with its result.
func TestAgentPullsOnePerFreeWorker(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	const n = 8
	cons := queueOf(t, js, n, 200)
	startAgent(t, s.URL(), "two", 2)

	// Sample the consumer while the agent works, until the queue is empty.
	maxPending := 0
	waitFor(t, waitTimeout, "every task taken and acked", func() (bool, string) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		maxPending = max(maxPending, info.NumAckPending)
		return info.NumPending == 0 && info.NumAckPending == 0, fmt.Sprintf("%d queued, %d unacked", info.NumPending, info.NumAckPending)
	})
	if maxPending > 2 {
		t.Errorf("an agent with 2 workers held %d unacked tasks", maxPending)
	}
	if maxPending == 0 {
		t.Errorf("never saw a task held: the sampling saw nothing")
	}

	got := map[string]bool{}
	for _, r := range results(t, js, n, waitTimeout) {
		if r.Error != "" || r.Agent != "two" || r.Delivery != 1 || r.Runs != 1 || string(r.Output) != "done "+r.ID+"\n" ||
			r.Outcome.Output != "/etc/"+r.ID+".txt" || r.Outcome.OutputHash == "" {
			t.Errorf("result %+v", r)
		}
		if got[r.ID] {
			t.Errorf("two results for %s", r.ID)
		}
		got[r.ID] = true
	}
}

// A slot acks a task whose result is stored with its next pull, in one
// message (+NXT), the pull's answer confirming the ack: one round trip
// to the server per task, not two (a waited ack, then the pull). Every
// task is acked once, and no agent holds more than its workers.
func TestAgentAcksWithItsNextPull(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	nc, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	acks, err := nc.SubscribeSync("$JS.ACK." + dist.TaskStream + ".>")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	cons := queueOf(t, js, n, 0)
	startAgent(t, s.URL(), "one", 1)
	if got := len(results(t, js, n, waitTimeout)); got != n {
		t.Fatalf("%d results of %d tasks", got, n)
	}
	waitFor(t, waitTimeout, "every task acked", func() (bool, string) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= n,
			fmt.Sprintf("%d queued, %d unacked, acked to %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream)
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	byTask := map[string][]string{} // ack messages by delivery (its ack subject)
	for {
		m, err := acks.NextMsg(100 * time.Millisecond)
		if err != nil {
			break // all read: the server had them before the ack floor moved
		}
		byTask[m.Subject] = append(byTask[m.Subject], string(m.Data))
	}
	if len(byTask) != n {
		t.Errorf("acks for %d deliveries, want %d: %v", len(byTask), n, byTask)
	}
	for subject, sent := range byTask {
		// A waited ack may follow if the pull went unanswered in time
		// (the server expires it after the agent's 200 ms and has 300 ms
		// more to say so): on a loaded machine, the last one may.
		if !strings.HasPrefix(sent[0], "+NXT ") || len(sent) > 2 || len(sent) == 2 && sent[1] != "+ACK" {
			t.Errorf("delivery %s acked with %q, want a +NXT (the ack and the next pull)", subject, sent)
		}
	}
}

// Built-in kinds run; failures come back typed; a task the agent cannot
// run says why.
func TestAgentResults(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	product := &dist.TaskMessage{ID: "product", Task: jobs.Task{
		Job: "mm", Kind: "matrix.multiply", Name: "product", Mode: "run", Output: "product.npy",
		Inputs: map[string]jobs.Input{
			"a": {Gen: &jobs.Generator{Kind: "random", Shape: []int{8, 8}, Seed: 1}},
			"b": {Gen: &jobs.Generator{Kind: "identity", Shape: []int{8, 8}}},
		},
	}}
	fileInput := &dist.TaskMessage{ID: "file", Task: jobs.Task{
		Job: "mm", Kind: "matrix.inverse", Name: "file", Mode: "run", Output: "x.npy",
		Inputs: map[string]jobs.Input{"a": {Path: "/etc/passwd"}},
	}}
	for _, m := range []*dist.TaskMessage{product, sleepTask("fails", 0, true), fileInput} {
		if err := dist.PublishTask(ctx, js, m, ""); err != nil {
			t.Fatal(err)
		}
	}
	startAgent(t, s.URL(), "solo", 1)
	byID := map[string]*dist.ResultMessage{}
	for _, r := range results(t, js, 3, waitTimeout) {
		byID[r.ID] = r
	}
	if r := byID["product"]; r == nil || r.Error != "" || len(r.Output) == 0 || int64(len(r.Output)) != r.OutputSize || r.Outcome.OutputHash == "" {
		t.Errorf("matrix.multiply: %+v", r)
	}
	if r := byID["fails"]; r == nil || r.ErrorType != "RemoteError" || !strings.Contains(r.Error, "failing as asked") || r.Agent != "solo" {
		t.Errorf("a failing task: %+v", r)
	}
	if r := byID["file"]; r == nil || r.ErrorType != "TaskMessageError" || !strings.Contains(r.Error, "which the task message does not carry") {
		t.Errorf("a task with a file input: %+v", r)
	}
}

// SIGTERM hands the running task back at once, not after its AckWait.
func TestAgentSIGTERMHandsBack(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{AckWait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"long1", "long2"} {
		if err := dist.PublishTask(ctx, js, sleepTask(id, 60_000, false), ""); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, dist.TaskStream, dist.TaskConsumer)
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, s.URL(), "leaving", 1, "PPOOL_TEST_GRACE=100ms")
	waitFor(t, waitTimeout, "a task running", func() (bool, string) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 1, fmt.Sprintf("%d unacked", info.NumAckPending)
	})
	a.stop(t, syscall.SIGTERM)
	if a.err != nil {
		t.Errorf("agent stopped by SIGTERM: %v", a.err)
	}
	// Both tasks can be taken at once: the running one came back (its
	// second delivery), the other was never taken.
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	deliveries := map[uint64]int{}
	for msg := range batch.Messages() {
		meta, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		deliveries[meta.NumDelivered]++
	}
	if deliveries[1] != 1 || deliveries[2] != 1 {
		t.Errorf("after the agent left, the tasks' delivery counts: %v; want one of each of 1 and 2 (err %v)", deliveries, batch.Error())
	}
}

// An agent in this process: its metrics count what it did.
func TestAgentMetrics(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	nc, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	a, err := dist.NewAgent(ctx, nc, dist.AgentConfig{Name: "inproc", Workers: 1, CacheDir: t.TempDir(), Metrics: "127.0.0.1:0", PullWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, m := range []*dist.TaskMessage{sleepTask("ok", 0, false), sleepTask("bad", 0, true)} {
		if err := dist.PublishTask(ctx, js, m, ""); err != nil {
			t.Fatal(err)
		}
	}
	results(t, js, 2, waitTimeout)
	// The counters move after the result is published: poll.
	var body string
	waitFor(t, waitTimeout, "metrics counting both tasks", func() (bool, string) {
		resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
		return strings.Contains(body, "ppool_agent_tasks_done_total 1\n") &&
			strings.Contains(body, "ppool_agent_tasks_failed_total 1\n") &&
			strings.Contains(body, "ppool_agent_workers_free 1\n"), body
	})
	for _, want := range []string{"ppool_agent_tasks_running 0\n", "ppool_agent_workers_busy 0\n", "ppool_agent_queue_wait_seconds_count 2\n", "ppool_agent_bytes_received_total", "ppool_agent_bytes_sent_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// A task running longer than AckWait is kept by its heartbeats: delivered
// once, run once, though another worker of the agent is free to take a
// redelivery.
func TestAgentHeartbeatKeepsLongTask(t *testing.T) {
	s := startServer(t, dist.ServerConfig{})
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := dist.PublishTask(ctx, js, sleepTask("long", 3500, false), ""); err != nil {
		t.Fatal(err)
	}
	startAgent(t, s.URL(), "beating", 2)
	r := results(t, js, 1, waitTimeout)[0]
	if r.Error != "" || r.Delivery != 1 {
		t.Errorf("result %+v", r)
	}
	cons, err := js.Consumer(ctx, dist.TaskStream, dist.TaskConsumer)
	if err != nil {
		t.Fatal(err)
	}
	// The ack follows the result.
	var info *jetstream.ConsumerInfo
	waitFor(t, waitTimeout, "the task acked", func() (bool, string) {
		if info, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0, fmt.Sprintf("%d unacked", info.NumAckPending)
	})
	if info.Delivered.Consumer != 1 {
		t.Errorf("%d deliveries, want 1", info.Delivered.Consumer)
	}
}

// queueOf makes the work queue (an ack wait of 30 s) with n tasks of the
// test kind in it, t0 to t(n-1), each sleeping ms, and returns the
// agents' consumer.
func queueOf(t *testing.T, js jetstream.JetStream, n, ms int) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{AckWait: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := dist.PublishTask(ctx, js, sleepTask(fmt.Sprintf("t%d", i), ms, false), ""); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, dist.TaskStream, dist.TaskConsumer)
	if err != nil {
		t.Fatal(err)
	}
	return cons
}
