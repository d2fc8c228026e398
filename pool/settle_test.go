package pool_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
)

// settled waits until the pool has n workers, each ready and idle, and
// nothing queued, and returns its Stats then. A worker that is still to be
// killed (a hung task's, waiting out KillGrace) is stalled, and one being
// replaced is not counted, so from then on Restarts can change only if
// something new happens: a count read earlier may be one short, whatever
// the test waited for before, when the machine is busy.
func settled(t *testing.T, p *pool.Pool, n int) pool.Stats {
	t.Helper()
	var s pool.Stats
	eventually(t, 10*time.Second, fmt.Sprintf("pool not settled at %d idle workers", n), func() bool {
		s = p.Stats()
		if s.Workers != n || s.Queued != 0 {
			return false
		}
		for _, w := range s.PerWorker {
			if w.State != "ready" || w.InFlight != 0 {
				return false
			}
		}
		return true
	})
	return s
}
