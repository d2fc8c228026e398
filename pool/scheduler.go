package pool

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ppool/ppool/ipc"
)

// The scheduler: who runs what next. It owns the pool's queue of tasks,
// each worker's window (how many tasks it may have in flight), the moving
// averages that size windows and packs (pack.go), retries and the split
// of a failed batch. Its state is guarded by the pool's mutex, p.mu; it
// reaches a worker's connection through its methods (conntasks.go), which
// take the connection's lock, hands it frames through its outbox and
// flush, and never reads.

// scheduler is the scheduler's state, guarded by p.mu but for kick.
type scheduler struct {
	kick      chan struct{} // wakes the dispatcher; size 1 so kicks coalesce
	queue     queue
	avgTask   float64   // moving average of a task frame's run time (a batch counts whole), ns
	avgItem   float64   // moving average of one call's run time (a batch's share), ns
	packBuf   []byte    // builds pack frames
	epoch     time.Time // tasks' times count from here
	clock     time.Time // the last clock reading of a submission, shared by a burst
	clockUses int
	claimant  *task   // during submit: the Apply task whose caller will read its answer
	claimed   *worker // set by dispatchLocked when it gave claimant's worker to the caller
}

// submit queues t. With now set, it also dispatches and writes on the
// calling goroutine, which is what a caller about to wait for the answer
// wants: no handoff to another goroutine on the way out. If t went to an
// idle worker, that worker is returned claimed: the caller reads t's answer
// itself (worker.readFor), on its own thread.
func (p *Pool) submit(t *task, now bool) (*worker, error) {
	return p.enqueue(t, now, !now)
}

// enqueue is submit with the dispatch left to the caller when neither now
// nor kick is set: Map and Imap queue a run of chunks, then pump once.
func (p *Pool) enqueue(t *task, now, kick bool) (*worker, error) {
	p.mu.Lock()
	// Reading the clock is not free on these machines: during a burst of
	// submissions the last reading serves up to 64 of them (a few µs
	// stale at most); an idle pool reads it afresh.
	if p.queue.len() == 0 || p.clockUses >= 64 {
		p.clock, p.clockUses = time.Now(), 0
	}
	p.clockUses++
	t.submitted = p.clock.Sub(p.epoch)
	switch p.state {
	case poolRunning:
	case poolBroken:
		err := p.brokenErr // a probe may change it once the lock is gone
		p.mu.Unlock()
		return nil, err
	default:
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	if !p.servesLocked(t.fn) {
		err := p.unknownFunctionLocked(t.fn)
		p.mu.Unlock()
		return nil, err
	}
	p.pending.Add(1)
	p.queue.pushBack(t)
	if !now {
		p.mu.Unlock()
		if kick {
			p.kickDispatcher()
		}
		return nil, nil
	}
	p.claimant = t
	touched, ended := p.dispatchLocked()
	claimed := p.claimed
	p.claimant, p.claimed = nil, nil
	p.mu.Unlock()
	for _, w := range touched {
		w.flush()
	}
	p.cancelEnded(ended)
	return claimed, nil
}

// unknownFunctionLocked is the error of a call to fn, which the workers do
// not serve, with the hint that fits them. Only a worker that re-executes
// this program can be missing a function this process has: one registered
// after package init. A Go worker (its hello's runtime says go1.x) is built
// on workerproc and registers its functions itself; others list theirs.
func (p *Pool) unknownFunctionLocked(fn string) error {
	if len(p.cfg.Command) == 0 && p.cfg.SelfBinary != "" {
		return fmt.Errorf("%w: the workers (%s, standing in for this program) do not serve %q: it must link the same registrations as this program", ErrUnknownFunction, p.cfg.SelfBinary, fn)
	}
	if len(p.cfg.Command) == 0 {
		return fmt.Errorf("%w: the workers (this program, re-executed) do not serve %q: register it with workerproc.Register in a package-level var, so that it runs at package init; one registered later exists in this process only", ErrUnknownFunction, fn)
	}
	workers := fmt.Sprintf("%s, %s", strings.Join(p.cfg.Command, " "), p.runtime)
	if strings.HasPrefix(p.runtime, "go1.") || strings.HasPrefix(p.runtime, "devel go1.") { // runtime.Version()
		return fmt.Errorf("%w: the workers (%s) do not serve %q: register it in that program, with workerproc.Register in a package-level var", ErrUnknownFunction, workers, fn)
	}
	names := slices.Sorted(maps.Keys(p.functions))
	const shown = 20
	more := ""
	if len(names) > shown {
		names, more = names[:shown], fmt.Sprintf(" and %d more", len(names)-shown)
	}
	return fmt.Errorf("%w: the workers (%s) do not serve %q; they serve %s%s", ErrUnknownFunction, workers, fn, strings.Join(names, ", "), more)
}

// cancel resolves t as cancelled. A task still in the pool's queue is simply
// dropped; one sent to a worker is cancelled there too. With kill set, a
// running task that does not stop within KillGrace costs its worker its
// life; without, it is left to finish and its answer is discarded.
func (p *Pool) cancel(t *task, cause error, kill bool) {
	p.mu.Lock()
	if t.x != nil && t.x.split != nil {
		// A batch split into items: they are what runs.
		items := t.x.split
		p.mu.Unlock()
		for _, it := range items {
			p.cancel(it, cause, kill)
		}
		return
	}
	if t.claimed.Load() {
		p.mu.Unlock()
		return
	}
	w, flush := t.w, false
	if pk := t.packedIn; pk != nil && w != nil {
		// Sent in a pack: the others in it must not suffer. If the pack is
		// running, it is stopped like any running task and the others go
		// back to the queue; if it is waiting in the worker, it runs, and
		// this task's answer is dropped.
		t.packedIn = nil
		if kill && w.abandonHead(pk) {
			pk.w, flush = nil, true
			p.unpackLocked(pk, false)
		}
	} else if w != nil {
		flush = w.abandonTask(t, kill)
		t.w = nil
	}
	p.mu.Unlock()
	if flush {
		w.flush()
	}
	p.finish(t, nil, &CancelledError{TaskRef: t.ref(0), Cause: cause})
}

// servesLocked reports whether the workers serve fn, as far as the pool
// knows (before the first hello it does not, and lets the call through).
func (p *Pool) servesLocked(fn string) bool {
	if p.functions == nil || fn != "" && fn == p.served {
		return true
	}
	if !p.functions[fn] {
		return false
	}
	p.served = fn
	return true
}

func (p *Pool) kickDispatcher() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// dispatcher hands queued tasks to workers whenever something was queued
// without being dispatched on the spot (ApplyAsync, a worker becoming ready).
// Running it on its own goroutine is what lets a burst of ApplyAsync calls
// reach the workers in a few large writes.
func (p *Pool) dispatcher() {
	defer p.bgDone.Done()
	for {
		select {
		case <-p.kick:
			p.pump()
		case <-p.quit:
			return
		}
	}
}

// pump sends queued tasks to workers with room, then writes them out.
func (p *Pool) pump() {
	p.mu.Lock()
	touched, ended := p.dispatchLocked()
	p.mu.Unlock()
	for _, w := range touched {
		w.flush()
	}
	p.cancelEnded(ended)
}

// windowLocked is how many tasks a worker may have in flight: enough queued
// behind the running one to cover about a millisecond of work, so tiny tasks
// stream while slow tasks are not hoarded by one worker.
func (p *Pool) windowLocked() int {
	if p.cfg.Prefetch == 1 || p.avgTask >= float64(soloAbove) {
		return 1
	}
	n := 2
	if p.avgTask > 0 {
		n = int(float64(time.Millisecond)/p.avgTask) + 2
	}
	return min(max(n, 2), p.cfg.Prefetch)
}

// soloAbove is the average task run time from which a worker gets its next
// task only once it has answered the last: a task queued behind a slow one
// could have run on a worker that falls idle meanwhile, and at the end of a
// job that idles a worker for a whole task. Waiting for the answer costs a
// pipe round trip, tens of µs, under 2% of such a task.
const soloAbove = 2 * time.Millisecond

// dispatchLocked hands queued tasks to workers with room. It returns the
// workers to flush, and the tasks it took from the queue because their
// context had ended, for the caller to cancel once the lock is released.
func (p *Pool) dispatchLocked() (touched []*worker, ended []*task) {
	if p.queue.len() == 0 || (p.state != poolRunning && p.state != poolClosing) {
		return nil, nil
	}
	window := p.windowLocked()
	now := time.Now()
	// Every connection's lock is held for the dispatch, taken once, not
	// once per task: the scan below reads each worker's load per task.
	for _, w := range p.workers {
		w.mu.Lock()
	}
	defer func() {
		for _, w := range p.workers {
			w.mu.Unlock()
		}
	}()
	for p.queue.len() > 0 {
		var best *worker
		least := 0
		for _, w := range p.workers {
			if n, room := w.loadLocked(window); room && (best == nil || n < least) {
				best, least = w, n
			}
		}
		if best == nil {
			break
		}
		t := p.queue.popFront()
		if t.claimed.Load() {
			continue // cancelled while queued
		}
		if t.contextEnded() {
			ended = append(ended, t)
			continue
		}
		if p.packableLocked(t) {
			t = p.packLocked(t)
		}
		t.w = best
		if best.sendLocked(t, t == p.claimant, now) {
			p.claimed = best // the caller will read this answer itself (worker.readFor)
		}
		if t.pack() != nil {
			p.sentLocked(t, best)
		}
		if !slices.Contains(touched, best) {
			touched = append(touched, best)
		}
	}
	return touched, ended
}

func (t *task) timeout() time.Duration {
	if t.batch != nil {
		return t.opts.timeout * time.Duration(t.batch.n)
	}
	return t.opts.timeout
}

// retryLocked re-queues t if it has attempts left, at the front of the
// queue: it has waited longest. cause is why the attempt failed; the task's
// TaskInfo keeps it.
func (p *Pool) retryLocked(t *task, cause error) bool {
	if p.state == poolStopped || p.state == poolBroken {
		return false
	}
	if t.pack() != nil {
		// Not a retry of anyone yet: the tasks run again alone, and only
		// the one at fault is charged when it fails again.
		p.unpackLocked(t, true)
		return true
	}
	if int(t.attempts) >= t.opts.retries {
		return false
	}
	t.attempts++
	t.extra().retriedAfter = append(t.extra().retriedAfter, cause)
	p.stats.retried.Add(1)
	t.w = nil
	p.queue.pushFront(t)
	p.kickDispatcher()
	return true
}

// failOrRetryLocked decides the fate of a task whose run ended in a crash,
// timeout or memory kill: a batch of several items is split so that only
// the item at fault can fail; a single task is retried if it has attempts
// left. It returns fail=true if t must be finished with the cause, and the
// split items to queue, if any.
func (p *Pool) failOrRetryLocked(t *task, cause error) (fail bool, split []*task) {
	if t.batch != nil && t.batch.n > 1 {
		if split = p.splitLocked(t); split != nil {
			return false, split
		}
		return true, nil // it cannot be split: it fails whole
	}
	return !p.retryLocked(t, cause), nil
}

func (p *Pool) afterFailOrRetry(t *task, fail bool, split []*task, cause error) {
	if fail {
		p.finish(t, nil, cause)
	}
	if split != nil {
		p.pump()
	}
}

// splitLocked replaces a batch by one task per item, at the front of the
// queue in item order. The batch itself is never resolved; its items are.
// It returns nil if the batch's arguments do not split, which the checks
// in chunk rule out.
func (p *Pool) splitLocked(b *task) []*task {
	all, err := ipc.SplitArray(b.batch.args)
	if err == nil && len(all) != b.batch.n {
		err = fmt.Errorf("%d items for a batch of %d", len(all), b.batch.n)
	}
	if err != nil {
		p.log.Error("a batch's own arguments do not split", "task", b.id, "function", b.fn, "err", err)
		return nil
	}
	// From here the items answer for the batch, which nothing may resolve
	// any more (its cancel cancels them instead): resolved too, it would
	// report every item a second time.
	if !b.claimed.CompareAndSwap(false, true) {
		return nil // resolved meanwhile (cancelled): its items must not run
	}
	if b.watch != nil {
		// The items are watched as the batch was: one watch entry each.
		b.watch.live.Add(int64(len(all) - 1))
	}
	items := make([]*task, len(all))
	b.extra().split = items
	for i, args := range all {
		t := &task{
			id: p.nextID.Add(1), fn: b.fn, opts: b.opts, watch: b.watch,
			x: &extra{parent: b, index: i}, schedule: schedule{submitted: b.submitted},
		}
		t.frame = ipc.AppendTask(nil, t.id, b.fn, args, t.opts.timeout, false)
		t.onDone = splitDone
		items[i] = t
	}
	for i := len(items) - 1; i >= 0; i-- {
		p.queue.pushFront(items[i])
	}
	p.pending.Add(int64(len(items) - 1))
	p.kickDispatcher()
	return items
}

func splitDone(t *task) {
	t.x.parent.batch.itemDone(t.x.index, t.value, t.err)
	t.x.parent.batch.settle(1)
}

// queue is the pool's FIFO of tasks waiting for a worker: a ring buffer, so
// a long run of submissions does not keep reallocating.
type queue struct {
	buf        []*task
	head, size int
}

func (q *queue) len() int { return q.size }

// at returns the i-th queued task, 0 being the next out.
func (q *queue) at(i int) *task { return q.buf[(q.head+i)%len(q.buf)] }

func (q *queue) grow() {
	n := max(16, 2*len(q.buf))
	nb := make([]*task, n)
	for i := range q.size {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *queue) pushBack(t *task) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = t
	q.size++
}

func (q *queue) pushFront(t *task) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = t
	q.size++
}

func (q *queue) popFront() *task {
	t := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 && len(q.buf) > 1<<16 {
		*q = queue{} // give back the memory of a big burst
	}
	return t
}

// drain removes and returns every queued task.
func (q *queue) drain() []*task {
	out := make([]*task, 0, q.size)
	for q.size > 0 {
		out = append(out, q.popFront())
	}
	return out
}
