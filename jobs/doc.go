// Package jobs reads jobs files and runs them: the engine behind
// `ppool run`.
//
// ReadFile (or Parse) checks a file against the registered kinds and
// reports every problem as file:line:col with the offending line shown;
// File.Expand turns each job into its tasks (globs matched, generated
// inputs seeded, output paths decided and checked not to collide); Run
// executes a Plan on a pool of workers, in file order and after the jobs
// each names, with a journal that lets a later run skip what is done.
//
// A job kind is a Kind registered at package init (jobs/matrix and
// jobs/image register the built-in ones; the registry and the worker's
// side live in jobs/kinds, which links no pool, and are re-exported here). Its Run executes in worker
// processes, through the one worker function jobs.task; a kind may also
// Split a large task into parts that run in parallel and Merge them.
package jobs
