// Package served links every worker function that ppool's own pools call:
// the jobs runner's jobs.task with every built-in kind, and ppool bench's
// functions. Both ppool and its slim worker binary, ppool-worker, import
// it, so that both serve the same set; it links no pool, CLI or
// distribution package, so that the worker binary stays small.
package served

import (
	_ "github.com/ppool/ppool/internal/benchmark/benchfunc" // bench.*
	_ "github.com/ppool/ppool/jobs/image"                   // the image kinds
	_ "github.com/ppool/ppool/jobs/kinds"                   // jobs.task
	_ "github.com/ppool/ppool/jobs/matrix"                  // the matrix kinds
)
