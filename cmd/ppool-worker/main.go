// Command ppool-worker is ppool's slim worker binary. ppool runs it as the
// workers of its own pools when it sits beside the ppool executable and
// was built from the same code (see internal/workerbin): it serves the
// same functions as ppool (package served) but links no CLI, NATS,
// Prometheus or go-plugin, so each worker starts sooner and holds less
// memory. Started by hand it says so and exits with status 2.
package main

import (
	"fmt"
	"os"

	_ "github.com/ppool/ppool/internal/benchmark/pipeecho" // ppool bench's pipe floor echoes through the workers' binary
	_ "github.com/ppool/ppool/internal/served"             // the functions ppool's pools call
	"github.com/ppool/ppool/workerproc"
)

func main() {
	if os.Getenv(workerproc.EnvWorker) == "" {
		fmt.Fprintln(os.Stderr, "ppool-worker: this is ppool's worker process, started by ppool for its pools; run ppool instead (ppool --help)")
		os.Exit(2)
	}
	workerproc.Main() // serves tasks and exits
	os.Exit(1)        // not reached: Main returns only without PPOOL_WORKER
}
