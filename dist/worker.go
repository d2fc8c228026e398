package dist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
)

// WorkerRef is a job's custom worker binary, as a task message names it.
// An agent runs the binary it has at Command (looked up in its PATH when
// Command has no slash), if it hashes to SHA256 when that is set; or, if
// Shipped, the binary stored in FileBucket under SHA256, checked against
// it after download. Nothing else: an agent never runs a shipped binary
// whose hash the job does not name.
type WorkerRef struct {
	Command string   `msgpack:"command"`
	Args    []string `msgpack:"args,omitempty"`
	Env     []string `msgpack:"env,omitempty"` // KEY=VALUE, sorted
	SHA256  string   `msgpack:"sha256,omitempty"`
	Plugin  bool     `msgpack:"plugin,omitempty"`
	// Shipped: the run stored the binary in FileBucket under SHA256.
	Shipped bool `msgpack:"shipped,omitempty"`
}

// ErrWorkerUnavailable is matched (errors.Is) by the failure of a task
// whose custom worker binary an agent neither has nor may fetch.
var ErrWorkerUnavailable = errors.New("worker binary unavailable")

func (w *WorkerRef) check() error {
	bad := func(s string) bool { return s == "" || strings.ContainsRune(s, 0) }
	if bad(w.Command) || len(w.Command) > 4096 {
		return fmt.Errorf("bad worker command %q", truncate(w.Command, 128))
	}
	for _, a := range w.Args {
		if strings.ContainsRune(a, 0) {
			return errors.New("worker argument with a NUL byte")
		}
	}
	for _, kv := range w.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || bad(k) || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("bad worker environment entry %q", truncate(kv, 64))
		} else if strings.HasPrefix(k, "LD_") {
			// The dynamic loader's variables would load code of the
			// message's choosing into a pinned binary.
			return fmt.Errorf("worker environment %s: the dynamic loader's variables are not taken from a task message", k)
		}
	}
	if w.SHA256 != "" && !hexHash.MatchString(w.SHA256) {
		return fmt.Errorf("bad worker sha256 %q", truncate(w.SHA256, 80))
	}
	if w.Shipped && w.SHA256 == "" {
		return errors.New("a shipped worker binary without its sha256")
	}
	return nil
}

// key names the pool that runs a worker.
func (w *WorkerRef) key() string {
	parts := append([]string{w.Command, w.SHA256, fmt.Sprint(w.Plugin, w.Shipped)}, w.Args...)
	return strings.Join(append(append(parts, "\x01"), w.Env...), "\x00")
}

// preparedWorker is a job's worker as the run resolved it, once.
type preparedWorker struct {
	ref *WorkerRef
	err error
}

// workerRef resolves a job's worker on the run's machine, as the local
// pool would (a relative path from the jobs file's folder, a bare name in
// PATH). A job that names the binary's sha256 has it shipped, if this
// machine has it: stored in the bucket, for agents that lack it.
func (e *Executor) workerRef(ctx context.Context, pj *jobs.PlannedJob) (*WorkerRef, error) {
	w := pj.Worker
	e.mu.Lock()
	pw := e.workers[w]
	e.mu.Unlock()
	if pw != nil {
		return pw.ref, pw.err
	}
	ref, err := e.resolveWorker(ctx, pj)
	if err != nil {
		err = fmt.Errorf("job %q: %w", pj.Name, err)
		e.log.Error("worker binary", "err", err)
	}
	e.mu.Lock()
	e.workers[w] = &preparedWorker{ref: ref, err: err}
	e.mu.Unlock()
	return ref, err
}

func (e *Executor) resolveWorker(ctx context.Context, pj *jobs.PlannedJob) (*WorkerRef, error) {
	w := pj.Worker
	ref := &WorkerRef{Command: w.Command, Args: w.Args, SHA256: w.SHA256, Plugin: w.Plugin}
	for k, v := range w.Env {
		ref.Env = append(ref.Env, k+"="+v)
	}
	slices.Sort(ref.Env)
	local := ""
	if strings.Contains(w.Command, "/") {
		p := w.Command
		if !filepath.IsAbs(p) && e.cfg.Dir != "" {
			p = filepath.Join(e.cfg.Dir, p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("worker command: %w", err)
		}
		ref.Command, local = abs, abs
	} else if p, err := exec.LookPath(w.Command); err == nil {
		local = p // the agents look the name up in their own PATH
	}
	if err := ref.check(); err != nil {
		return nil, err
	}
	if w.SHA256 == "" || local == "" {
		return ref, nil // the agents must have it
	}
	hash, _, err := hashFile(local)
	if errors.Is(err, os.ErrNotExist) {
		return ref, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", local, err)
	}
	if hash != w.SHA256 {
		return nil, fmt.Errorf("worker %s: hash mismatch: it hashes to %s, not the job's sha256 %s", local, hash, w.SHA256)
	}
	if err := putFile(ctx, e.obs, local, hash); err != nil {
		return nil, fmt.Errorf("shipping worker %s: %w", local, err)
	}
	ref.Shipped = true
	return ref, nil
}

// workerPool returns the agent's pool for a custom worker, starting it on
// first use.
func (a *Agent) workerPool(ctx context.Context, w *WorkerRef) (*pool.Pool, error) {
	key := w.key()
	mu := a.fetchLock("worker\x00" + key) // one start per worker
	mu.Lock()
	defer mu.Unlock()
	a.runMu.Lock()
	p := a.workerPools[key]
	a.runMu.Unlock()
	if p != nil {
		return p, nil
	}
	bin, err := a.workerBinary(ctx, w)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Pool
	cfg.Workers, cfg.Logger = a.cfg.Workers, a.log
	cfg.Command = append([]string{bin}, w.Args...)
	cfg.Env = append(slices.Clone(cfg.Env), w.Env...)
	// The sealed-binary path: what runs is what was hashed.
	cfg.SHA256 = w.SHA256
	if w.Plugin {
		cfg.Launcher = goplugin.Launcher{}
	}
	if p, err = pool.New(ctx, cfg); err != nil {
		return nil, fmt.Errorf("worker %s: %w", w.Command, err)
	}
	a.runMu.Lock()
	if a.workerPools == nil {
		a.workerPools = map[string]*pool.Pool{}
	}
	a.workerPools[key] = p
	a.runMu.Unlock()
	return p, nil
}

// workerBinary finds the binary to run for w: the agent's own at the same
// path, if it hashes to the job's sha256 (which must be named); else the
// shipped one, fetched into the cache by hash once, unless
// NoFetchWorkers. The error says why neither holds.
func (a *Agent) workerBinary(ctx context.Context, w *WorkerRef) (string, error) {
	if w.SHA256 == "" {
		// A message names the binary; only the job's hash makes it the
		// job's. Without one, any program on this machine could be run
		// on a message's say.
		return "", fmt.Errorf("%w: agent %s cannot run worker %s: the job names no sha256, and an agent runs no binary whose hash the job does not name (add sha256: to the job's worker)", ErrWorkerUnavailable, a.cfg.Name, w.Command)
	}
	var why string
	local, err := exec.LookPath(w.Command)
	switch {
	case err != nil:
		why = fmt.Sprintf("not on this agent (%v)", err)
	default:
		hash, _, err := hashFile(local)
		if err == nil && hash == w.SHA256 {
			return local, nil
		}
		if err != nil {
			why = fmt.Sprintf("unreadable on this agent (%v)", err)
		} else {
			why = fmt.Sprintf("hash mismatch: this agent's %s hashes to %s, not the job's sha256 %s", local, hash[:12], w.SHA256[:12])
		}
	}
	fail := func(more string) error {
		return fmt.Errorf("%w: agent %s cannot run worker %s: %s; %s", ErrWorkerUnavailable, a.cfg.Name, w.Command, why, more)
	}
	switch {
	case !w.Shipped:
		return "", fail("the run did not ship it (its machine has no such binary)")
	case a.cfg.NoFetchWorkers:
		return "", fail("the run shipped it, but shipping is refused here by --no-fetch-workers")
	}
	dir := filepath.Join(a.cfg.CacheDir, "bin")
	path := filepath.Join(dir, w.SHA256) // a checked hash: no path of the message's
	if _, err := os.Stat(path); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		obs, err := a.files(ctx)
		if err == nil {
			err = getFile(ctx, obs, w.SHA256, path) // checked against the hash
		}
		if err != nil {
			return "", fail(fmt.Sprintf("fetching the shipped one failed: %v", err))
		}
		a.log.Info("worker binary fetched", "worker", w.Command, "sha256", w.SHA256)
	}
	if err := os.Chmod(path, 0o700); err != nil {
		return "", err
	}
	return path, nil
}
