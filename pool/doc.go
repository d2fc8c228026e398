// Package pool runs functions in worker processes, one per CPU core, with
// the API of Python's multiprocessing.Pool made typed, cancellable and
// crash-proof.
//
// Register functions at package init with workerproc.Register, call
// workerproc.Main first thing in main, then:
//
//	p, err := pool.New(ctx, pool.Config{}) // one worker per core
//	defer p.Close(ctx)
//
//	v, err := pool.Apply(ctx, p, square, 7)             // run and wait
//	r := pool.ApplyAsync(ctx, p, square, 8)             // run in the background
//	vs, err := pool.Map(ctx, p, square, []int{1, 2, 3}) // many inputs, in chunks
//	for v, err := range pool.Imap(ctx, p, square, inputs) { ... }
//
// # Faults
//
// Each task's failure says what happened, as a typed error that errors.As
// finds:
//
//   - *WorkerExitError: the worker running it died (crash, SIGKILL, the
//     kernel's OOM killer), with its pid, exit status or signal and the last
//     lines it wrote.
//   - *TimeoutError: it ran past its timeout (Config.TaskTimeout or the
//     Timeout option); errors.Is(err, context.DeadlineExceeded) holds. The
//     clock starts when the task starts running, not while it waits.
//   - *MemoryLimitError: its worker went over Config.MaxWorkerMemory.
//   - *RemoteError: the function returned an error or panicked (with the
//     worker's stack in Traceback); errors.Is matches ErrUnknownFunction
//     and ErrBadArguments for those cases.
//   - *CancelledError: AsyncResult.Cancel or the call's context;
//     errors.Is(err, context.Canceled) holds.
//
// Only the task at fault fails: tasks that were queued on a dead worker run
// elsewhere, a Map chunk hit by a crash is split so only the guilty item
// fails, and a replacement worker is started at once. Crashes, timeouts and
// memory kills are retried up to Retries times. Workers that keep failing
// to start (CrashLoopLimit in a row, each retried after a backoff) make
// the pool fail its calls with ErrCrashLoop instead of restarting them in a
// tight loop; after a longer backoff it tries one worker again, and runs
// again once one starts.
//
// # Processes
//
// Workers get their own process group, a cgroup of their own where the
// machine offers cgroup v2 to this process (as root, or delegated), a
// parent-death signal and an oom_score_adj that makes the kernel pick them
// before the master. When a worker dies its whole process group and cgroup
// are killed, and a small reaper process kills those of any workers left if
// the master itself is killed, so programs that workers start do not
// outlive ppool either; without a cgroup, one that leaves its worker's
// process group (setsid) does. Close waits for every process and goroutine
// the pool started (but for the callbacks goroutine in the two cases its
// doc names).
//
// A worker inherits only its own descriptors (docs/protocol.md lists them):
// before each start the pool sets close-on-exec on every descriptor of this
// process above 2 that lacks it. A program that means to pass a descriptor
// to a child process of its own passes it explicitly, as os/exec's
// ExtraFiles does, which works whatever the flag.
package pool
