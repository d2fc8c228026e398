// Package workerproctest is the conformance suite for ppool workers: it
// runs any worker program, in any language, through the protocol described
// in docs/protocol.md and says, check by check, what it gets wrong.
//
//	results := workerproctest.Run(ctx, []string{"/usr/bin/python3", "worker.py"}, workerproctest.Options{})
//	if !workerproctest.Report(os.Stdout, results) {
//		os.Exit(1)
//	}
//
// prints one line per check, "PASS name" or "FAIL name: reason". The
// command `ppool worker check BINARY [ARGS...]` is the same thing.
//
// Each check starts a fresh worker the way the pool does (fds 3 and 4,
// stdin /dev/null, its own process group, a parent-death signal, the
// PPOOL_* environment plus Options.Env), plays the master's part, and kills
// the worker's process group when it is done, so nothing outlives Run. The
// checks, in order:
//
//   - hello: the first frame is a hello, within Options.StartTimeout, that
//     lists a protocol version ppool speaks, a pid and the four ppool.*
//     built-ins; then the worker stays quiet until it is sent a task.
//   - version-newer-master: with PPOOL_PROTOCOL="1,65535" (a newer master)
//     it still says hello with a version both speak, and serves a task.
//   - version-unknown: with PPOOL_PROTOCOL="65535" it exits with a
//     non-zero status within Options.ExitWithin, after a hello that does
//     not claim 65535 or without one; it neither keeps running, crashes,
//     nor sends garbage.
//   - task: ppool.echo returns a map holding every msgpack type, several in
//     longer forms than needed, a 70 kB binary and 30 levels of nesting.
//   - unknown-keys: a task whose keys come in another order, with keys it
//     does not know, is served.
//   - fragmented-frames: a task written one byte at a time is served; a
//     whole frame followed by part of the next is answered at once.
//   - batch: batch tasks are answered with "b": true and one item result
//     per argument, in order; a bad item fails alone (bad_arguments), and
//     ppool.fail items fail with their messages.
//   - unknown-function: a function it does not serve is answered with an
//     error of type unknown_function, and the worker stays up.
//   - bad-arguments: ppool.sleep given a string, ppool.fail an integer and
//     ppool.panic an array are answered with type bad_arguments.
//   - error: ppool.fail is answered with type error and its message.
//   - panic: ppool.panic is answered with an error (type panic or a class
//     name) that carries its message and a traceback; the worker stays up.
//   - cancel-running: ppool.sleep(30), cancelled once running, is answered
//     as cancelled within Options.CancelWithin.
//   - cancel-queued: a task cancelled while queued is answered as cancelled
//     without running, after the task ahead of it; a cancel of a task it
//     never received is ignored.
//   - timeout: a task with a timeout ("to") that it meets is unaffected;
//     ppool.sleep(30) with Options.TaskTimeout is answered as cancelled
//     after the timeout, within Options.CancelWithin of it.
//   - pipeline: 1000 ppool.echo tasks written at once are all answered,
//     right, in order, within Options.ReplyTimeout.
//   - read-while-running: while ppool.sleep(30) runs, 2 MiB of ppool.echo
//     tasks (more than a pipe holds) and a cancel for the sleep are
//     written: the worker reads them as they come, answers the sleep as
//     cancelled, then every echo in order.
//   - answer-before-next: a task's answer is written before the next task
//     starts: ppool.echo with ppool.sleep(30) behind it is answered while
//     the sleep runs.
//   - shutdown: shutdown while a task runs: the task is answered, then the
//     worker exits with status 0 within Options.ExitWithin.
//   - shutdown-queued: shutdown while a task runs with two tasks queued
//     behind it: the running one is answered with its value, each queued
//     one as cancelled, then the worker exits with status 0.
//   - eof: when fd 3 reaches end of input it exits with status 0.
//   - malformed-frame: a frame that is not msgpack makes it exit with a
//     non-zero status, without answering.
//   - unknown-message-type: a frame whose "t" it does not know is a
//     protocol error: it exits with a non-zero status, without answering.
//   - oversized-frame: with PPOOL_MAX_FRAME set to Options.MaxFrame, a task
//     frame of exactly that size is served, and one of a byte more makes it
//     exit with a non-zero status, without answering.
//   - huge-frame-header: a frame header declaring 4 GiB, with no payload
//     behind it, makes it exit with a non-zero status at once: it neither
//     waits for the payload nor dies trying to allocate it.
//
// Every check also holds the worker to the rules that apply throughout:
// results answer the oldest unanswered task, progress reports name the
// running task, and every frame is well formed and within the limit.
//
// A check that fails says what was sent, what came back (or did not) and
// what the protocol wants, with the worker's exit status and last lines of
// output when it died. If hello fails, the later checks are not run.
//
// Every step of a check has a deadline, so a worker that hangs fails
// rather than stalls the suite: reads wait at most the Options timeouts
// above, and a write to the worker's fd 3 at most Options.ReplyTimeout (a
// worker that stops reading fd 3 fills the pipe; the check then says how
// much of what it was sent the worker took).
package workerproctest
