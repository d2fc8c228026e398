package pool

import (
	"fmt"
	"time"

	"github.com/ppool/ppool/ipc"
)

// Packs. When tiny tasks pile up in the queue (a burst of ApplyAsync
// calls), the dispatcher sends several of them to a worker in one batch
// frame, as Map sends a chunk: the worker decodes one frame and answers
// with one, and the pool handles one answer, for the lot. Each task keeps
// its own outcome, callbacks, context and error.
//
// Only tasks that cannot tell the difference are packed: the same
// function, timeout and memory limit, errors not retried, and a recent
// average run time under packBelow, so that a pack is done within about
// packSpan. A pack that fails as a whole (its worker crashed, or was killed
// over its memory limit, or the pack ran past its tasks' timeout) is
// undone: its unfinished tasks go back to the front of the queue, marked
// solo, and run alone, so that only the guilty one fails, as with a Map
// chunk. A pack's timeout is its tasks' own, which a pack of tiny tasks is
// far from needing: tasks with a timeout under packMinTimeout are not
// packed.
const (
	packBelow = 20 * time.Microsecond  // average task run time under which tasks are packed
	packSpan  = 200 * time.Microsecond // what a pack should take to run
	packMax   = 512                    // tasks in one pack
	packBytes = 32 << 10               // their arguments, encoded

	packMinTimeout = 50 * time.Millisecond // tasks with a shorter timeout run alone
)

// packableLocked reports whether t, just taken from the queue's front,
// may lead a pack.
func (p *Pool) packableLocked(t *task) bool {
	return p.queue.len() > 0 && p.avgItem > 0 && p.avgItem < float64(packBelow) &&
		p.cfg.MaxTasksPerWorker == 0 && soloOK(t) && t != p.claimant
}

// soloOK reports whether t could travel in a pack at all.
func soloOK(t *task) bool {
	return t.argOff > 0 && !t.solo && t.x == nil && t.batch == nil &&
		(t.opts.timeout == 0 || t.opts.timeout >= packMinTimeout) && !t.opts.retryErrors
}

// packLocked takes the tasks behind head in the queue that can travel with
// it, up to a fair share of the queue for each of the workers, and returns
// the pack, or head alone if nothing could join it.
func (p *Pool) packLocked(head *task) *task {
	n := min(packMax, int(float64(packSpan)/p.avgItem))
	if w := len(p.workers); w > 0 {
		n = min(n, (p.queue.len()+1+w-1)/w)
	}
	if n < 2 {
		return head
	}
	members := []*task{head}
	size := len(head.frame) - int(head.argOff)
	for len(members) < n && p.queue.len() > 0 {
		t := p.queue.at(0)
		if t.claimed.Load() {
			p.queue.popFront() // cancelled while queued
			continue
		}
		size += len(t.frame) - int(t.argOff)
		if t.fn != head.fn || t.opts.timeout != head.opts.timeout || t.opts.memory != head.opts.memory || !soloOK(t) || t == p.claimant || size > packBytes || t.contextEnded() {
			break
		}
		members = append(members, p.queue.popFront())
	}
	if len(members) == 1 {
		return head
	}
	pk := &task{id: p.nextID.Add(1), fn: head.fn, opts: head.opts, x: &extra{pack: members}, schedule: schedule{submitted: head.submitted}}
	// No timeout on the wire: the worker would fail the tasks left when it
	// fires; the pool's own timer undoes the pack instead.
	b, start := ipc.AppendTaskHead(p.packBuf[:0], pk.id, pk.fn, 0, true)
	b = ipc.AppendArrayHeader(b, len(members))
	for _, t := range members {
		b = append(b, t.frame[t.argOff:]...)
		t.packedIn = pk
	}
	pk.frame = ipc.EndFrame(b, start)
	return pk
}

// sentLocked is called once a pack's frame is queued for its worker w:
// the frame was copied out, and its buffer serves the next pack.
func (p *Pool) sentLocked(pk *task, w *worker) {
	p.stats.packed.Add(uint64(len(pk.x.pack)))
	for _, t := range pk.x.pack {
		t.w = w
	}
	if cap(pk.frame) <= packBytes*2 {
		p.packBuf = pk.frame[:0]
	}
	pk.frame = nil
}

// unpackLocked puts a pack's unfinished tasks back at the front of the
// queue, in order. With solo set they were in a pack that failed, and run
// alone from now on.
func (p *Pool) unpackLocked(pk *task, solo bool) {
	for i := len(pk.x.pack) - 1; i >= 0; i-- {
		t := pk.x.pack[i]
		if t.packedIn != pk || t.claimed.Load() {
			continue
		}
		t.w, t.packedIn = nil, nil
		t.solo = t.solo || solo
		p.queue.pushFront(t)
	}
	p.kickDispatcher()
}

// finishPack hands each task of a pack its own outcome.
func (p *Pool) finishPack(pk *task, value []byte, err error) {
	var items []ipc.ItemResult
	if err == nil {
		items, err = ipc.DecodeBatch(value)
		if err == nil && len(items) != len(pk.x.pack) {
			err = fmt.Errorf("worker %d answered %d items for a batch of %d", pk.pid, len(items), len(pk.x.pack))
		}
		if err != nil {
			err = fmt.Errorf("task %d (%s) and %d others sent with it: %w", pk.x.pack[0].id, pk.fn, len(pk.x.pack)-1, err)
		}
	}
	share := pk.duration / time.Duration(len(pk.x.pack))
	// Outcomes are recorded first and counted once for the pack; then the
	// tasks are published, and released in runs of one context: the
	// pool's counters are shared with the other readers.
	mine := make([]bool, len(pk.x.pack))
	var done, failed uint64
	for i, t := range pk.x.pack {
		if !t.claimed.CompareAndSwap(false, true) {
			continue // cancelled meanwhile: its answer is dropped
		}
		mine[i] = true
		t.pid, t.started, t.duration = pk.pid, pk.started, share
		switch {
		case err != nil:
			t.err = blame(err, t)
		case items[i].Err != nil:
			t.err = remoteError(t, int(pk.pid), items[i].Err)
		default:
			t.value = items[i].Value
		}
		if t.err != nil {
			failed++
		} else {
			done++
		}
	}
	p.stats.done.Add(done)
	p.stats.failed.Add(failed)
	var run *ctxWatch
	runLen := 0
	for i, t := range pk.x.pack {
		if !mine[i] {
			continue
		}
		t.publish()
		if t.watch != run && runLen > 0 {
			p.release(run, runLen)
			runLen = 0
		}
		run = t.watch
		runLen++
	}
	if runLen > 0 {
		p.release(run, runLen)
	}
}

// blame returns a pack's failure as the failure of t, one of its tasks.
// A failure that names a task is copied with t's name in place of the
// pack's, and the same worker.
func blame(err error, t *task) error {
	if e, ok := err.(taskFailure); ok {
		return attach(e, t.ref(e.taskRef().PID))
	}
	return fmt.Errorf("task %d (%s), sent with others: %w", t.id, t.fn, err)
}
