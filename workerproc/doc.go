// Package workerproc is the worker side of ppool: the loop that serves
// tasks in a worker process, and the registry of functions it serves.
//
// Functions are registered at package init, typed by their argument and
// result:
//
//	var Resize = workerproc.Register("resize", func(ctx context.Context, in ResizeArgs) (Image, error) {
//		...
//	})
//
// The returned Func is a handle the master calls through a pool (see package
// pool). Because worker processes run the same init code, a function
// registered this way exists in both.
//
// The built-in worker is the master's own binary, re-executed with the
// environment variable PPOOL_WORKER set. Main, called first thing in main,
// notices the marker and turns the process into a worker; in the master it
// returns at once. There is no hidden subcommand:
//
//	func main() {
//		workerproc.Main()
//		// the program proper
//	}
//
// A custom worker binary calls Serve with a registry of its own instead.
//
// A worker runs one task at a time, in the order they arrive, on fds 3 and 4
// (see docs/protocol.md). A panic becomes an error carrying the stack; a
// cancel from the master cancels the task's context; the worker exits when
// the master sends shutdown or closes its pipe. GOMAXPROCS is set to the
// thread budget the pool gives (default 1), so N workers use N cores.
package workerproc
