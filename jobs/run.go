package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Status is how a task ended.
type Status string

const (
	StatusOK        Status = "ok"
	StatusFailed    Status = "failed"
	StatusSkipped   Status = "skipped"   // --resume found it done, output unchanged
	StatusCancelled Status = "cancelled" // never ran: interrupted, --fail-fast, or a job it depends on failed
)

// Result is one line of the results file.
type Result struct {
	Job        string  `json:"job"`
	Task       string  `json:"task"`
	Status     Status  `json:"status"`
	Attempts   int     `json:"attempts"`
	DurationMS float64 `json:"duration_ms"` // of a split task: from its first part's start to its merge's end
	QueuedMS   float64 `json:"queued_ms"`
	WorkerPID  int     `json:"worker_pid"`
	Output     string  `json:"output"`
	Error      string  `json:"error"`
	// Agent names the machine that ran the task, when an Executor ran it
	// elsewhere.
	Agent string `json:"agent,omitempty"`
	// Retried says why each earlier attempt failed, when there were any
	// (a crash, a timeout, a memory kill).
	Retried []string `json:"retried,omitempty"`
	// Warnings about an ok result that may mislead (from Outcome.Warnings).
	Warnings []string `json:"warnings,omitempty"`
	// CPUMS is, for a split task, the sum of its parts' and merge's run
	// times: the worker time it took, more than DurationMS when parts ran
	// side by side.
	CPUMS float64 `json:"cpu_ms,omitempty"`
}

// Observer is told what happens during a run, for progress displays. Its
// methods are called from the run's goroutine, one at a time.
type Observer interface {
	Started(plan *Plan, workers int)
	TaskFinished(r *Result)
	Stopping(reason string)
}

// Options says how to run a plan.
type Options struct {
	Workers int // worker processes; 0: one per core (local pools only)
	// SelfBinary, if set, runs as the local pools' built-in workers in
	// place of this program (pool.Config.SelfBinary): ppool's slim
	// ppool-worker. Jobs with their own worker binary are not affected.
	SelfBinary string
	// Executor runs the tasks; nil for local pools of Workers processes.
	// Run closes it when it ends.
	Executor Executor
	Journal  string // the journal's path; "" for DefaultJournal
	// NoJournal runs without a journal: nothing is recorded, and Resume
	// cannot be used.
	NoJournal bool
	Resume    bool      // skip tasks the journal shows done with unchanged inputs and outputs
	FailFast  bool      // stop handing out tasks after the first failure
	Results   io.Writer // one JSON line per task, or nil
	Observer  Observer  // or nil
	Logger    *slog.Logger
	// Drain, when closed, stops handing out tasks: running ones finish,
	// the rest are cancelled. Cancelling Run's ctx instead kills the
	// workers at once.
	Drain <-chan struct{}
}

// Summary is the outcome of a run.
type Summary struct {
	OK, Failed, Skipped, Cancelled int
	Wall                           time.Duration
	Busy                           time.Duration // total task run time, across workers
	Workers                        int
	Interrupted                    bool
	Jobs                           []JobSummary
	// Unrecorded counts finished tasks whose journal entry or results
	// line could not be written (a full disk, say); RecordErr is the first
	// such error. A run with any is not a clean run: --resume redoes the
	// tasks missing from the journal.
	Unrecorded int
	RecordErr  error
}

// JobSummary counts one job's tasks.
type JobSummary struct {
	Name                           string
	OK, Failed, Skipped, Cancelled int
}

// Utilisation is the share of the workers' time spent running tasks.
func (s *Summary) Utilisation() float64 {
	if s.Wall <= 0 || s.Workers == 0 {
		return 0
	}
	return float64(s.Busy) / (float64(s.Wall) * float64(s.Workers))
}

// runner holds a run's state; only Run's goroutine touches it.
type runner struct {
	plan       *Plan
	opts       Options
	log        *slog.Logger
	exec       Executor
	slots      int // exec.Slots(), as of the last dispatch
	execClosed bool
	journal    *journal
	results    *json.Encoder
	partDir    string

	running int // tasks and parts sent to the pools
	// Tasks are prepared ahead of a free worker (inputs hashed, splits
	// planned: files read), at most one per slot of the executor, so
	// that a worker that finishes is handed its next task at once rather
	// than after that reading.
	preparing int            // being prepared, off the run's goroutine
	readyQ    []prepared     // prepared, waiting for a free worker
	perJob    map[string]int // running, preparing and prepared tasks per job
	jobLeft   map[string]int // unfinished tasks per job
	jobFailed map[string]bool
	queue     []*Task      // ready to run, in file order
	parts     []queuedPart // parts of split tasks not yet sent, before any new task
	killed    bool         // the run's ctx ended: running tasks were killed
	waiting   []*PlannedJob
	jobOf     map[string]*PlannedJob
	done      chan completion
	draining  bool
	summary   Summary
	hashMu    sync.Mutex
	hashes    map[string]string // file hash cache, by path
	ready     chan prepared     // tasks prepared off the run's goroutine
	prepCtx   context.Context   // ends preparations: on a first interrupt, a failure under --fail-fast, or the run's end
	endPrep   context.CancelFunc
	split     map[*Task]*splitState
}

type completion struct {
	t    *Task
	part *Part // set for one part of a split task
	Completion
}

// queuedPart is a part of a split task waiting for a free worker. Parts go
// through the runner's budget like tasks, so that a first Ctrl-C or a
// failed part stops the parts not yet started.
type queuedPart struct {
	sent Task
	t    *Task
	part *Part
}

type splitState struct {
	left    int
	dropped int // parts never sent: the run stopped, or another part failed
	failed  error
	busy    time.Duration
	queued  time.Duration
	started time.Time
	first   time.Time // when the first part to start began running
	hash    string
}

// Run executes plan: every job's tasks on one pool of workers (plus one per
// custom worker binary, all within the Workers budget), in file order, each
// job after the jobs it names in "after". It returns when every task has an
// outcome. The error is for the run itself (workers that cannot start, an
// unwritable journal); task failures are in the summary and results.
func Run(ctx context.Context, plan *Plan, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers()
	}
	if opts.NoJournal && opts.Resume {
		return nil, errors.New("--resume needs a journal: it cannot be used with --no-journal")
	}
	jpath := opts.Journal
	if jpath == "" {
		jpath = DefaultJournal(plan.File.Path)
	}
	var jr *journal
	partDir := partDirOf(jpath)
	if opts.NoJournal {
		dir, err := os.MkdirTemp("", "ppool-parts-")
		if err != nil {
			return nil, err
		}
		jr, partDir = newJournal(""), dir
	} else {
		var err error
		if jr, err = openJournal(jpath, opts.Resume); err != nil {
			return nil, err
		}
	}
	closed := false
	defer func() {
		if !closed {
			jr.close()
		}
	}()
	r := &runner{
		plan: plan, opts: opts, log: opts.Logger, journal: jr,
		perJob:    map[string]int{},
		jobLeft:   map[string]int{},
		jobFailed: map[string]bool{},
		jobOf:     map[string]*PlannedJob{},
		done:      make(chan completion, opts.Workers),
		hashes:    map[string]string{},
		ready:     make(chan prepared),
		split:     map[*Task]*splitState{},
		partDir:   partDir,
	}
	r.prepCtx, r.endPrep = context.WithCancel(ctx)
	defer r.endPrep()
	if opts.Results != nil {
		r.results = json.NewEncoder(opts.Results)
	}
	r.exec = opts.Executor
	if r.exec == nil {
		r.exec = newLocalExecutor(plan, opts.Workers, opts.SelfBinary, r.log)
	}
	r.slots = r.exec.Slots()
	r.summary.Workers = r.slots
	defer r.closeExec()
	sweepTemps(plan) // a killed run's half-written outputs
	if !opts.Resume {
		// Parts a killed or interrupted run left are reused only by
		// --resume (journalled, their hashes checked); a fresh run starts
		// clean.
		os.RemoveAll(r.partDir)
	}
	if opts.Observer != nil {
		opts.Observer.Started(plan, r.slots)
	}
	for _, pj := range plan.Jobs {
		r.summary.Jobs = append(r.summary.Jobs, JobSummary{Name: pj.Name})
		r.jobLeft[pj.Name] = len(pj.Tasks)
		r.jobOf[pj.Name] = pj
		r.waiting = append(r.waiting, pj)
	}
	err := r.loop(ctx)
	r.closeExec() // no worker writes any more
	sweepTemps(plan)
	if opts.NoJournal || r.summary.Failed+r.summary.Cancelled == 0 {
		os.RemoveAll(r.partDir)
	} // else the finished parts of unfinished tasks stay for --resume
	closed = true
	if cerr := jr.close(); cerr != nil {
		// The last group of entries may not be on disk.
		r.unrecorded(cerr)
	}
	// The wall time counts everything the run did: the sweeps, starting
	// and closing the workers, the last sync of the outputs and journal.
	r.summary.Wall = time.Since(start)
	return &r.summary, err
}

// sweepTemps removes the temporary files the built-in kinds write an
// output through (".NAME.tmp*" beside it, renamed into place when whole)
// that a killed worker or run left behind. Only files of this plan's
// outputs are touched, and each folder is listed once, however many
// outputs it holds.
func sweepTemps(plan *Plan) {
	byDir := map[string]map[string]bool{} // folder → base names of outputs
	for _, pj := range plan.Jobs {
		for _, t := range pj.Tasks {
			if t.Output == "" {
				continue
			}
			dir, base := filepath.Split(t.Output)
			if byDir[dir] == nil {
				byDir[dir] = map[string]bool{}
			}
			byDir[dir][base] = true
		}
	}
	for dir, bases := range byDir {
		f, err := os.Open(filepath.Clean(dir + "."))
		if err != nil {
			continue // not made yet: nothing to sweep
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, name := range names {
			if isTempOf(name, bases) {
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
	}
}

// isTempOf reports whether name is ".BASE.tmp…" for one of bases. A base
// may itself hold ".tmp", so every place it could end is tried.
func isTempOf(name string, bases map[string]bool) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	rest := name[1:]
	for i := 0; ; {
		j := strings.Index(rest[i:], ".tmp")
		if j < 0 {
			return false
		}
		if bases[rest[:i+j]] {
			return true
		}
		i += j + 1
	}
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// partDirOf is where split tasks keep their parts until they are merged:
// a hidden folder named after the journal, beside it. Run removes it when it
// ends, so it must never be a folder of the user's: with --journal
// results/journal.jsonl, a plain "parts" beside it could well be one. Its
// name is fixed, not random, so that a run after a killed one clears the
// parts the killed one left.
func partDirOf(journal string) string {
	return filepath.Join(filepath.Dir(journal), "."+filepath.Base(journal)+".parts")
}

func (r *runner) loop(ctx context.Context) error {
	var runErr error
	drain := r.opts.Drain
	for {
		r.release()
		if !r.draining {
			if err := r.dispatch(ctx); err != nil {
				runErr = err
				r.stop("cannot run tasks: " + err.Error())
			}
		}
		if r.running == 0 && r.preparing == 0 {
			if r.draining || len(r.queue) == 0 && len(r.waiting) == 0 && len(r.readyQ) == 0 {
				break
			}
			if r.slots > 0 {
				// Everything dispatched finished on the spot (skipped by
				// --resume, or failed before it ran): release what that
				// unblocked rather than wait for completions that won't
				// come.
				continue
			} // else no worker yet: wait for one (SlotsChanged)
		}
		select {
		case <-r.exec.SlotsChanged():
		case c := <-r.done:
			r.running--
			r.perJob[c.t.Job]--
			if c.Err == nil && !r.draining {
				// Give the freed worker its next task before hashing the
				// output and syncing the journal, which takes milliseconds.
				// (After a failure, completed decides first: --fail-fast.)
				if err := r.dispatch(ctx); err != nil {
					runErr = err
					r.stop("cannot run tasks: " + err.Error())
				}
			}
			r.completed(c)
		case pr := <-r.ready:
			if err := r.prepared(ctx, pr); err != nil {
				runErr = err
				r.stop("cannot run tasks: " + err.Error())
			}
		case <-drain:
			drain = nil
			r.summary.Interrupted = true
			r.dropParts(nil, "not run: the run was interrupted")
			r.exec.Withdraw()
			r.stop(fmt.Sprintf("interrupted: waiting for %s to finish; interrupt again (Ctrl-C) to kill %s", plural(len(r.split), "running task"), them(len(r.split))))
		case <-ctx.Done():
			// Kill now: the pools are terminated, and every running task
			// completes with an error, which the loop still collects.
			r.summary.Interrupted = true
			r.killed = true
			if !r.draining {
				r.stop("interrupted")
			}
			r.exec.Kill()
			ctx = context.Background()
		}
	}
	// Whatever never ran is cancelled.
	reason := r.notRunReason()
	for _, pr := range r.readyQ {
		r.perJob[pr.t.Job]--
		r.finish(pr.t, &Result{Status: StatusCancelled, Error: reason}, "", "")
	}
	r.readyQ = nil
	for _, t := range r.queue {
		r.finish(t, &Result{Status: StatusCancelled, Error: reason}, "", "")
	}
	r.queue = nil
	for _, pj := range r.waiting {
		for _, t := range pj.Tasks {
			r.finish(t, &Result{Status: StatusCancelled, Error: reason}, "", "")
		}
	}
	r.waiting = nil
	return runErr
}

func (r *runner) stop(reason string) {
	if r.draining {
		return
	}
	r.draining = true
	r.endPrep()
	r.dropParts(nil, "not run: the run was interrupted")
	if r.opts.Observer != nil {
		r.opts.Observer.Stopping(reason)
	}
}

// dropParts removes the queued parts of task t (of every task if t is nil)
// and finishes the tasks left with nothing running.
func (r *runner) dropParts(t *Task, why string) {
	keep := r.parts[:0]
	var emptied []*Task
	for _, qp := range r.parts {
		if t != nil && qp.t != t {
			keep = append(keep, qp)
			continue
		}
		st := r.split[qp.t]
		st.left--
		st.dropped++
		if st.left == 0 {
			emptied = append(emptied, qp.t)
		}
	}
	clear(r.parts[len(keep):])
	r.parts = keep
	for _, t := range emptied {
		r.partsEnded(t, &Result{}, why)
	}
}

// partsEnded finishes a split task whose parts have all ended, some of
// them dropped or failed; res carries the figures gathered so far.
func (r *runner) partsEnded(t *Task, res *Result, why string) {
	st := r.split[t]
	res.DurationMS, res.CPUMS, res.QueuedMS = 0, ms(st.busy), ms(st.queued)
	if !st.first.IsZero() {
		res.DurationMS = ms(time.Since(st.first))
	}
	if st.failed != nil {
		res.Status, res.Error = StatusFailed, st.failed.Error()
	} else {
		res.Status, res.Error = StatusCancelled, why
	}
	r.finish(t, res, "", "")
}

// release moves jobs whose "after" jobs are all finished into the queue; a
// job after a failed one is cancelled instead.
func (r *runner) release() {
	keep := r.waiting[:0]
	for _, pj := range r.waiting {
		ready, failedDep := true, ""
		for _, a := range pj.After {
			if r.jobLeft[a.Name] > 0 {
				ready = false
			}
			if r.jobFailed[a.Name] {
				failedDep = a.Name
			}
		}
		switch {
		case !ready:
			keep = append(keep, pj)
		case failedDep != "":
			r.jobFailed[pj.Name] = true
			for _, t := range pj.Tasks {
				r.finish(t, &Result{Status: StatusCancelled, Error: fmt.Sprintf("not run: job %q, which this job runs after, had failures", failedDep)}, "", "")
			}
		default:
			r.queue = append(r.queue, pj.Tasks...)
		}
	}
	r.waiting = keep
	if len(r.waiting) > 0 && len(r.queue) == 0 && len(r.parts) == 0 && r.running == 0 && r.preparing == 0 && len(r.readyQ) == 0 {
		// Cannot happen for a checked file (after names earlier jobs only).
		panic("jobs: jobs waiting with nothing running")
	}
}

// dispatch starts queued tasks while the budget allows, in file order,
// skipping tasks whose job is at its own workers cap. It stops as soon as
// the run is draining: a task can fail in start itself (an unreadable
// input), and --fail-fast must not start the next one.
func (r *runner) dispatch(ctx context.Context) error {
	r.slots = r.exec.Slots()
	r.summary.Workers = max(r.summary.Workers, r.slots)
	r.sendParts()
	// Prepared tasks first, in the order they became ready.
	for len(r.readyQ) > 0 && r.running < r.slots && !r.draining {
		pr := r.readyQ[0]
		r.readyQ[0] = prepared{}
		r.readyQ = r.readyQ[1:]
		if err := r.launch(ctx, pr); err != nil {
			return err
		}
		r.sendParts() // a split task's parts go before the next task
	}
	for i := 0; i < len(r.queue) && !r.draining; {
		t := r.queue[i]
		pj := r.jobOf[t.Job]
		if pj.Workers > 0 && r.perJob[t.Job] >= pj.Workers {
			i++
			continue
		}
		direct := !needsPreparing(pj.Kind, r.opts.Resume)
		if direct && r.running >= r.slots || !direct && r.preparing+len(r.readyQ) >= r.slots {
			break // in file order: no task overtakes one that waits
		}
		r.takeQueued(i)
		if err := r.start(ctx, t, pj); err != nil {
			return err
		}
		r.sendParts()
	}
	return nil
}

// takeQueued removes the i'th queued task. The first is the usual one, and
// taking it is O(1), so that a queue of a million tasks is not shifted
// once per task.
func (r *runner) takeQueued(i int) {
	if i == 0 {
		r.queue[0] = nil
		r.queue = r.queue[1:]
		return
	}
	r.queue = slices.Delete(r.queue, i, i+1)
}

// needsPreparing says whether a task of kind k reads files before it can
// be sent: to hash its inputs (for --resume, and for custom workers, which
// do not report hashes) or to plan a split.
func needsPreparing(k *Kind, resume bool) bool {
	return resume || k.Split != nil || k.Call != nil
}

// sendParts sends queued parts of split tasks while the budget allows.
func (r *runner) sendParts() {
	for i := 0; i < len(r.parts) && r.running < r.slots && !r.draining; {
		qp := r.parts[i]
		pj := r.jobOf[qp.t.Job]
		if pj.Workers > 0 && r.perJob[qp.t.Job] >= pj.Workers {
			i++
			continue
		}
		r.parts = slices.Delete(r.parts, i, i+1)
		r.send(&qp.sent, qp.t, qp.part, pj)
	}
}

func (r *runner) fileHash(ctx context.Context, path string) (string, error) {
	r.hashMu.Lock()
	h, ok := r.hashes[path]
	r.hashMu.Unlock()
	if ok {
		return h, nil
	}
	h, err := hashFileCtx(ctx, path)
	if err == nil {
		r.hashMu.Lock()
		r.hashes[path] = h
		r.hashMu.Unlock()
	}
	return h, err
}

// prepared is a task made ready to send, off the run's goroutine.
type prepared struct {
	t     *Task
	pj    *PlannedJob
	hash  string
	skip  bool   // --resume: done before, output unchanged
	parts []Part // a split task's plan, with the paths of the parts
	// doneParts are parts the journal shows finished by an earlier run,
	// their files unchanged (--resume): not run again.
	doneParts []int
	err       error
}

// start prepares a task off the run's goroutine: hashing inputs (for
// --resume, split tasks and custom workers), checking the journal's output
// and planning a split all read files, which may be large or slow, and a
// signal must always be heard meanwhile. The task holds its place in the
// budget while it is prepared; launch takes it from there.
func (r *runner) start(ctx context.Context, t *Task, pj *PlannedJob) error {
	r.perJob[t.Job]++
	if !needsPreparing(pj.Kind, r.opts.Resume) {
		// Nothing to read: the task goes out at once, without two
		// goroutine hand-offs.
		return r.launch(ctx, prepared{t: t, pj: pj})
	}
	r.preparing++
	go func() { r.ready <- r.prepare(r.prepCtx, t, pj) }()
	return nil
}

// prepared takes a task back from its preparation: to a free worker, or
// to wait for one.
func (r *runner) prepared(ctx context.Context, pr prepared) error {
	r.preparing--
	if pr.skip || pr.err != nil || r.draining || r.running < r.slots {
		return r.launch(ctx, pr) // finished here, or sent
	}
	r.readyQ = append(r.readyQ, pr)
	return nil
}

// notRunReason says why a task that never ran was cancelled.
func (r *runner) notRunReason() string {
	if r.summary.Interrupted {
		return "not run: the run was interrupted"
	}
	return "not run: an earlier task failed (--fail-fast)"
}

func (r *runner) prepare(ctx context.Context, t *Task, pj *PlannedJob) prepared {
	pr := prepared{t: t, pj: pj}
	k := pj.Kind
	// The content hash is computed here only when it decides something now
	// (--resume) or no worker will (split tasks, custom workers); otherwise
	// the worker sends its input and output hashes with the result, and
	// the master does not read the inputs a second time.
	hash := func() bool {
		pr.hash, pr.err = taskHash(t, k, func(path string) (string, error) { return r.fileHash(ctx, path) })
		return pr.err == nil
	}
	if (r.opts.Resume || k.Call != nil) && !hash() {
		return pr
	}
	if r.opts.Resume && r.journal.finished(ctx, t.Output, pr.hash) {
		pr.skip = true
		return pr
	}
	if k.Split != nil {
		if pr.parts, pr.err = k.Split(t); pr.err != nil || len(pr.parts) < 2 {
			pr.parts = nil
			return pr
		}
		if pr.hash == "" && !hash() {
			return pr
		}
		dir := filepath.Join(r.partDir, t.Job, fmt.Sprint(t.Index))
		ext := filepath.Ext(t.Output)
		if k.PartExt != "" {
			ext = "." + k.PartExt
		}
		for i := range pr.parts {
			part := &pr.parts[i]
			part.Path = filepath.Join(dir, fmt.Sprintf("part-%04d%s", part.Index, ext))
			if r.opts.Resume && r.journal.finished(ctx, part.Path, partHash(pr.hash, part)) {
				pr.doneParts = append(pr.doneParts, part.Index)
			}
		}
	}
	return pr
}

// partHash is the journal's hash of one part of a task: the task's hash and
// where the part lies.
func partHash(taskHash string, p *Part) string {
	return fmt.Sprintf("%s part %d rows %d-%d cols %d-%d", taskHash, p.Index, p.Row0, p.Row1, p.Col0, p.Col1)
}

// launch sends a prepared task: skipped, failed, or to its pool whole or
// in parts.
func (r *runner) launch(ctx context.Context, pr prepared) error {
	r.perJob[pr.t.Job]--
	t, pj := pr.t, pr.pj
	switch {
	case pr.skip:
		r.finish(t, &Result{Status: StatusSkipped, Output: t.Output}, "", "")
		return nil
	case r.draining && (pr.err == nil || r.prepCtx.Err() != nil):
		r.finish(t, &Result{Status: StatusCancelled, Error: r.notRunReason()}, "", "")
		return nil
	case pr.err != nil:
		r.finish(t, &Result{Status: StatusFailed, Error: pr.err.Error()}, "", "")
		return nil
	}
	hash := pr.hash
	if err := r.exec.Prepare(ctx, pj); err != nil {
		if ctx.Err() != nil {
			return err // interrupted while the workers started
		}
		r.finish(t, &Result{Status: StatusFailed, Error: err.Error()}, "", "")
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(t.Output), 0o755); err != nil {
		r.finish(t, &Result{Status: StatusFailed, Error: err.Error()}, "", "")
		return nil
	}
	r.journal.addOutputDir(filepath.Dir(t.Output))
	if parts := pr.parts; len(parts) > 1 {
		if err := os.MkdirAll(filepath.Dir(parts[0].Path), 0o755); err != nil {
			return err
		}
		st := &splitState{left: len(parts) - len(pr.doneParts), started: time.Now(), hash: hash}
		r.split[t] = st
		t.Parts = parts
		for i := range t.Parts {
			part := &t.Parts[i]
			if slices.Contains(pr.doneParts, part.Index) {
				continue
			}
			pt := *t
			pt.Mode, pt.Part, pt.Parts = "part", part, nil
			r.parts = append(r.parts, queuedPart{sent: pt, t: t, part: part})
		}
		if st.left == 0 {
			r.merge(t)
		}
		return nil
	}
	r.split[t] = &splitState{hash: hash}
	r.send(t, t, nil, pj)
	return nil
}

// send submits a task (or a part, or a merge) to the executor. Its
// completion comes back to the loop through r.done.
func (r *runner) send(sent, t *Task, part *Part, pj *PlannedJob) {
	r.running++
	r.perJob[t.Job]++
	r.exec.Submit(pj, sent, func(c Completion) {
		r.done <- completion{t: t, part: part, Completion: c}
	})
}

// completed handles a task's (or part's, or merge's) outcome.
func (r *runner) completed(c completion) {
	t := c.t
	st := r.split[t]
	res := &Result{
		Attempts:   c.Info.Attempts,
		DurationMS: ms(c.Info.Duration),
		QueuedMS:   ms(c.Info.Queued),
		WorkerPID:  c.Info.PID,
		Agent:      c.Where,
	}
	for _, err := range c.Info.RetriedAfter {
		res.Retried = append(res.Retried, err.Error())
	}
	r.summary.Busy += c.Info.Duration
	if c.part != nil {
		st.left--
		st.busy += c.Info.Duration
		if began := time.Now().Add(-c.Info.Duration); st.first.IsZero() || began.Before(st.first) {
			st.first = began
		}
		if c.Err == nil && st.hash != "" && c.Outcome.OutputHash != "" {
			// Kept for --resume, should the task not finish in this run.
			if err := r.journal.record(journalEntry{Job: t.Job, Task: fmt.Sprintf("%s part %d", t.Name, c.part.Index), Output: c.part.Path, Hash: partHash(st.hash, c.part), OutputHash: c.Outcome.OutputHash}); err != nil {
				r.unrecorded(err)
			}
		}
		if c.Err != nil && st.failed == nil {
			if r.killed || errors.Is(c.Err, ErrWithdrawn) {
				st.dropped++ // stopped by the second interrupt: not the part's fault
			} else {
				st.failed = fmt.Errorf("part %d: %w", c.part.Index, c.Err)
				// The task has failed: its parts not yet started never will.
				r.dropParts(t, "")
				if r.split[t] == nil {
					return // dropParts finished it
				}
			}
		}
		if st.left > 0 {
			return
		}
		if st.failed != nil || st.dropped > 0 {
			r.partsEnded(t, res, "not run: the run was interrupted")
			return
		}
		r.merge(t)
		return
	}
	if len(t.Parts) > 0 {
		res.CPUMS = ms(st.busy + c.Info.Duration)
		if !st.first.IsZero() { // else every part was done by an earlier run
			res.DurationMS = ms(time.Since(st.first))
		}
		res.QueuedMS = ms(st.queued)
	}
	if errors.Is(c.Err, ErrWithdrawn) {
		res.Status, res.Error = StatusCancelled, "not run: the run was interrupted"
		r.finish(t, res, "", "")
		return
	}
	if c.Err != nil && r.killed {
		res.Status, res.Error = StatusCancelled, "stopped: the run was interrupted twice ("+c.Err.Error()+")"
		r.finish(t, res, "", "")
		return
	}
	if c.Err != nil {
		res.Status, res.Error = StatusFailed, c.Err.Error()
		r.finish(t, res, "", "")
		return
	}
	res.Status, res.Output, res.Warnings = StatusOK, t.Output, c.Outcome.Warnings
	for _, w := range res.Warnings {
		r.log.Warn("task warning", "job", t.Job, "task", t.Name, "warning", w)
	}
	hash, outHash := st.hash, c.Outcome.OutputHash
	var err error
	if hash == "" {
		hash, err = taskHash(t, r.jobOf[t.Job].Kind, func(path string) (string, error) {
			if h, ok := c.Outcome.InputHashes[path]; ok {
				r.hashMu.Lock()
				r.hashes[path] = h
				r.hashMu.Unlock()
				return h, nil
			}
			return r.fileHash(context.Background(), path)
		})
	}
	if err == nil && outHash == "" {
		outHash, err = hashFile(t.Output)
	}
	if err != nil {
		res.Status, res.Error = StatusFailed, fmt.Sprintf("the task succeeded but its files are unreadable: %v", err)
		hash = ""
	}
	r.finish(t, res, hash, outHash)
}

// merge sends the task that assembles a split task's parts, once every
// part is in.
func (r *runner) merge(t *Task) {
	mt := *t
	mt.Mode = "merge"
	pj := r.jobOf[t.Job]
	r.send(&mt, t, nil, pj)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// finish records a task's final outcome: journal, results, counts.
func (r *runner) finish(t *Task, res *Result, hash, outHash string) {
	res.Job, res.Task = t.Job, t.Name
	delete(r.split, t)
	if res.Status == StatusOK && hash != "" {
		if err := r.journal.record(journalEntry{Job: t.Job, Task: t.Name, Output: t.Output, Hash: hash, OutputHash: outHash}); err != nil {
			r.unrecorded(err)
		}
	}
	if r.results != nil {
		if err := r.results.Encode(res); err != nil {
			r.results = nil
			if errors.Is(err, syscall.EPIPE) {
				// Whoever read the results stopped reading (| head): that
				// ends the results, not the run.
				r.log.Warn("results: the reader closed its end; the run goes on without results")
			} else {
				r.unrecorded(fmt.Errorf("results: %w", err))
			}
		}
	}
	js := r.jobSummary(t.Job)
	switch res.Status {
	case StatusOK:
		r.summary.OK++
		js.OK++
	case StatusFailed:
		r.summary.Failed++
		js.Failed++
		r.jobFailed[t.Job] = true
		r.log.Info("task failed", "job", t.Job, "task", t.Name, "err", res.Error)
		if r.opts.FailFast {
			r.stop("a task failed: stopping (--fail-fast)")
		}
	case StatusSkipped:
		r.summary.Skipped++
		js.Skipped++
	case StatusCancelled:
		r.summary.Cancelled++
		js.Cancelled++
	}
	r.jobLeft[t.Job]--
	if r.opts.Observer != nil {
		r.opts.Observer.TaskFinished(res)
	}
}

// unrecorded notes a finished task whose record could not be written,
// logging only the first: a full disk would otherwise log every task.
func (r *runner) unrecorded(err error) {
	r.summary.Unrecorded++
	if r.summary.RecordErr == nil {
		r.summary.RecordErr = err
		r.log.Error("cannot record finished tasks; this run's record will be incomplete", "err", err)
	}
}

func (r *runner) jobSummary(name string) *JobSummary {
	for i := range r.summary.Jobs {
		if r.summary.Jobs[i].Name == name {
			return &r.summary.Jobs[i]
		}
	}
	r.summary.Jobs = append(r.summary.Jobs, JobSummary{Name: name})
	return &r.summary.Jobs[len(r.summary.Jobs)-1]
}

// closeExec closes the executor, once.
func (r *runner) closeExec() {
	if r.execClosed {
		return
	}
	r.execClosed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.exec.Close(ctx); err != nil {
		r.log.Error("closing the executor", "err", err)
	}
}
