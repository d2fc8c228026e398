package dist_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ppool/ppool/dist"
)

// An embedded server on a free loopback port, a client, the work queue,
// and the (empty) list of agents.
func ExampleStartServer() {
	store, err := os.MkdirTemp("", "ppool-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(store)
	s, err := dist.StartServer(dist.ServerConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		panic(err)
	}
	defer s.Shutdown()
	nc, err := dist.Connect(dist.ConnOptions{URL: s.URL()})
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := dist.CreateQueue(ctx, js, dist.QueueConfig{}); err != nil {
		panic(err)
	}
	agents, err := dist.ListAgents(ctx, js)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(agents), "agents")
	// Output: 0 agents
}
