package pool_test

import (
	"context"
	"errors"
	"iter"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// mark leaves a file in the directory it is given: proof that it ran.
var mark = workerproc.Register("mark", func(ctx context.Context, dir string) (int, error) {
	f, err := os.CreateTemp(dir, "ran-")
	if err != nil {
		return 0, err
	}
	return os.Getpid(), f.Close()
})

// reached counts the tasks the pool's workers have been sent: answered,
// or waiting for their answer (workers answer every task they get, even
// a cancelled one).
func reached(p *pool.Pool) (answered, inFlight int) {
	for _, w := range p.Stats().PerWorker {
		answered += w.Finished
		inFlight += w.InFlight
	}
	return answered, inFlight
}

// TestEndedContextSendsNothing: a call made under a context that has
// already ended fails with a *CancelledError and never reaches a worker,
// whichever entry point it goes through. Under load the dispatcher could
// send an ApplyAsync task before the call noticed its context (a few in
// a thousand), and Apply, Map and Imap sent theirs every time.
func TestEndedContextSendsNothing(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	// No worker is ever killed here, so their answer counts only grow.
	p := newPool(t, pool.Config{Workers: 2, KillGrace: time.Minute})
	// Live calls first, so that the pool knows the function's run time
	// and packs a burst of ApplyAsync calls, as it would in real use.
	live := t.TempDir()
	for range 200 {
		pool.ApplyAsync(ctx, p, mark, live)
	}
	if _, err := pool.Map(ctx, p, mark, slices.Repeat([]string{live}, 50)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "live calls not all answered", func() bool {
		_, n := reached(p)
		return n == 0 && p.Stats().Queued == 0
	})
	before, _ := reached(p)

	ended, cancel := context.WithCancel(ctx)
	cancel()
	wrong := map[string]int{} // calls that did not fail as cancelled, by entry point
	cancelled := func(api string, err error) {
		t.Helper()
		var ce *pool.CancelledError
		if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
			if wrong[api] == 0 {
				t.Errorf("%s under an ended context: %v (%T), want a *pool.CancelledError", api, err, err)
			}
			wrong[api]++
		}
	}
	const n = 500
	for range n {
		_, err := pool.Apply(ended, p, mark, dir)
		cancelled("Apply", err)
	}
	results := make([]*pool.AsyncResult[int], 6*n) // the rarest: a few in a thousand
	for i := range results {
		results[i] = pool.ApplyAsync(ended, p, mark, dir)
	}
	for _, r := range results {
		_, err := r.Get(ctx)
		cancelled("ApplyAsync", err)
	}
	inputs := slices.Repeat([]string{dir}, 8)
	for range n / 10 {
		out, err := pool.Map(ended, p, mark, inputs)
		cancelled("Map", err)
		if out != nil {
			t.Errorf("Map under an ended context returned results: %v", out)
		}
	}
	imaps := map[string]func(context.Context, *pool.Pool, workerproc.Func[string, int], iter.Seq[string], ...pool.Option) iter.Seq2[int, error]{
		"Imap":          pool.Imap[string, int],
		"ImapUnordered": pool.ImapUnordered[string, int],
	}
	for api, imap := range imaps {
		for range n / 10 {
			yields := 0
			for _, err := range imap(ended, p, mark, slices.Values(inputs)) {
				yields++
				cancelled(api, err)
			}
			if yields != 1 {
				t.Errorf("%s under an ended context yielded %d times, want once (its error)", api, yields)
			}
		}
	}

	for api, n := range wrong {
		t.Errorf("%s: %d calls under an ended context did not fail as cancelled", api, n)
	}
	// Whatever was sent is answered before the workers go idle; nothing
	// must have been.
	eventually(t, 10*time.Second, "tasks still in flight", func() bool { _, n := reached(p); return n == 0 })
	if after, _ := reached(p); after != before {
		t.Errorf("workers answered %d tasks sent under an ended context, want none", after-before)
	}
	if s := p.Stats(); s.Restarts != 0 || s.Workers != 2 {
		t.Errorf("%d workers, %d restarts: the count of answers above is incomplete", s.Workers, s.Restarts)
	}
	ran, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) != 0 {
		t.Errorf("%d calls under an ended context ran", len(ran))
	}
}

// TestImapEndsCleanAfterLastItem: a context that ends once Imap has
// yielded every result adds no error after them; one that ends before
// stops it with a *CancelledError.
func TestImapEndsCleanAfterLastItem(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, pool.Config{Workers: 2})
	for _, imap := range []func(context.Context, *pool.Pool, workerproc.Func[int, int], iter.Seq[int], ...pool.Option) iter.Seq2[int, error]{
		pool.Imap[int, int], pool.ImapUnordered[int, int],
	} {
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		for _, err := range imap(cctx, p, square, slices.Values([]int{1, 2, 3, 4, 5}), pool.ChunkSize(2)) {
			if err != nil {
				t.Fatalf("after %d results: %v", n, err)
			}
			if n++; n == 5 {
				cancel() // the last result is in
			}
		}
		cancel()
		if n != 5 {
			t.Errorf("%d results, want 5", n)
		}
		cctx, cancel = context.WithCancel(ctx)
		var errs []error
		for _, err := range imap(cctx, p, square, slices.Values([]int{1, 2, 3, 4, 5}), pool.ChunkSize(2)) {
			if err != nil {
				errs = append(errs, err)
			}
			cancel() // after the first result
		}
		cancel()
		var ce *pool.CancelledError
		if len(errs) != 1 || !errors.As(errs[0], &ce) || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("context ended after the first result: errors %v, want one *CancelledError", errs)
		}
	}
}
