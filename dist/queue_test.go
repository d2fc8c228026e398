package dist_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
)

// A work queue that empties after every task (one worker, one task out at
// a time) keeps its file store's block: the server made a new block file
// and deleted the old for most tasks (27 for 40 tasks) until the run kept
// a message in the stream that no agent is given. The keeper is never
// delivered, and every task is done once.
func TestQueueKeepsItsBlockFile(t *testing.T) {
	store := t.TempDir()
	s, err := dist.StartServer(dist.ServerConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	startAgent(t, s.URL(), "a1", 1)
	const n = 40
	plan, dir := planOf(t, fmt.Sprintf("jobs:\n  - name: tiny\n    kind: test.sleep\n    count: %d\n", n))
	sum, results := runOn(t, s.URL(), plan, dir, dist.RunConfig{}, false)
	if sum.OK != n || len(results) != n {
		t.Fatalf("%d of %d tasks done, %d results", sum.OK, n, len(results))
	}
	for _, r := range results {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Task, r.Error)
		}
	}
	blocks, err := filepath.Glob(filepath.Join(store, "jetstream", "*", "streams", dist.TaskStream, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no block files of %s in %s (%v)", dist.TaskStream, store, err)
	}
	newest := 0
	for _, b := range blocks {
		i, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(b), ".blk"))
		if err != nil {
			t.Fatalf("block file %s", b)
		}
		newest = max(newest, i)
	}
	if newest > 3 {
		t.Errorf("the work queue's store made %d block files for %d tasks, want at most 3", newest, n)
	}
	_, js := connect(t, dist.ConnOptions{URL: s.URL()})
	info := taskConsumerInfo(t, js)
	if info.NumPending != 0 || info.NumAckPending != 0 || info.Delivered.Consumer != n {
		t.Errorf("consumer: %d pending, %d unacked, %d delivered; want 0, 0, %d", info.NumPending, info.NumAckPending, info.Delivered.Consumer, n)
	}
}

// queuedTasks counts the tasks in the work queue: its messages but the
// keeper.
// taskConsumerInfo is the state of the work queue's consumer.
func taskConsumerInfo(t testing.TB, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := js.Consumer(context.Background(), dist.TaskStream, dist.TaskConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func queuedTasks(ctx context.Context, stream jetstream.Stream) (uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(dist.TaskSubject+".>"))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}
