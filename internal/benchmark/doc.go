// Package benchmark measures what ppool costs and what it buys, in one run,
// for `ppool bench`: the floor any pipe-based pool can reach on this machine
// (two processes echoing 16 bytes over fds 3 and 4), the pool's own
// overheads (Apply round trip, ApplyAsync, Map and ImapUnordered throughput,
// start time, idle worker memory, large payloads), and CPU-bound work in
// workers (a float64 matrix product, a Gaussian blur) with the speedup of
// all workers over one. With Python and its numpy and Pillow present, the
// same run measures multiprocessing.Pool on the same machine, so that the
// ratios between the two come from one run on one (noisy) machine.
//
// Run returns a Report, which prints as a table (WriteTable) or as one JSON
// object (WriteJSON):
//
//	r, err := benchmark.Run(ctx, benchmark.Options{Python: true})
//	if err != nil { ... }
//	r.WriteJSON(os.Stdout)
//
// The worker functions the measurements call are registered at package
// init, so every binary that imports this package serves them in its
// workers (its main must call workerproc.Main first, as cmd/ppool does).
// The pipe floor's echo child is the binary the workers run
// (Options.SelfBinary, else this same one), started with pipeecho.Env
// set: package pipeecho, which this package and ppool-worker import,
// turns such a process into the echo child before main runs.
package benchmark
