package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// taskFunc is the worker function behind every built-in job kind: the one
// `ppool run` sends its tasks to (jobs/worker.go registers it).
var taskFunc = workerproc.Remote[jobs.Task, jobs.Outcome]("jobs.task")

// InlineOutputLimit is the largest output that travels inside its result
// message, well under the server's default 1 MiB max_payload.
const InlineOutputLimit = 256 << 10

// AgentConfig configures an agent. The zero value is a good agent: one
// worker per core, named after its host and pid, its cache in the user's
// cache folder.
type AgentConfig struct {
	// Name identifies the agent in the registry and in results: letters,
	// digits and -_=/. only. Default HOST-PID.
	Name string
	// Workers is the size of the agent's pool; 0 means one per usable core.
	Workers int
	// CacheDir is the only folder the agent writes task outputs to.
	// Default: ppool/agent in the user's cache folder.
	CacheDir string
	// Metrics, if set, is the HOST:PORT to serve Prometheus metrics on, at
	// /metrics.
	Metrics string
	// Version is the ppool version the agent reports.
	Version string
	// RegistryTTL is the registry's TTL if this agent creates the bucket.
	// Default DefaultAgentTTL.
	RegistryTTL time.Duration
	// ShutdownGrace is how long running tasks may go on after the agent is
	// told to stop, before they are cancelled and handed back. Default 10 s.
	ShutdownGrace time.Duration
	// PullWait is how long one pull waits for a task. A stopping agent
	// waits for its outstanding pulls to expire rather than abandon them (a
	// task delivered to an abandoned pull would sit out its AckWait), so
	// this bounds how long a stop takes with idle workers. Default 1 s.
	PullWait time.Duration
	// SharedRoot, if set, is where this machine mounts the folder that a
	// run's --shared-root names on its own: the agent reads a run's files
	// there in place once it found the run's token there (else they come
	// through the Object Store). The agent never writes there.
	SharedRoot string
	// NoFetchWorkers refuses custom worker binaries shipped by runs: only
	// those the agent has at the path a job names run here.
	NoFetchWorkers bool
	// Pool configures the agent's local pool; its Workers and Logger are
	// set from here.
	Pool pool.Config
	// Logger receives the agent's log; default slog.Default().
	Logger *slog.Logger
}

// Agent takes tasks from the work queue and runs them on a local pool,
// pulling one task per free worker and never more.
type Agent struct {
	cfg     AgentConfig
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	ttl     time.Duration
	pool    *pool.Pool
	metrics *metrics
	msrv    *metricsServer
	host    string
	free    atomic.Int64
	// hurry is closed by CancelRunning: a stopping agent cancels its
	// running tasks without waiting out ShutdownGrace.
	hurry     chan struct{}
	hurryOnce sync.Once
	runMu     sync.Mutex
	running   map[*TaskMessage]runningTask
	// workerPools run jobs' custom worker binaries, by WorkerRef.key.
	workerPools map[string]*pool.Pool
	obsMu       sync.Mutex
	obs         jetstream.ObjectStore
	fetching    map[string]*sync.Mutex // by cache path
	proved      map[string]bool        // whether a run's shared root is this agent's, by run and token
}

var validName = regexp.MustCompile(`^[-_=/a-zA-Z0-9][-_=/.a-zA-Z0-9]*$`)

// NewAgent starts an agent's pool and metrics server and registers it.
// Run must follow: it serves until its context ends and then releases
// everything NewAgent took.
func NewAgent(ctx context.Context, nc *nats.Conn, cfg AgentConfig) (*Agent, error) {
	a := &Agent{cfg: cfg, log: cfg.Logger, nc: nc, hurry: make(chan struct{})}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.host, _ = os.Hostname()
	if a.cfg.Name == "" {
		host := regexp.MustCompile(`[^-_a-zA-Z0-9]`).ReplaceAllString(a.host, "_")
		a.cfg.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if !validName.MatchString(a.cfg.Name) || strings.HasSuffix(a.cfg.Name, ".") {
		return nil, fmt.Errorf("--name %q: use letters, digits and -_=/. only, not starting or ending with a dot", a.cfg.Name)
	}
	if a.cfg.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no --cache given and no cache folder: %w", err)
		}
		a.cfg.CacheDir = filepath.Join(dir, "ppool", "agent")
	}
	if a.cfg.SharedRoot != "" {
		abs, err := filepath.Abs(a.cfg.SharedRoot)
		if err != nil {
			return nil, fmt.Errorf("--shared-root: %w", err)
		}
		a.cfg.SharedRoot = abs
	}
	if err := os.MkdirAll(filepath.Join(a.cfg.CacheDir, "out"), 0o700); err != nil {
		return nil, fmt.Errorf("agent cache: %w", err)
	}
	if a.cfg.ShutdownGrace <= 0 {
		a.cfg.ShutdownGrace = 10 * time.Second
	}
	if a.cfg.PullWait <= 0 {
		a.cfg.PullWait = time.Second
	}
	var err error
	if a.js, err = jetstream.New(nc); err != nil {
		return nil, err
	}
	if a.kv, err = agentBucket(ctx, a.js, a.cfg.RegistryTTL); err != nil {
		return nil, err
	}
	status, err := a.kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	if a.ttl = status.TTL(); a.ttl <= 0 {
		return nil, fmt.Errorf("agent registry: bucket %s has no TTL, so dead agents would stay listed", AgentBucket)
	}
	if a.cfg.Workers <= 0 {
		a.cfg.Workers = runtime.GOMAXPROCS(0) // the pool's own default
	}
	pcfg := a.cfg.Pool
	pcfg.Workers = a.cfg.Workers
	pcfg.Logger = a.log
	if a.pool, err = pool.New(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("agent pool: %w", err)
	}
	a.free.Store(int64(a.cfg.Workers))
	a.metrics = newMetrics(a.cfg.Workers)
	if a.cfg.Metrics != "" {
		if a.msrv, err = serveMetrics(a.cfg.Metrics, a.metrics.reg); err != nil {
			a.closePool()
			return nil, err
		}
	}
	if err := a.register(ctx); err != nil {
		a.release()
		return nil, err
	}
	return a, nil
}

// Name is the agent's name in the registry.
func (a *Agent) Name() string { return a.cfg.Name }

// MetricsAddr is where metrics are served ("" if they are not).
func (a *Agent) MetricsAddr() string {
	if a.msrv == nil {
		return ""
	}
	return a.msrv.addr()
}

func (a *Agent) info() AgentInfo {
	info := AgentInfo{
		Name: a.cfg.Name, Host: a.host, PID: os.Getpid(), Cores: runtime.NumCPU(),
		Workers: a.cfg.Workers, Free: int(a.free.Load()), Version: a.cfg.Version,
		LastSeen: time.Now().UTC(),
	}
	if avg, err := load.Avg(); err == nil {
		info.Load = avg.Load1
	}
	return info
}

func (a *Agent) register(ctx context.Context) error {
	data, err := json.Marshal(a.info())
	if err != nil {
		return err
	}
	if _, err := a.kv.Put(ctx, a.cfg.Name, data); err != nil {
		return fmt.Errorf("registering agent %s: %w", a.cfg.Name, err)
	}
	return nil
}

// Run serves tasks until ctx ends, then stops: it leaves the registry,
// pulls no more, hands back (Nak) a task that arrives after the stop,
// lets running tasks finish for ShutdownGrace and then cancels and hands
// them back, and closes the pool.
func (a *Agent) Run(ctx context.Context) error {
	defer a.release()
	// Running tasks outlive ctx by ShutdownGrace.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()

	var wg sync.WaitGroup
	wg.Go(func() { a.refresh(ctx) })
	if sub, err := a.nc.Subscribe(CancelSubject+".*", a.giveUp); err != nil {
		a.log.Warn("runs cannot cancel their tasks here", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	slotsDone := make(chan struct{})
	var slots sync.WaitGroup
	if cons, err := a.bind(ctx); err == nil {
		// Heartbeats go on while running tasks finish after ctx ended.
		ackWait := cons.CachedInfo().Config.AckWait
		wg.Go(func() { a.heartbeat(slotsDone, ackWait) })
		for range a.cfg.Workers {
			p, err := newPuller(a.nc, a.cfg.PullWait)
			if err != nil {
				a.log.Error("a worker takes no tasks", "err", err)
				continue
			}
			slots.Go(func() {
				defer p.close()
				a.slot(ctx, runCtx, p)
			})
		}
	}
	<-ctx.Done()
	a.log.Info("agent stopping", "agent", a.cfg.Name)
	go func() { slots.Wait(); close(slotsDone) }()
	defer wg.Wait()
	grace := time.NewTimer(a.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-slotsDone:
	case <-grace.C:
		a.log.Info("cancelling running tasks to hand them back", "agent", a.cfg.Name)
		cancelRun()
		<-slotsDone
	case <-a.hurry:
		a.log.Info("cancelling running tasks to hand them back", "agent", a.cfg.Name)
		cancelRun()
		<-slotsDone
	}
	// Naks are sent without waiting for an answer: make sure the server
	// has them before the process exits.
	if err := a.nc.FlushTimeout(5 * time.Second); err != nil {
		a.log.Warn("handing back tasks", "err", err)
	}
	return nil
}

// CancelRunning makes a stopping agent (or one that stops later) cancel
// its running tasks and hand them back at once, as a second Ctrl-C does.
func (a *Agent) CancelRunning() { a.hurryOnce.Do(func() { close(a.hurry) }) }

// refresh keeps the registry entry alive until ctx ends, then deletes it so
// that the agent leaves `ppool agents` at once.
func (a *Agent) refresh(ctx context.Context) {
	tick := time.NewTicker(a.ttl / 4)
	defer tick.Stop()
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-tick.C:
			a.reregister(ctx, retry)
		case <-retry.C:
			a.reregister(ctx, retry)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := a.kv.Delete(dctx, a.cfg.Name); err != nil {
				a.log.Warn("leaving the agent registry", "err", err)
			}
			return
		}
	}
}

// reregister refreshes the agent's entry. The registry lives in memory: a
// restarted server has lost it, so it is made again, and until that works
// it is retried every quarter second, for runs to see their workers back
// at once.
func (a *Agent) reregister(ctx context.Context, retry *time.Timer) {
	err := a.register(ctx)
	if err != nil && ctx.Err() == nil {
		var kv jetstream.KeyValue
		if kv, err = agentBucket(ctx, a.js, a.ttl); err == nil {
			a.kv = kv
			err = a.register(ctx)
		}
	}
	if err != nil && ctx.Err() == nil {
		a.log.Warn("agent registry", "err", err)
		retry.Reset(250 * time.Millisecond)
	}
}

// bind waits for the work queue's consumer: the run that publishes tasks
// creates it.
func (a *Agent) bind(ctx context.Context) (jetstream.Consumer, error) {
	logged := false
	for {
		cons, err := a.js.Consumer(ctx, TaskStream, TaskConsumer)
		if err == nil {
			return cons, nil
		}
		if !logged {
			if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				a.log.Info("waiting for a run to create the work queue", "stream", TaskStream, "consumer", TaskConsumer)
			} else {
				a.log.Warn("waiting for the work queue", "err", err)
			}
			logged = true
		}
		if !sleepCtx(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// slot is one worker's loop: pull one task, run it, report it, again. One
// pull at a time per worker, the next one only once the task is acked, is
// what keeps the agent from holding a task it cannot start (a held task
// sits out its AckWait if the agent dies) and from holding more unacked
// tasks than it has workers. The ack of a reported task goes with the
// next pull, in one message (see puller.next).
func (a *Agent) slot(stop, runCtx context.Context, p *puller) {
	var done *nats.Msg // reported, its ack still to send
	var out string     // its output in the cache, to remove
	removeOut := func() {
		if out != "" {
			// The result is sent (the output in it or in the bucket), or
			// the task failed: the cached output is of no more use.
			// Removed as the next pull waits, not to delay the result.
			os.Remove(out)
			out = ""
		}
	}
	defer func() {
		if done != nil {
			a.ack(done)
		}
		removeOut()
	}()
	for stop.Err() == nil {
		// Not cancelled by stop: the pull expires by itself, so that the
		// server never delivers to a pull nobody reads.
		msg, acked, err := p.next(done, removeOut)
		if done != nil && !acked {
			// The server did not answer the pull: the ack may be lost
			// with it, and a lost ack reruns a finished task.
			a.ack(done)
		}
		done = nil
		removeOut()
		if err != nil {
			if !errors.Is(err, errPullLost) && !errors.Is(err, errAckFirst) {
				a.log.Debug("pulling a task", "err", err)
				sleepCtx(stop, 250*time.Millisecond) // the server is away: do not spin
			}
			continue
		}
		if msg == nil {
			continue // expired with no task
		}
		if stop.Err() != nil {
			if err := msg.Nak(); err != nil {
				a.log.Warn("handing back a task", "err", err)
			}
			return
		}
		done, out = a.run(runCtx, msg)
	}
}

// run runs one delivered task and reports it. done is the task if its
// result is stored and it is still to be acked; out is its output in the
// cache, to remove.
func (a *Agent) run(ctx context.Context, msg *nats.Msg) (done *nats.Msg, out string) {
	start := time.Now()
	var wait time.Duration
	var delivery, seq uint64
	if meta, err := msg.Metadata(); err == nil {
		wait, delivery, seq = start.Sub(meta.Timestamp), meta.NumDelivered, meta.Sequence.Stream
	}
	a.metrics.bytesIn.Add(float64(len(msg.Data)))
	a.metrics.started(wait)
	a.free.Add(-1)
	defer func() {
		a.free.Add(1)
		a.metrics.ended()
	}()

	tm, err := DecodeTask(msg.Data)
	if err != nil && (tm == nil || !validID(tm.ID)) {
		// Nothing to report it under: no agent can run it.
		a.log.Error("dropping an unreadable task", "err", err)
		a.metrics.failed.Inc()
		if err := term(msg, truncate(err.Error(), 200)); err != nil {
			a.log.Warn("dropping a task", "err", err)
		}
		return nil, ""
	}
	var res *ResultMessage
	if err != nil {
		res = &ResultMessage{ID: tm.ID, Error: err.Error(), ErrorType: "TaskMessageError"}
	} else {
		tctx, cancel := context.WithCancel(ctx)
		// Tracked (and so heartbeaten) until reported.
		given := a.track(tm, msg, cancel)
		defer a.untrack(tm)
		res, out = a.execute(tctx, tm)
		cancel()
		if given.Load() {
			// Its run gave it up (a second Ctrl-C): no result, and never
			// delivered again.
			if err := term(msg, "the run gave it up"); err != nil {
				a.log.Warn("dropping a task its run gave up", "task", tm.ID, "err", err)
			}
			return nil, out
		}
		if res.Error != "" && ctx.Err() != nil {
			// Cancelled by the agent's own shutdown: not the task's fault.
			if err := msg.Nak(); err != nil {
				a.log.Warn("handing back a task", "task", tm.ID, "err", err)
			}
			return nil, out
		}
	}
	res.Delivery, res.Seq, res.Agent, res.Host = delivery, seq, a.cfg.Name, a.host
	res.QueueWait, res.RunTime = wait, time.Since(start)
	subject := ResultSubject
	if tm.Run != "" && validRunID(tm.Run) {
		subject += "." + tm.Run
	}
	// Reported before the slot pulls again: an agent holds no more
	// unacked tasks than it has workers.
	if !a.report(subject, res) {
		return nil, out
	}
	return msg, out
}

// runningTask is a task an agent runs, for its run to give up and for
// the heartbeat.
type runningTask struct {
	run    string
	msg    *nats.Msg
	cancel context.CancelFunc
	given  *atomic.Bool // set when its run gave it up
}

// track records a running task; the flag returned is set if its run
// gives it up.
func (a *Agent) track(tm *TaskMessage, msg *nats.Msg, cancel context.CancelFunc) *atomic.Bool {
	given := new(atomic.Bool)
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.running == nil {
		a.running = map[*TaskMessage]runningTask{}
	}
	a.running[tm] = runningTask{run: tm.Run, msg: msg, cancel: cancel, given: given}
	return given
}

// term drops a task for good: no agent will be given it again.
func term(msg *nats.Msg, reason string) error {
	return msg.Respond([]byte("+TERM " + reason))
}

func (a *Agent) untrack(tm *TaskMessage) {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	delete(a.running, tm)
}

// giveUp cancels the running tasks of a run that gave them up
// (CancelSubject.RUN).
func (a *Agent) giveUp(m *nats.Msg) {
	run := strings.TrimPrefix(m.Subject, CancelSubject+".")
	if !validRunID(run) {
		return
	}
	a.runMu.Lock()
	defer a.runMu.Unlock()
	for _, rt := range a.running {
		if rt.run == run {
			rt.given.Store(true)
			rt.cancel()
		}
	}
}

// heartbeat tells the server every third of AckWait that the tasks the
// agent runs (or reports) are still running, until done is closed. One
// loop for all of them: a task of a millisecond must not pay for a
// goroutine and a timer of its own.
func (a *Agent) heartbeat(done <-chan struct{}, ackWait time.Duration) {
	if ackWait <= 0 {
		return
	}
	tick := time.NewTicker(ackWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.runMu.Lock()
			for _, rt := range a.running {
				if err := rt.msg.InProgress(); err != nil {
					a.log.Warn("task heartbeat", "err", err)
				}
			}
			a.runMu.Unlock()
		case <-done:
			return
		}
	}
}

// execute runs a checked task on the pool. Every path it names is
// rewritten into the agent's cache: the files it reads are fetched by
// content (once per agent), its output goes to a folder of its own. out
// is where the output was written, for the caller to remove once the
// result is sent (in the result or the bucket by then; a failure's is of
// no use): removing it first would delay the result.
func (a *Agent) execute(ctx context.Context, tm *TaskMessage) (res *ResultMessage, out string) {
	res = &ResultMessage{ID: tm.ID}
	sum := sha256.Sum256([]byte(tm.ID))
	// Files of their own in one folder, not a folder per task: creating
	// and removing folders costs milliseconds a task on a busy machine.
	base := filepath.Join(a.cfg.CacheDir, "out", hex.EncodeToString(sum[:16]))
	t := tm.Task
	requested := t.Output
	t.Output = base + "-" + outputName(&t)
	out = t.Output
	if t.Part != nil {
		part := *t.Part
		part.Path = base + "-part" + cacheExt(part.Path)
		t.Part, out = &part, part.Path
	}
	// A stale output of an earlier delivery must not pass for this one's.
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		res.Error = fmt.Sprintf("agent cache: %v", err)
		return res, out
	}
	local := map[string]string{} // cache path → the path the task named
	if len(t.Inputs) > 0 {
		inputs := make(map[string]jobs.Input, len(t.Inputs))
		for slot, in := range t.Inputs {
			if in.Path != "" {
				p, err := a.fetch(ctx, tm, tm.Files[in.Path], in.Path)
				if err != nil {
					res.Error = fmt.Sprintf("input %s: %v", slot, err)
					return res, out
				}
				local[p] = in.Path
				in.Path = p
			}
			inputs[slot] = in
		}
		t.Inputs = inputs
	}
	if len(t.Parts) > 0 {
		parts := slices.Clone(t.Parts)
		for i := range parts {
			p, err := a.fetch(ctx, tm, tm.Files[parts[i].Path], parts[i].Path)
			if err != nil {
				res.Error = fmt.Sprintf("part %d: %v", parts[i].Index, err)
				return res, out
			}
			parts[i].Path = p
		}
		t.Parts = parts
	}
	opts := []pool.Option{pool.Retries(tm.Retries), pool.Timeout(tm.Timeout)}
	if t.Memory > 0 {
		opts = append(opts, pool.MemoryLimit(t.Memory))
	}
	p := a.pool
	if tm.Worker != nil {
		var err error
		if p, err = a.workerPool(ctx, tm.Worker); err != nil {
			res.Error = err.Error()
			return res, out
		}
	}
	var o jobs.Outcome
	var err error
	var info pool.TaskInfo
	if k, _ := jobs.LookupKind(t.Kind); k.Call != nil {
		// A function of the job's own worker, given the cache's paths.
		fn, arg := k.Call(&t)
		_, info, err = pool.ApplyInfo(ctx, p, workerproc.Remote[any, any](fn), arg, opts...)
	} else {
		// Apply's caller writes the task and reads its answer itself, two
		// thread wakeups fewer than ApplyAsync's (about a third of the
		// agent's share of a tiny task's round trip); cancelling ctx
		// cancels the task.
		o, info, err = pool.ApplyInfo(ctx, p, taskFunc, t, opts...)
	}
	res.Runs, res.PID, res.Duration = info.Attempts, info.PID, info.Duration
	if err != nil {
		res.Error, res.ErrorType = err.Error(), errorType(err)
		return res, out
	}
	o.Output = requested
	if len(o.InputHashes) > 0 {
		named := make(map[string]string, len(o.InputHashes))
		for p, h := range o.InputHashes {
			if orig, ok := local[p]; ok {
				p = orig
			}
			named[p] = h
		}
		o.InputHashes = named
	}
	res.Outcome = o
	fi, err := os.Stat(out)
	if err != nil {
		res.Error = fmt.Sprintf("the task succeeded but wrote no output: %v", err)
		return res, out
	}
	res.OutputSize = fi.Size()
	if fi.Size() <= InlineOutputLimit {
		if res.Output, err = os.ReadFile(out); err != nil {
			res.Error = fmt.Sprintf("the task succeeded but its output is unreadable: %v", err)
		}
		return res, out
	}
	hash := o.OutputHash
	if hash == "" {
		if hash, _, err = hashFile(out); err != nil {
			res.Error = fmt.Sprintf("the task succeeded but its output is unreadable: %v", err)
			return res, out
		}
	}
	obs, err := a.files(ctx)
	if err == nil {
		err = putFile(ctx, obs, out, hash)
	}
	if err != nil {
		res.Error = fmt.Sprintf("the task succeeded but its output could not be stored: %v", err)
		return res, out
	}
	res.OutputRef = &FileRef{SHA256: hash, Size: fi.Size()}
	return res, out
}

// files returns the files' bucket, which the run creates.
func (a *Agent) files(ctx context.Context) (jetstream.ObjectStore, error) {
	a.obsMu.Lock()
	defer a.obsMu.Unlock()
	if a.obs != nil {
		return a.obs, nil
	}
	obs, err := fileBucket(ctx, a.js, false)
	if err != nil {
		return nil, err
	}
	a.obs = obs
	return obs, nil
}

// fetch returns the cache path of a file the task reads, fetching it if
// the cache does not have it yet. The path is the file's hash with the
// named path's extension: content-addressed, so that a file shared by
// tasks is fetched once, and chosen by the agent, never by the message.
func (a *Agent) fetch(ctx context.Context, tm *TaskMessage, f *FileRef, named string) (string, error) {
	if p := a.sharedFile(tm, f); p != "" {
		return p, nil // read in place: the run's shared root is this agent's
	}
	dir := filepath.Join(a.cfg.CacheDir, "in")
	path := filepath.Join(dir, f.SHA256+cacheExt(named))
	mu := a.fetchLock(path)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // written whole and checked, or not at all
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if f.Data != nil {
		return path, writeChecked(path, f.SHA256, f.Data)
	}
	if f.Shared != "" {
		// Not stored unless an agent asks.
		if err := a.askForBlob(ctx, tm.Run, f.SHA256); err != nil {
			return "", err
		}
	}
	obs, err := a.files(ctx)
	if err != nil {
		return "", err
	}
	if err := getFile(ctx, obs, f.SHA256, path); err != nil {
		return "", err
	}
	a.metrics.bytesIn.Add(float64(f.Size))
	return path, nil
}

// fetchLock returns the lock of one cache file: two workers reading the
// same input wait for one fetch.
func (a *Agent) fetchLock(path string) *sync.Mutex {
	a.obsMu.Lock()
	defer a.obsMu.Unlock()
	if a.fetching == nil {
		a.fetching = map[string]*sync.Mutex{}
	}
	mu := a.fetching[path]
	if mu == nil {
		mu = new(sync.Mutex)
		a.fetching[path] = mu
	}
	return mu
}

// errorType names a failure's pool type for the results file.
func errorType(err error) string {
	var (
		remote  *pool.RemoteError
		exit    *pool.WorkerExitError
		timeout *pool.TimeoutError
		memory  *pool.MemoryLimitError
	)
	switch {
	case errors.As(err, &remote):
		return "RemoteError"
	case errors.As(err, &exit):
		return "WorkerExitError"
	case errors.As(err, &timeout):
		return "TimeoutError"
	case errors.As(err, &memory):
		return "MemoryLimitError"
	}
	return ""
}

// report publishes a result and reports whether the server stored it:
// then the task is to be acked. A result that cannot be published leaves
// the task unacked, so that it is delivered again.
func (a *Agent) report(subject string, res *ResultMessage) bool {
	data, err := msgpack.Marshal(res)
	if err == nil && len(data) > InlineOutputLimit*2 {
		res.Output = nil // the Outcome's own info made it large: send without
		data, err = msgpack.Marshal(res)
	}
	if err != nil {
		a.log.Error("encoding a result", "task", res.ID, "err", err)
		return false
	}
	msgID := res.ID + ":" + strconv.FormatUint(res.Seq, 10) + ":" + strconv.FormatUint(res.Delivery, 10)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = a.js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			break
		}
		if attempt == 5 {
			a.log.Error("publishing a result; the task will be delivered again", "task", res.ID, "err", err)
			return false
		}
		time.Sleep(250 * time.Millisecond) // the server may be restarting
	}
	a.metrics.bytesOut.Add(float64(len(data)))
	if res.Error == "" {
		a.metrics.done.Inc()
	} else {
		a.metrics.failed.Inc()
	}
	return true
}

// ack acks a reported task and waits for the server to confirm it
// (DoubleAck): a lost ack would rerun a finished task after its AckWait.
// The slot's next pull carries the ack and confirms it the same way (see
// puller.next); this is for when it cannot. The agent's only waited acks:
// a lost Nak or Term costs at most the AckWait of a task that is handed
// back or dropped anyway.
func (a *Agent) ack(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := msg.AckSync(nats.Context(ctx)); err != nil {
		a.log.Warn("acking a task", "subject", msg.Subject, "err", err)
	}
}

// release closes the pool and the metrics server.
func (a *Agent) release() {
	if a.msrv != nil {
		if err := a.msrv.shutdown(); err != nil {
			a.log.Warn("metrics server", "err", err)
		}
	}
	a.closePool()
}

func (a *Agent) closePool() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.runMu.Lock()
	pools := append([]*pool.Pool{a.pool}, slices.Collect(maps.Values(a.workerPools))...)
	a.workerPools = nil
	a.runMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(func() {
			if err := p.Close(ctx); err != nil {
				a.log.Warn("closing the agent's pool", "err", err)
			}
		})
	}
	wg.Wait()
}
