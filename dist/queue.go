package dist

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/jobs"
)

// The work queue and the results, as JetStream names them. One durable
// consumer serves every agent: a work-queue stream allows one consumer per
// subject, so whoever publishes tasks creates it (CreateQueue) and agents
// only bind to it. A run's tasks go on TaskSubject.RUN and their results
// on ResultSubject.RUN, so that runs sharing a server and its agents never
// see each other's.
const (
	TaskStream    = "PPOOL_TASKS"
	TaskSubject   = "ppool.tasks"
	TaskConsumer  = "ppool_agents"
	ResultStream  = "PPOOL_RESULTS"
	ResultSubject = "ppool.results"
	// CancelSubject.RUN (core NATS, not a stream) tells agents that run
	// RUN gave up its running tasks: they cancel them, and drop them
	// without a result.
	CancelSubject = "ppool.cancel"
	// KeeperSubject holds one message in the task stream that no agent is
	// given (the consumer takes TaskSubject's only), so that the queue
	// never empties; see Executor.keep.
	KeeperSubject = "ppool.queue-keeper"
)

// QueueConfig is the delivery policy of the work queue.
type QueueConfig struct {
	// AckWait is how long a delivered task may go without an ack or an
	// InProgress heartbeat before the server gives it to another agent.
	// Agents heartbeat every AckWait/3. Default 30 s.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one task, counting those lost with
	// their agent; it is not the job's retries. Default 5.
	MaxDeliver int
	// MaxAckPending bounds the tasks delivered and not yet acked across all
	// agents; it must be at least the total of their workers. Default 1024.
	MaxAckPending int
}

// CreateQueue creates (or updates) the task and result streams and the
// agents' consumer.
func CreateQueue(ctx context.Context, js jetstream.JetStream, cfg QueueConfig) error {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 1024
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      TaskStream,
		Subjects:  []string{TaskSubject, TaskSubject + ".>", KeeperSubject},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		// A new keeper replaces the last (Nats-Rollup: sub).
		AllowRollup: true,
	}); err != nil {
		return fmt.Errorf("creating stream %s: %w", TaskStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     ResultStream,
		Subjects: []string{ResultSubject, ResultSubject + ".>"},
		Storage:  jetstream.FileStorage,
		// A run purges its results when it ends; these are the results of
		// runs killed and never resumed.
		MaxAge: 7 * 24 * time.Hour,
	}); err != nil {
		return fmt.Errorf("creating stream %s: %w", ResultStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, TaskStream, jetstream.ConsumerConfig{
		Durable:        TaskConsumer,
		FilterSubjects: []string{TaskSubject, TaskSubject + ".>"}, // not KeeperSubject
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
		// Every free worker of every agent may wait in a pull at once.
		MaxWaiting: cfg.MaxAckPending,
	}); err != nil {
		return fmt.Errorf("creating consumer %s: %w", TaskConsumer, err)
	}
	return nil
}

// TaskMessage is one task on the work queue: data only. An agent runs it
// with a job kind built into its own binary, and writes only into its own
// cache folder, whatever paths the task names.
type TaskMessage struct {
	// ID names the task in its run; its result carries it back.
	ID string `msgpack:"id"`
	// Run names the run that sent it (see RunID): its result goes on
	// ResultSubject.RUN. Empty: on ResultSubject.
	Run  string    `msgpack:"run,omitempty"`
	Task jobs.Task `msgpack:"task"`
	// Files are the files the task reads (its inputs; a merge's parts), by
	// the path the task names each with.
	Files map[string]*FileRef `msgpack:"files,omitempty"`
	// Shared is the token that proves the run's shared root, when files
	// travel by their place in it (FileRef.Shared).
	Shared *SharedToken `msgpack:"shared,omitempty"`
	// Worker is the job's custom worker binary, if it has one.
	Worker  *WorkerRef    `msgpack:"worker,omitempty"`
	Retries int           `msgpack:"retries,omitempty"` // the job's own retries, on the agent's pool
	Timeout time.Duration `msgpack:"timeout,omitempty"`
}

// maxIDLen bounds a task ID: it becomes part of a message ID.
const maxIDLen = 512

// DecodeTask decodes and checks a task message: the bytes come from the
// network, so anything the agent cannot run as it is says why here.
func DecodeTask(data []byte) (*TaskMessage, error) {
	if err := checkMessage(data); err != nil {
		return nil, fmt.Errorf("undecodable task message: %w", err)
	}
	var m TaskMessage
	if err := msgpack.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("undecodable task message: %w", err)
	}
	if err := m.check(); err != nil {
		return &m, err
	}
	return &m, nil
}

func (m *TaskMessage) check() error {
	if !validID(m.ID) {
		return fmt.Errorf("task message: bad id %q", truncate(m.ID, 64))
	}
	if m.Run != "" && !validRunID(m.Run) {
		return fmt.Errorf("task %s: bad run %q", m.ID, truncate(m.Run, 64))
	}
	t := &m.Task
	k, ok := jobs.LookupKind(t.Kind)
	if !ok {
		return fmt.Errorf("task %s: this agent has no job kind %q", m.ID, truncate(t.Kind, 64))
	}
	if (k.Call != nil || k.NeedsWorker) && m.Worker == nil {
		return fmt.Errorf("task %s: kind %s runs a custom worker binary, and the task names none", m.ID, t.Kind)
	}
	if m.Worker != nil {
		if err := m.Worker.check(); err != nil {
			return fmt.Errorf("task %s: %w", m.ID, err)
		}
	}
	switch {
	case t.Mode == "run" && t.Part == nil && len(t.Parts) == 0:
	case t.Mode == "part" && t.Part != nil && len(t.Parts) == 0:
	case t.Mode == "merge" && t.Part == nil && len(t.Parts) > 0 && k.Merge != nil:
	default:
		return fmt.Errorf("task %s: mode %q with %d parts: not a task the agent can run", m.ID, truncate(t.Mode, 16), len(t.Parts))
	}
	// Every file the task reads travels with it, by content: the agent
	// reads nothing of its own machine's by the names a message gives.
	for slot, in := range t.Inputs {
		if in.Path != "" && m.Files[in.Path] == nil {
			return fmt.Errorf("task %s: input %s names file %s, which the task message does not carry", m.ID, slot, truncate(in.Path, 128))
		}
	}
	for _, p := range t.Parts {
		if m.Files[p.Path] == nil {
			return fmt.Errorf("task %s: part %d (%s) is not carried by the task message", m.ID, p.Index, truncate(p.Path, 128))
		}
	}
	for path, f := range m.Files {
		if f == nil {
			return fmt.Errorf("task %s: file %s without content", m.ID, truncate(path, 128))
		}
		if err := f.check(); err != nil {
			return fmt.Errorf("task %s: %w", m.ID, err)
		}
		if f.Shared != "" && m.Shared == nil {
			return fmt.Errorf("task %s: file %s of a shared root without its token", m.ID, truncate(f.Shared, 128))
		}
	}
	if m.Shared != nil {
		if err := m.Shared.check(); err != nil {
			return fmt.Errorf("task %s: %w", m.ID, err)
		}
	}
	if m.Retries < 0 || m.Timeout < 0 {
		return fmt.Errorf("task %s: negative retries or timeout", m.ID)
	}
	return nil
}

// validID reports whether a task ID can name a result: it goes into the
// result's message ID.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLen && utf8.ValidString(id) && strings.IndexFunc(id, unicode.IsControl) < 0
}

// outputName is the file name a task's output gets in the agent's cache:
// the extension the task asks for if its kind writes it, else the kind's
// default. Nothing else of the requested path is used.
func outputName(t *jobs.Task) string {
	k, _ := jobs.LookupKind(t.Kind)
	ext := strings.TrimPrefix(path.Ext(t.Output), ".")
	for _, e := range k.Outputs {
		if e == ext {
			return "output." + e
		}
	}
	return "output." + k.Outputs[0]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// EncodeTask encodes a task message.
func EncodeTask(m *TaskMessage) ([]byte, error) { return msgpack.Marshal(m) }

// PublishTask puts a task on the work queue. msgID, if set, is the
// server's deduplication key (Nats-Msg-Id).
func PublishTask(ctx context.Context, js jetstream.JetStream, m *TaskMessage, msgID string) error {
	data, err := EncodeTask(m)
	if err != nil {
		return fmt.Errorf("task %s: %w", m.ID, err)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := js.Publish(ctx, TaskSubject, data, opts...); err != nil {
		return fmt.Errorf("publishing task %s: %w", m.ID, err)
	}
	return nil
}

// ResultMessage is what an agent reports about one delivery of a task.
type ResultMessage struct {
	ID string `msgpack:"id"`
	// Delivery is the work queue's delivery count: 2 or more when an agent
	// was lost with the task. Runs counts the agent pool's own attempts
	// (the job's retries).
	Delivery uint64 `msgpack:"delivery"`
	// Seq is the task message's stream sequence: a task published again
	// (a resumed run) is a new message, and its result must not be taken
	// for a duplicate of the old one's.
	Seq  uint64 `msgpack:"seq"`
	Runs int    `msgpack:"runs"`
	// PID is the agent's worker that ran it last; Duration its run time
	// there, as the agent's pool measured it.
	PID      int           `msgpack:"pid,omitempty"`
	Duration time.Duration `msgpack:"duration,omitempty"`
	Agent    string        `msgpack:"agent"`
	Host     string        `msgpack:"host"`
	// Outcome is the kind's report; its Output is the path the task asked
	// for, not where the agent wrote it.
	Outcome jobs.Outcome `msgpack:"outcome"`
	// Output holds the output's bytes when small enough to travel inline
	// (a part's output, for a part); else OutputRef names it in FileBucket.
	Output     []byte   `msgpack:"output,omitempty"`
	OutputRef  *FileRef `msgpack:"output_ref,omitempty"`
	OutputSize int64    `msgpack:"output_size"`
	// Error is the failure's message; ErrorType its pool type
	// ("RemoteError", "WorkerExitError", "TimeoutError",
	// "MemoryLimitError") or "" for others.
	Error     string        `msgpack:"error,omitempty"`
	ErrorType string        `msgpack:"error_type,omitempty"`
	QueueWait time.Duration `msgpack:"queue_wait"`
	RunTime   time.Duration `msgpack:"run_time"`
}

// DecodeResult decodes a result message.
func DecodeResult(data []byte) (*ResultMessage, error) {
	if err := checkMessage(data); err != nil {
		return nil, fmt.Errorf("undecodable result message: %w", err)
	}
	var r ResultMessage
	if err := msgpack.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("undecodable result message: %w", err)
	}
	if r.ID == "" {
		return nil, errors.New("result message without a task id")
	}
	return &r, nil
}

// messageDepth bounds how deeply a task or result message may nest: a
// task's arguments may nest ipc.MaxArgDepth levels, under the message,
// its task and its params.
const messageDepth = ipc.MaxDepth + 8

// checkMessage refuses, before decoding, bytes that are not one
// well-formed msgpack value or that nest deeper than messageDepth: a
// message of a million nested one-byte arrays took over a second and
// hundreds of MB to decode.
func checkMessage(data []byte) error { return ipc.CheckDepth(data, messageDepth) }
