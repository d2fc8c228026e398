package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AgentBucket is the KV bucket where live agents register.
const AgentBucket = "ppool_agents"

// DefaultAgentTTL is the registry's TTL when an agent creates the bucket:
// an agent that stops refreshing its entry (killed, cut off) leaves the
// list within it. Agents refresh every TTL/4.
const DefaultAgentTTL = 10 * time.Second

// AgentInfo is what an agent says about itself in the registry.
type AgentInfo struct {
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Cores    int       `json:"cores"`
	Workers  int       `json:"workers"`
	Free     int       `json:"free_workers"`
	Load     float64   `json:"load"` // one-minute load average
	Version  string    `json:"version"`
	LastSeen time.Time `json:"last_seen"`
}

// agentBucket returns the registry bucket, creating it with ttl if it does
// not exist yet. An existing bucket keeps its own TTL.
func agentBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, AgentBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	if ttl <= 0 {
		ttl = DefaultAgentTTL
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      AgentBucket,
		Description: "live ppool agents",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.MemoryStorage, // refreshed every few seconds: nothing to keep
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, AgentBucket) // another agent made it first
	}
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	return kv, nil
}

// ListAgents returns the live agents, by name: the entries of the
// registry, which the server removes once an agent has not refreshed its
// own for the bucket's TTL.
func ListAgents(ctx context.Context, js jetstream.JetStream) ([]AgentInfo, error) {
	kv, err := js.KeyValue(ctx, AgentBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil // no agent ever registered
	}
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	ttl := status.TTL()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	defer w.Stop()
	var agents []AgentInfo
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, fmt.Errorf("agent registry: %w", ctx.Err())
		}
		if e == nil {
			break // the initial values are all in
		}
		// The server removes an entry once it is TTL old (promptly: the
		// registry test holds it to TTL + 1 s). This only hides entries it
		// failed to remove, long past: the entry's time is the server's,
		// this machine's clock may be off by a few seconds.
		if ttl > 0 && time.Since(e.Created()) > 2*ttl {
			continue
		}
		var a AgentInfo
		if err := json.Unmarshal(e.Value(), &a); err != nil {
			continue // not written by an agent of ours
		}
		agents = append(agents, a)
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	return agents, nil
}
