package pool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ppool/ppool/ipc"
)

// task is one unit of work as the pool schedules it: a single call, or a
// batch of items (a Map or Imap chunk) sent in one frame. Its own fields
// are what the caller gave, set before it is submitted and read-only
// after; schedule is how the scheduler sends it and where and when it
// ran, and outcome how it ended. The parts are embedded, so that t.id,
// t.started and t.value read alike, and share one allocation: a burst of
// ApplyAsync calls makes a million tasks (asyncCall keeps them in a
// 320-byte size class, which the order of the small fields below keeps).
type task struct {
	id     uint64
	fn     string
	frame  []byte // the whole task frame, ready to write
	opts   *callOptions
	batch  *batch      // a batch of items (a Map or Imap chunk); nil for a single call
	x      *extra      // what only some tasks need; nil for most
	onDone func(*task) // called once resolved, on the resolving goroutine
	watch  *ctxWatch   // ApplyAsync: the watch on its context, if that can end

	schedule
	outcome
}

// schedule is how the scheduler sends a task, and where and when it ran:
// guarded by the pool's mutex, but for argOff, set before the task is
// submitted, and for what is read only once the task is resolved.
type schedule struct {
	// Tiny single tasks queued together are sent in packs: one batch frame
	// for several tasks (see pack.go).
	argOff   int32 // where the encoded argument starts in frame; 0: never packed
	attempts int32 // runs started that ended in a crash, timeout or memory kill
	pid      int32 // the worker that ran it last
	solo     bool  // was in a pack that failed: runs alone from now on
	packedIn *task // a task sent in a pack: that pack

	w *worker // the worker it was sent to; nil while in the pool's queue

	// Times since the pool's epoch: a time.Time is three words, one of them
	// a pointer.
	submitted time.Duration
	started   time.Duration // when it last reached the head of a worker's queue; 0: never
}

// outcome is how a task ended: whoever resolves it claims it, records the
// value or error, then sets resolved; it is read after.
type outcome struct {
	claimed  atomic.Bool // resolve has begun: the outcome is being recorded
	resolved atomic.Bool // the outcome is recorded and may be read
	// done is made only when someone has to wait (most waiters find the task
	// resolved already), and closed once resolved; doneMu guards making it.
	doneMu sync.Mutex
	done   chan struct{}

	value    []byte
	err      error
	duration time.Duration // run time as the worker measured it
}

// extra holds what only some tasks need, so that the common one, a single
// call, stays small: a burst of ApplyAsync calls is bound by allocation.
type extra struct {
	tail   []byte  // Apply of a large []byte: the argument, written after frame from where it is
	pack   []*task // a pack: the tasks it carries
	parent *task   // a split item: the batch it came from
	index  int     // a split item: its index in the batch

	retriedAfter []error // why each earlier attempt failed; guarded by the pool's mutex until resolved
	split        []*task // a batch split into single items: they answer for it; guarded by the pool's mutex
}

// extra returns t.x, making it on first use.
func (t *task) extra() *extra {
	if t.x == nil {
		t.x = &extra{}
	}
	return t.x
}

func (t *task) tail() []byte {
	if t.x == nil {
		return nil
	}
	return t.x.tail
}

// pack returns the tasks of a pack; nil if t is not one.
func (t *task) pack() []*task {
	if t.x == nil {
		return nil
	}
	return t.x.pack
}

// batch is what a batch task carries besides its frame: its items'
// encoded arguments, the msgpack array in the frame, so that it can be
// split into single tasks when its worker dies and only the guilty item
// fails, and where the items' outcomes go.
type batch struct {
	n        int
	args     []byte
	itemDone func(i int, raw []byte, err error) // called once per item, maybe concurrently
	settled  func(n int)                        // optional: n more items were handed to itemDone
	failed   *atomic.Uint64                     // the pool's count of failed calls, for items that fail
}

// batchDone is a batch's onDone: it hands each item its value or error.
func batchDone(t *task) {
	b := t.batch
	if t.err != nil {
		for i := range b.n {
			b.itemDone(i, nil, t.err)
		}
		b.settle(b.n)
		return
	}
	var failed uint64 // items the worker answered with an error
	r, err := ipc.NewBatchReader(t.value)
	if err == nil && r.Len() != b.n {
		err = fmt.Errorf("worker %d answered %d items for a batch of %d", t.pid, r.Len(), b.n)
	}
	for i := range b.n {
		var it ipc.ItemResult
		if err == nil {
			it, err = r.Next()
		}
		if err != nil {
			// The items from here on have no answer that can be read.
			err = fmt.Errorf("task %d (%s): %w", t.id, t.fn, err)
			for j := i; j < b.n; j++ {
				b.itemDone(j, nil, err)
			}
			b.failed.Add(failed + uint64(b.n-i))
			b.settle(b.n)
			return
		}
		var ierr error
		if it.Err != nil {
			ierr = remoteError(t, int(t.pid), it.Err)
			failed++
		}
		b.itemDone(i, it.Value, ierr)
	}
	b.failed.Add(failed)
	b.settle(b.n)
}

func (b *batch) settle(n int) {
	if b.settled != nil {
		b.settled(n)
	}
}

// resolve records the outcome. Only the first call has any effect; it
// reports whether it was the first.
func (t *task) resolve(value []byte, err error) bool {
	if !t.claimed.CompareAndSwap(false, true) {
		return false
	}
	t.complete(value, err)
	return true
}

// calls is how many calls t carries: a batch's items, a pack's tasks.
func (t *task) calls() int {
	if t.batch != nil {
		return t.batch.n
	}
	return max(1, len(t.pack()))
}

// complete records the outcome of t, already claimed by the caller, and
// wakes whoever waits.
func (t *task) complete(value []byte, err error) {
	t.value, t.err = value, err
	t.publish()
}

// publish makes t's recorded outcome visible and wakes whoever waits.
func (t *task) publish() {
	t.doneMu.Lock()
	t.resolved.Store(true)
	if t.done != nil {
		close(t.done)
	}
	t.doneMu.Unlock()
	if t.onDone != nil {
		t.onDone(t)
	}
}

// closedChan is the Done channel of every task resolved before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// doneChan returns a channel closed once t is resolved.
func (t *task) doneChan() <-chan struct{} {
	t.doneMu.Lock()
	defer t.doneMu.Unlock()
	if t.done == nil {
		if t.resolved.Load() {
			return closedChan
		}
		t.done = make(chan struct{})
	}
	return t.done
}
