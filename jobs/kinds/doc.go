// Package kinds is the worker's half of package jobs: the Kind registry,
// the Task a worker receives and the Outcome it reports, and the one worker
// function, jobs.task, that runs every kind. It imports no pool, so that a
// worker binary (cmd/ppool-worker) links the kinds without the master's
// machinery; package jobs re-exports these names, and kind packages
// (jobs/image, jobs/matrix) register here.
package kinds
