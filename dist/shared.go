package dist

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
)

// FileSubject.RUN (core NATS request-reply) is where an agent that cannot
// use a run's shared root asks the run to store a file in FileBucket
// after all; the request is the file's hash, an empty reply says it is
// stored, any other is the error.
const FileSubject = "ppool.files"

// SharedToken is the proof a run asks of an agent before the agent reads
// any file of the run's shared root in place: a file of random content the
// run wrote at the root's top, which the agent must find, with the same
// content, at its own shared root.
type SharedToken struct {
	Name   string `msgpack:"name"`   // the file's name in the root
	SHA256 string `msgpack:"sha256"` // its content's
}

var tokenName = regexp.MustCompile(`^\.ppool-token-[A-Za-z0-9_-]{1,64}$`)

func (t *SharedToken) check() error {
	if !tokenName.MatchString(t.Name) || !hexHash.MatchString(t.SHA256) {
		return fmt.Errorf("bad shared-root token %q", truncate(t.Name, 80))
	}
	return nil
}

// sharedRoot is a run's shared root: files under it travel by path.
type sharedRoot struct {
	dir   string
	token SharedToken
}

// writeToken writes a run's token under its shared root.
func writeToken(dir, runID string) (*sharedRoot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("--shared-root: %w", err)
	}
	var b [32]byte
	rand.Read(b[:])
	content := hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(content))
	sr := &sharedRoot{dir: abs, token: SharedToken{Name: ".ppool-token-" + runID, SHA256: hex.EncodeToString(sum[:])}}
	path := filepath.Join(abs, sr.token.Name)
	err = writeChecked(path, sr.token.SHA256, []byte(content))
	if err == nil {
		// Agents may run as other users: the token proves a mount, not a
		// secret.
		err = os.Chmod(path, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("--shared-root: writing the token agents must see: %w", err)
	}
	return sr, nil
}

// rel is path's place under the root, slash-separated, or "" if it is
// not under it.
func (sr *sharedRoot) rel(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(sr.dir, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return ""
	}
	return filepath.ToSlash(rel)
}

// serveFiles answers agents that cannot use the shared root: it stores
// the file they ask for, if it is one of the run's shared files.
func (e *Executor) serveFiles(m *nats.Msg) {
	hash := string(m.Data)
	e.mu.Lock()
	path, ok := e.inRoot[hash]
	stored := e.stored[hash]
	e.mu.Unlock()
	reply := ""
	switch {
	case !ok:
		reply = fmt.Sprintf("file %s is not one of this run's", truncate(hash, 64))
	case !stored:
		ctx, cancel := context.WithTimeout(e.runCtx, 10*time.Minute)
		err := putFile(ctx, e.obs, path, hash)
		cancel()
		if err != nil {
			reply = fmt.Sprintf("storing %s: %v", path, err)
		} else {
			e.mu.Lock()
			e.stored[hash] = true
			e.mu.Unlock()
		}
	}
	if err := m.Respond([]byte(reply)); err != nil {
		e.log.Warn("answering an agent's file request", "err", err)
	}
}

// sharedOK reports whether the agent may read a run's files in place at
// its shared root: it has one, and the run's token is there with the same
// content. The answer is kept per run and token; a no is logged once.
func (a *Agent) sharedOK(run string, tok *SharedToken) bool {
	key := run + "\x00" + tok.Name + "\x00" + tok.SHA256
	a.obsMu.Lock()
	defer a.obsMu.Unlock()
	if ok, seen := a.proved[key]; seen {
		return ok
	}
	why := ""
	if a.cfg.SharedRoot == "" {
		why = "this agent has no --shared-root"
	} else if hash, _, err := hashFile(filepath.Join(a.cfg.SharedRoot, tok.Name)); err != nil {
		why = fmt.Sprintf("its token is not readable here: %v", err)
	} else if hash != tok.SHA256 {
		why = fmt.Sprintf("the token at %s holds other content: not the run's files", filepath.Join(a.cfg.SharedRoot, tok.Name))
	}
	if a.proved == nil {
		a.proved = map[string]bool{}
	}
	a.proved[key] = why == ""
	if why != "" {
		a.log.Warn("the run's shared root is not this agent's: its files come through the Object Store", "run", run, "reason", why)
	} else {
		a.log.Info("the run's shared root checked: its files are read in place", "run", run, "root", a.cfg.SharedRoot)
	}
	return why == ""
}

// sharedFile returns where the agent reads a file of the shared root in
// place, or "" if it cannot (then the file comes as a blob).
func (a *Agent) sharedFile(tm *TaskMessage, f *FileRef) string {
	if f.Shared == "" || tm.Shared == nil || !a.sharedOK(tm.Run, tm.Shared) {
		return ""
	}
	path := filepath.Join(a.cfg.SharedRoot, filepath.FromSlash(f.Shared))
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
		a.log.Warn("a file of the shared root differs here: fetching it", "file", f.Shared, "err", err)
		return ""
	}
	return path
}

// askForBlob asks the run to store a file of its shared root, for an
// agent that cannot read it in place.
func (a *Agent) askForBlob(ctx context.Context, run, hash string) error {
	if !validRunID(run) {
		return errors.New("a shared file of a task without a run to ask for it")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	m, err := a.nc.RequestWithContext(ctx, FileSubject+"."+run, []byte(hash))
	if err != nil {
		return fmt.Errorf("asking the run for file %s: %w", hash[:12], err)
	}
	if len(m.Data) > 0 {
		return fmt.Errorf("the run could not store file %s: %s", hash[:12], truncate(string(m.Data), 200))
	}
	return nil
}
