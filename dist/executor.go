package dist

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/pool"
)

// slotGrace is how long the registry must show fewer workers before a
// run's slots go down.
const slotGrace = 5 * time.Second

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validRunID reports whether id can name a run: it is a subject token.
func validRunID(id string) bool { return runIDPattern.MatchString(id) }

// RunID names a run for the work queue: the same for a run and its
// --resume (the same journal on the same machine), different for runs of
// other journals, so that runs sharing a server never see each other's
// tasks or results.
func RunID(journal string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(journal)
	if err != nil {
		abs = journal
	}
	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	return hex.EncodeToString(sum[:12])
}

// ErrDeliveriesExhausted is matched (errors.Is) by the error of a task
// that the work queue delivered MaxDeliver times without a result: its
// agents were lost (killed, cut off) or never answered within the ack wait.
// The task itself may be sound; the job's retries were not spent on it.
var ErrDeliveriesExhausted = errors.New("the work queue gave up on it")

// AgentTaskError is a task's failure on an agent, as its result reports it.
type AgentTaskError struct {
	Agent string
	Type  string // the pool's error type: RemoteError, WorkerExitError, TimeoutError, MemoryLimitError; or ""
	Msg   string
}

func (e *AgentTaskError) Error() string {
	typ := e.Type
	if typ == "" {
		typ = "failed"
	}
	return fmt.Sprintf("%s (%s on agent %s)", e.Msg, typ, e.Agent)
}

// RunConfig configures an Executor.
type RunConfig struct {
	// RunID names the run (see RunID); required.
	RunID string
	// Resume collects the results of this run's tasks that agents finished
	// while no `ppool run` was there to take them; without it, they are
	// dropped and every task runs afresh.
	Resume bool
	// Queue is the delivery policy; the run creates the queue with it.
	Queue QueueConfig
	// Dir is the jobs file's folder, which relative worker commands are
	// resolved from, as locally; "" is the current folder.
	Dir string
	// SharedRoot, if set, is a folder every agent mounts at its own
	// --shared-root: files under it travel by their place in it, not
	// through the Object Store, to agents that find the run's token there
	// (others get them as blobs).
	SharedRoot string
	// SlotPoll is how often the registry is read for the agents' workers.
	// Default 500 ms.
	SlotPoll time.Duration
	Logger   *slog.Logger
}

// Executor runs a jobs run's tasks on the agents (a jobs.Executor). It
// publishes each task it is given on the run's own subject of the work
// queue, and collects the run's results: one per task, whatever the
// number of deliveries, its output written where the task asked.
type Executor struct {
	cfg      RunConfig
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	obs      jetstream.ObjectStore
	taskSubj string
	resSubj  string
	nonce    string // this process's: task message IDs of a resumed run differ from the killed one's

	keptTasks, keptBytes atomic.Int64 // tasks published since the last keeper, and their bytes

	slots      atomic.Int64
	fewerSince time.Time // since when the registry has shown fewer workers than slots; slotLoop's
	changed    chan struct{}

	mu        sync.Mutex
	pending   map[string]*pendingTask   // by task ID
	bySeq     map[uint64]string         // task ID by stream sequence
	early     map[string]*ResultMessage // results no task was waiting for, by task ID: an earlier process's
	lastEarly uint64                    // the results stream's sequence of the last result collectEarly read
	acks      chan pubAck               // publications awaiting the server's ack
	closed    bool
	stored    map[string]bool // files known to be in the bucket, by hash
	workers   map[*jobs.WorkerSpec]*preparedWorker
	shared    *sharedRoot       // nil without SharedRoot
	inRoot    map[string]string // the run's files under the shared root: path by hash
	fileSub   *nats.Subscription
	prepSeq   int
	stop      context.CancelFunc
	runCtx    context.Context // ends at Close
	wg        sync.WaitGroup
	sub       *nats.Subscription
	results   jetstream.ConsumeContext
}

type pendingTask struct {
	id        string
	task      jobs.Task
	done      func(jobs.Completion)
	seq       uint64
	preparing bool // its files are being stored: not published yet
}

type pubAck struct {
	id    string
	fut   jetstream.PubAckFuture
	data  []byte // to publish again if it failed
	msgID string
}

// NewExecutor creates the work queue (if need be) and starts collecting
// the run's results. Close releases it.
func NewExecutor(ctx context.Context, nc *nats.Conn, cfg RunConfig) (*Executor, error) {
	if !validRunID(cfg.RunID) {
		return nil, fmt.Errorf("bad run id %q", cfg.RunID)
	}
	if cfg.SlotPoll <= 0 {
		cfg.SlotPoll = 500 * time.Millisecond
	}
	e := &Executor{
		cfg: cfg, log: cfg.Logger, nc: nc,
		taskSubj: TaskSubject + "." + cfg.RunID, resSubj: ResultSubject + "." + cfg.RunID,
		changed: make(chan struct{}, 1),
		pending: map[string]*pendingTask{}, bySeq: map[uint64]string{}, early: map[string]*ResultMessage{},
		acks: make(chan pubAck, 4096), stored: map[string]bool{}, workers: map[*jobs.WorkerSpec]*preparedWorker{}, inRoot: map[string]string{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	rand.Read(b[:])
	e.nonce = hex.EncodeToString(b[:])
	var err error
	if e.js, err = jetstream.New(nc); err != nil {
		return nil, err
	}
	if err := e.pollSlots(ctx); err != nil {
		return nil, err
	}
	// Every worker of every agent may hold a task, and wait in a pull.
	q := cfg.Queue
	if q.MaxAckPending <= 0 {
		q.MaxAckPending = 1024
	}
	q.MaxAckPending = max(q.MaxAckPending, 2*e.Slots())
	if err := CreateQueue(ctx, e.js, q); err != nil {
		return nil, err
	}
	if e.obs, err = fileBucket(ctx, e.js, true); err != nil {
		return nil, err
	}
	if e.stream, err = e.js.Stream(ctx, TaskStream); err != nil {
		return nil, fmt.Errorf("stream %s: %w", TaskStream, err)
	}
	e.keep()
	// Tasks a killed process of this run left queued are published again
	// (or collected, if done meanwhile).
	if err := e.stream.Purge(ctx, jetstream.WithPurgeSubject(e.taskSubj)); err != nil {
		return nil, fmt.Errorf("clearing the run's old tasks: %w", err)
	}
	if !cfg.Resume {
		if err := e.purgeResults(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.collectEarly(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	e.runCtx, e.stop = runCtx, stop
	if cfg.SharedRoot != "" {
		if e.shared, err = writeToken(cfg.SharedRoot, cfg.RunID); err != nil {
			stop()
			return nil, err
		}
		if e.fileSub, err = nc.Subscribe(FileSubject+"."+cfg.RunID, e.serveFiles); err != nil {
			stop()
			os.Remove(filepath.Join(e.shared.dir, e.shared.token.Name))
			return nil, err
		}
	}
	if e.sub, err = nc.Subscribe(fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", TaskStream, TaskConsumer), e.exhausted); err != nil {
		stop()
		return nil, err
	}
	e.wg.Go(func() { e.slotLoop(runCtx) })
	e.wg.Go(func() { e.ackLoop(runCtx) })
	if err := e.collect(ctx); err != nil {
		e.Close(context.Background())
		return nil, err
	}
	return e, nil
}

func (e *Executor) purgeResults(ctx context.Context) error {
	rs, err := e.js.Stream(ctx, ResultStream)
	if err == nil {
		err = rs.Purge(ctx, jetstream.WithPurgeSubject(e.resSubj))
	}
	if err != nil {
		return fmt.Errorf("clearing the run's old results: %w", err)
	}
	return nil
}

// pollSlots reads the registry: the run's slots are all the live agents'
// workers. (Runs sharing agents may each fill them: agents pull one task
// per free worker, so the surplus waits in the queue, undelivered.)
func (e *Executor) pollSlots(ctx context.Context) error {
	agents, err := ListAgents(ctx, e.js)
	if err != nil {
		return err
	}
	n := 0
	for _, a := range agents {
		n += a.Workers
	}
	// Fewer workers count only once seen for slotGrace: agents re-register
	// a moment after a server restart (the registry lives in memory), and
	// the run must not stall meanwhile. A lost agent's share meanwhile
	// waits in the queue, undelivered.
	if old := int(e.slots.Load()); n < old {
		if e.fewerSince.IsZero() {
			e.fewerSince = time.Now()
		}
		if time.Since(e.fewerSince) < slotGrace {
			return nil
		}
	}
	e.fewerSince = time.Time{}
	if e.slots.Swap(int64(n)) != int64(n) {
		select {
		case e.changed <- struct{}{}:
		default:
		}
	}
	return nil
}

func (e *Executor) slotLoop(ctx context.Context) {
	tick := time.NewTicker(e.cfg.SlotPoll)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := e.pollSlots(qctx); err != nil && ctx.Err() == nil {
				e.log.Warn("reading the agent registry", "err", err)
			}
			cancel()
		case <-ctx.Done():
			return
		}
	}
}

// collectEarly reads the results already on the run's subject: those of
// an earlier, killed process of this run (--resume), kept by task ID for
// Submit to take instead of running the task again.
func (e *Executor) collectEarly(ctx context.Context) error {
	cons, err := e.js.OrderedConsumer(ctx, ResultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{e.resSubj}})
	if err != nil {
		return fmt.Errorf("reading the run's results: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading the run's results: %w", err)
	}
	for left := info.NumPending; left > 0; {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			return fmt.Errorf("reading the run's earlier results: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading the run's earlier results: %w", err)
		}
		left, e.lastEarly = meta.NumPending, meta.Sequence.Stream
		res, err := DecodeResult(msg.Data())
		if err != nil || res.Error != "" {
			continue // failed tasks run again, as locally
		}
		e.early[res.ID] = res
	}
	if len(e.early) > 0 {
		e.log.Info("results of an earlier run collected", "tasks", len(e.early))
	}
	return nil
}

// collect starts taking the results published from now on.
func (e *Executor) collect(ctx context.Context) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{e.resSubj}}
	if e.lastEarly > 0 {
		// From where collectEarly stopped: nothing missed, nothing twice.
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, e.lastEarly+1
	}
	cons, err := e.js.OrderedConsumer(ctx, ResultStream, cfg)
	if err != nil {
		return fmt.Errorf("reading the run's results: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		res, err := DecodeResult(msg.Data())
		if err != nil {
			e.log.Warn("dropping a result", "err", err)
			return
		}
		e.mu.Lock()
		p := e.pending[res.ID]
		delete(e.pending, res.ID)
		if p != nil && p.seq != 0 {
			delete(e.bySeq, p.seq)
		}
		if p == nil && res.Error == "" {
			// A duplicate (a redelivered task's second result), the result
			// of a task withdrawn or given up on, or of one a killed
			// process of this run sent and this one has not yet: kept for
			// that last case. One result per task reaches the run.
			e.early[res.ID] = res
		}
		e.mu.Unlock()
		if p == nil {
			return
		}
		// Writing the output (a file create and rename, about a
		// millisecond) goes on beside the next results, as the local
		// pool's workers write theirs side by side.
		go func() { p.done(e.completion(p, res)) }()
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		e.log.Debug("reading results", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("reading the run's results: %w", err)
	}
	e.results = cc
	return nil
}

// completion turns a result into the run's completion, writing the
// output where the task asked for it.
func (e *Executor) completion(p *pendingTask, res *ResultMessage) jobs.Completion {
	info := pool.TaskInfo{PID: res.PID, Attempts: max(1, res.Runs), Queued: res.QueueWait, Duration: res.Duration}
	if res.Delivery > 1 {
		// Each lost delivery counts as an attempt, apart from the job's
		// retries (which are the agent pool's Runs).
		info.Attempts += int(res.Delivery) - 1
		for d := uint64(1); d < res.Delivery; d++ {
			info.RetriedAfter = append(info.RetriedAfter, fmt.Errorf("delivery %d: no result within the ack wait (its agent was lost)", d))
		}
	}
	c := jobs.Completion{Outcome: res.Outcome, Info: info, Where: res.Agent}
	c.Outcome.Output = p.task.Output
	if res.Error != "" {
		c.Err = &AgentTaskError{Agent: res.Agent, Type: res.ErrorType, Msg: res.Error}
		return c
	}
	if err := e.writeOutput(p, res); err != nil {
		c.Err = fmt.Errorf("the task succeeded on agent %s but its output could not be taken: %w", res.Agent, err)
	}
	return c
}

// writeOutput writes a result's output, checked against its hash, to the
// task's output path: through a temporary file beside it, renamed into
// place when whole.
func (e *Executor) writeOutput(p *pendingTask, res *ResultMessage) error {
	path := p.task.Output
	if p.task.Part != nil {
		path = p.task.Part.Path
	}
	hash := res.Outcome.OutputHash
	if ref := res.OutputRef; ref != nil {
		if err := ref.check(); err != nil {
			return err
		}
		if hash != "" && hash != ref.SHA256 {
			return fmt.Errorf("output stored as %s, the agent reported %s", ref.SHA256, hash)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		err := getFile(ctx, e.obs, ref.SHA256, path)
		if err == nil {
			e.mu.Lock()
			e.stored[ref.SHA256] = true // a merge may send it back
			e.mu.Unlock()
		}
		return err
	}
	if res.Output == nil && res.OutputSize > 0 {
		return fmt.Errorf("an output of %d bytes came neither inline nor stored", res.OutputSize)
	}
	if hash == "" {
		sum := sha256.Sum256(res.Output)
		hash = hex.EncodeToString(sum[:])
	}
	return writeChecked(path, hash, res.Output)
}

// exhausted handles the server's advisory for a task delivered MaxDeliver
// times: it fails the task and removes it from the stream (a work queue
// keeps such a message).
func (e *Executor) exhausted(m *nats.Msg) {
	var adv struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		return
	}
	e.mu.Lock()
	id, ok := e.bySeq[adv.StreamSeq]
	p := e.pending[id]
	if ok {
		delete(e.bySeq, adv.StreamSeq)
		delete(e.pending, id)
	}
	e.mu.Unlock()
	if p == nil {
		return // another run's
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.stream.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		e.log.Warn("removing a task the queue gave up on", "task", id, "err", err)
	}
	p.done(jobs.Completion{
		Err:  fmt.Errorf("%w: delivered %d times (the queue's MaxDeliver), each time without a result within the ack wait: its agents were lost or stalled", ErrDeliveriesExhausted, adv.Deliveries),
		Info: pool.TaskInfo{Attempts: int(adv.Deliveries)},
	})
}

// taskKey names a task within its run by its content: the same task sent
// by a resumed process of the run gets the same key (and may take the
// killed one's result); a task changed since does not.
func taskKey(m *TaskMessage) (string, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:16]), nil
}

// Slots is the live agents' workers, all together.
func (e *Executor) Slots() int { return int(e.slots.Load()) }

// SlotsChanged is signalled when agents join or leave.
func (e *Executor) SlotsChanged() <-chan struct{} { return e.changed }

// Prepare resolves a job's custom worker binary, once, and ships it if
// the job names its sha256 (see WorkerRef).
func (e *Executor) Prepare(ctx context.Context, pj *jobs.PlannedJob) error {
	if pj.Worker == nil {
		if pj.Kind.Call != nil || pj.Kind.NeedsWorker {
			return fmt.Errorf("job %q: kind %s needs a worker binary", pj.Name, pj.Kind.Name)
		}
		return nil
	}
	_, err := e.workerRef(ctx, pj)
	return err
}

// Submit publishes a task on the run's subject; done is called with its
// result.
func (e *Executor) Submit(pj *jobs.PlannedJob, task *jobs.Task, done func(jobs.Completion)) {
	m := &TaskMessage{Run: e.cfg.RunID, Task: *task, Retries: pj.Retries, Timeout: pj.Timeout}
	p := &pendingTask{task: *task, done: done}
	if pj.Worker != nil {
		ref, err := e.workerRef(context.Background(), pj) // resolved by Prepare
		if err != nil {
			go done(jobs.Completion{Err: err})
			return
		}
		m.Worker = ref
	}
	paths := taskFiles(task)
	if len(paths) == 0 {
		e.send(p, m)
		return
	}
	// Files are hashed and stored off the run's goroutine. Meanwhile the
	// task waits under a provisional ID, for Withdraw and Kill to find.
	e.mu.Lock()
	e.prepSeq++
	p.id, p.preparing = fmt.Sprintf("preparing %d", e.prepSeq), true
	e.pending[p.id] = p
	e.mu.Unlock()
	go func() {
		m.Files = make(map[string]*FileRef, len(paths))
		for _, path := range paths {
			hash, size, err := hashFile(path)
			if err != nil {
				e.drop(p, err)
				return
			}
			m.Files[path] = &FileRef{SHA256: hash, Size: size}
			if e.shared == nil {
				continue
			}
			if rel := e.shared.rel(path); rel != "" {
				// Read in place by agents that see the root; asked for
				// as a blob by others.
				m.Files[path].Shared, m.Shared = rel, &e.shared.token
				e.mu.Lock()
				e.inRoot[hash] = path
				e.mu.Unlock()
			}
		}
		e.mu.Lock()
		still := e.pending[p.id] == p
		delete(e.pending, p.id)
		e.mu.Unlock()
		if still {
			e.send(p, m)
		}
	}()
}

// send names a task by its content, takes its earlier result if a killed
// process of the run left one, else stores its files and publishes it.
func (e *Executor) send(p *pendingTask, m *TaskMessage) {
	// The token is the process's own: a resumed run's task is the same
	// task.
	tok := m.Shared
	m.Shared = nil
	key, err := taskKey(m)
	m.Shared = tok
	if err != nil {
		go p.done(jobs.Completion{Err: err})
		return
	}
	m.ID = e.cfg.RunID + "." + key
	p.id = m.ID
	e.mu.Lock()
	if res := e.early[m.ID]; res != nil {
		// Finished by an agent while no process of this run was there.
		delete(e.early, m.ID)
		e.mu.Unlock()
		go func() { p.done(e.completion(p, res)) }()
		return
	}
	e.pending[m.ID] = p
	p.preparing = len(m.Files) > 0
	e.mu.Unlock()
	if !p.preparing {
		e.publish(p, m)
		return
	}
	go func() {
		err := e.storeFiles(m)
		e.mu.Lock()
		withdrawn := e.pending[p.id] != p
		p.preparing = false
		e.mu.Unlock()
		if withdrawn {
			return
		}
		if err != nil {
			e.drop(p, err)
			return
		}
		e.publish(p, m)
	}()
}

// taskFiles lists the files a task reads: its inputs, a merge's parts.
func taskFiles(t *jobs.Task) []string {
	var paths []string
	for _, in := range t.Inputs {
		if in.Path != "" {
			paths = append(paths, in.Path)
		}
	}
	for _, p := range t.Parts {
		paths = append(paths, p.Path)
	}
	return paths
}

// drop fails a pending task.
func (e *Executor) drop(p *pendingTask, err error) {
	e.mu.Lock()
	still := e.pending[p.id] == p
	delete(e.pending, p.id)
	e.mu.Unlock()
	if still {
		p.done(jobs.Completion{Err: err})
	}
}

// storeFiles makes the files a task reads travel with it: small ones
// inline, others stored in the bucket under their hash (once).
func (e *Executor) storeFiles(m *TaskMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inline := 0
	for path, f := range m.Files {
		if f.Shared != "" {
			continue // read in place, or asked for
		}
		if f.Size <= InlineFileLimit && inline+int(f.Size) <= InlineTaskLimit {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			f.SHA256, f.Size, f.Data = hex.EncodeToString(sum[:]), int64(len(data)), data
			inline += len(data)
			continue
		}
		e.mu.Lock()
		stored := e.stored[f.SHA256]
		e.mu.Unlock()
		if stored {
			continue
		}
		if err := putFile(ctx, e.obs, path, f.SHA256); err != nil {
			return fmt.Errorf("storing %s: %w", path, err)
		}
		e.mu.Lock()
		e.stored[f.SHA256] = true
		e.mu.Unlock()
	}
	return nil
}

// publish puts a task on the queue.
func (e *Executor) publish(p *pendingTask, m *TaskMessage) {
	if err := m.check(); err != nil {
		e.drop(p, err)
		return
	}
	data, err := EncodeTask(m)
	if err != nil {
		e.drop(p, fmt.Errorf("encoding the task: %w", err))
		return
	}
	msgID := m.ID + ":" + e.nonce
	fut, err := e.publishAsync(data, msgID)
	if err != nil {
		e.wg.Go(func() { e.republish(p, data, msgID, err) })
		return
	}
	e.acks <- pubAck{id: m.ID, fut: fut, data: data, msgID: msgID}
	if e.keptTasks.Add(1) >= keepEvery || e.keptBytes.Add(int64(len(data))) >= keepEveryBytes {
		e.keep()
	}
}

// Every keepEvery tasks or keepEveryBytes of them a run stores a new
// keeper: a block of the server's file store holds 4 MiB of messages
// (and the deletion records of those acked), so the keeper is in the
// block tasks go to but for a few hundred tasks after the store starts a
// new one.
const (
	keepEvery      = 512
	keepEveryBytes = 512 << 10
)

// keep stores a new keeper message (KeeperSubject) in the task stream,
// which replaces the last. The server's file store deletes a block file
// as its last message is removed, and a work queue that empties after
// each ack (as one does whenever the agents keep up) had it create a new
// file and delete it for nearly every task: 8% of the CPU of a run and
// its embedded server on tiny tasks here, and on ext4 without a journal
// each deleted file slows every file created in the next 30 s. The
// keeper, never delivered and never acked, keeps the block in use. Lost,
// it costs only that: no ack is awaited.
func (e *Executor) keep() {
	e.keptTasks.Store(0)
	e.keptBytes.Store(0)
	m := nats.NewMsg(KeeperSubject)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = []byte(e.cfg.RunID)
	if err := e.nc.PublishMsg(m); err != nil {
		e.log.Debug("storing the queue's keeper", "err", err)
	}
}

// republishFor bounds how long a task's publication is retried (the
// server restarting, the connection lost) before the task fails.
const republishFor = 2 * time.Minute

// republish publishes a task whose publication failed, until the server
// takes it, the task is no longer pending, or the executor closes. The
// message ID is the same: the server drops a copy it already has.
func (e *Executor) republish(p *pendingTask, data []byte, msgID string, err error) {
	deadline := time.Now().Add(republishFor)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		still := e.pending[p.id] == p
		e.mu.Unlock()
		if !still || !sleepCtx(e.runCtx, 250*time.Millisecond) {
			return
		}
		ctx, cancel := context.WithTimeout(e.runCtx, 5*time.Second)
		var ack *jetstream.PubAck
		ack, err = e.js.Publish(ctx, e.taskSubj, data, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			e.mu.Lock()
			if e.pending[p.id] == p {
				p.seq = ack.Sequence
				e.bySeq[ack.Sequence] = p.id
			}
			e.mu.Unlock()
			return
		}
	}
	e.drop(p, fmt.Errorf("publishing the task for %v: %w", republishFor, err))
}

// publishAsync publishes, waiting out the library's back-pressure (too
// many publications awaiting their acks) rather than failing the task.
func (e *Executor) publishAsync(data []byte, msgID string) (jetstream.PubAckFuture, error) {
	for attempt := 0; ; attempt++ {
		fut, err := e.js.PublishAsync(e.taskSubj, data, jetstream.WithMsgID(msgID))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || attempt == 20 {
			return fut, err
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(time.Second):
		}
	}
}

// ackLoop takes the server's acks of published tasks: the stream sequence
// names the task in advisories and withdrawals; a publication that failed
// fails its task.
func (e *Executor) ackLoop(ctx context.Context) {
	for a := range e.acks {
		var err error
		var seq uint64
		select {
		case ack := <-a.fut.Ok():
			seq = ack.Sequence
		case err = <-a.fut.Err():
		case <-ctx.Done():
			continue // closed: the connection may be gone with its acks
		}
		e.mu.Lock()
		p := e.pending[a.id]
		if p != nil && err == nil {
			p.seq = seq
			e.bySeq[seq] = a.id
		}
		e.mu.Unlock()
		if p != nil && err != nil {
			e.wg.Go(func() { e.republish(p, a.data, a.msgID, err) })
		}
	}
}

// Withdraw removes from the queue the run's tasks no agent has taken yet;
// each completes with jobs.ErrWithdrawn. Tasks already delivered run on.
func (e *Executor) Withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Every publication acked first, so that each task has its sequence.
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx.Done():
	}
	e.syncAcks(ctx)
	cons, err := e.js.Consumer(ctx, TaskStream, TaskConsumer)
	var info *jetstream.ConsumerInfo
	if err == nil {
		info, err = cons.Info(ctx)
	}
	if err != nil {
		e.log.Warn("withdrawing queued tasks", "err", err)
		return
	}
	// One consumer delivers the stream in order: what lies past its last
	// delivered sequence has not been delivered.
	delivered := info.Delivered.Stream
	e.mu.Lock()
	var queued []*pendingTask
	for id, p := range e.pending {
		switch {
		case p.preparing:
			// Not published yet, and now never: its goroutine finds it
			// gone.
			delete(e.pending, id)
			go p.done(jobs.Completion{Err: jobs.ErrWithdrawn})
		case p.seq > delivered:
			queued = append(queued, p)
		}
	}
	e.mu.Unlock()
	for _, p := range queued {
		if err := e.stream.DeleteMsg(ctx, p.seq); err != nil {
			continue // delivered meanwhile: it runs
		}
		e.mu.Lock()
		_, still := e.pending[p.id]
		delete(e.pending, p.id)
		delete(e.bySeq, p.seq)
		e.mu.Unlock()
		if still {
			go p.done(jobs.Completion{Err: jobs.ErrWithdrawn})
		}
	}
}

// syncAcks waits until ackLoop has taken every ack published so far.
func (e *Executor) syncAcks(ctx context.Context) {
	for {
		e.mu.Lock()
		n := 0
		for _, p := range e.pending {
			if p.seq == 0 && !p.preparing {
				n++
			}
		}
		e.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// Kill gives up on every task of the run: they complete with an error,
// those still queued are removed, and agents cancel those they run.
func (e *Executor) Kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.nc.Publish(CancelSubject+"."+e.cfg.RunID, nil)
	if err == nil {
		err = e.nc.FlushWithContext(ctx)
	}
	if err != nil {
		e.log.Warn("cancelling the run's running tasks", "err", err)
	}
	if err := e.stream.Purge(ctx, jetstream.WithPurgeSubject(e.taskSubj)); err != nil {
		e.log.Warn("removing the run's queued tasks", "err", err)
	}
	e.mu.Lock()
	pending := e.pending
	e.pending = map[string]*pendingTask{}
	e.bySeq = map[uint64]string{}
	e.mu.Unlock()
	for _, p := range pending {
		go p.done(jobs.Completion{Err: errors.New("given up: the run was interrupted twice")})
	}
}

// Close stops collecting results; once every task had its result, it
// removes the run's results from the server (they are in the journal).
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	left := len(e.pending)
	e.mu.Unlock()
	if e.results != nil {
		e.results.Stop()
	}
	if e.sub != nil {
		e.sub.Unsubscribe()
	}
	if e.fileSub != nil {
		e.fileSub.Unsubscribe()
	}
	if e.shared != nil {
		os.Remove(filepath.Join(e.shared.dir, e.shared.token.Name))
	}
	e.stop()
	close(e.acks)
	e.wg.Wait()
	if left > 0 {
		return nil
	}
	if err := e.stream.Purge(ctx, jetstream.WithPurgeSubject(e.taskSubj)); err != nil {
		return fmt.Errorf("clearing the run's tasks: %w", err)
	}
	return e.purgeResults(ctx)
}
