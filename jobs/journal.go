package jobs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/jobs/kinds"
)

// Version is ppool's version; it goes into every task's content hash, so a
// new ppool redoes work on --resume rather than trust an older one's.
var Version = "0.1.0"

// journalEntry records one finished task.
type journalEntry struct {
	Job        string `json:"job"`
	Task       string `json:"task"`
	Output     string `json:"output"`      // relative to the journal's folder (see journal.key)
	Hash       string `json:"hash"`        // of ppool's version, the kind and its version, params, backend and input bytes
	OutputHash string `json:"output_hash"` // of the output file as written
}

// journal is the append-only record of finished tasks that --resume reads.
// Each entry is one line, written and synced after the task's output was
// renamed into place: a run killed at any moment leaves at worst a torn last
// line, which is ignored, and a finished task missing from it, which is done
// again.
type journal struct {
	f    *os.File
	dir  string                  // the journal's folder, absolute
	done map[string]journalEntry // by key
	sync bool                    // a regular file: fsync entries (a device cannot)

	// Entries are written as tasks finish, and the journal is fsynced in
	// groups: at most syncEvery after the first unsynced entry, and when
	// the run ends, off the run's goroutine (an fsync can take a long
	// while on a busy disk). A written entry survives the process being
	// killed (it is in the kernel); the fsync guards against the machine
	// going down.
	mu      sync.Mutex
	dirty   bool
	closed  bool
	timer   *time.Timer
	syncing sync.WaitGroup // fsyncs started by the timer
	syncErr error          // from a sync done by the timer, reported by the next record or close
	syncs   int            // fsyncs done, for tests
	// One open folder per file system that holds outputs. The workers do
	// not sync what they write; the run syncs these file systems (syncfs)
	// once, as it ends. A machine that goes down mid-run may leave outputs
	// that the journal lists torn or missing: --resume checks every
	// output's hash against its entry, and redoes those.
	outputFS map[uint64]*os.File
	seenDirs map[string]bool
}

// syncEvery bounds how long a finished task's entry stays unsynced.
const syncEvery = 100 * time.Millisecond

// DefaultJournal is where a jobs file's journal lives unless told
// otherwise: .ppool/NAME.journal.jsonl beside it.
func DefaultJournal(jobsFile string) string {
	base := strings.TrimSuffix(filepath.Base(jobsFile), filepath.Ext(jobsFile))
	return filepath.Join(filepath.Dir(jobsFile), ".ppool", base+".journal.jsonl")
}

// JournalBusyError is returned by Run when another run holds the journal:
// two runs of one jobs file would truncate each other's record and sweep
// each other's temporary files.
type JournalBusyError struct {
	Path string
	PID  int // the other run's process, or 0 if it could not be told
}

func (e *JournalBusyError) Error() string {
	who := "another ppool run"
	if e.PID > 0 {
		who = fmt.Sprintf("another ppool run (pid %d)", e.PID)
	}
	return fmt.Sprintf("journal %s is in use by %s: wait for it to finish, or give this run its own --journal", e.Path, who)
}

// openJournal opens (or creates) the journal and locks it for this run.
// The lock is taken before anything is read or truncated, and the kernel
// drops it when the process dies, however it dies.
func openJournal(path string, resume bool) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	// A device such as /dev/null has nothing to protect, and runs that
	// share one must not shut each other out.
	if st.Mode().IsRegular() {
		if err := lockFile(f); err != nil {
			defer f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &JournalBusyError{Path: path, PID: lockHolder(f)}
			}
			return nil, fmt.Errorf("journal %s: lock: %w", path, err)
		}
	}
	j := newJournal(dir)
	j.f, j.sync = f, st.Mode().IsRegular()
	if resume {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e journalEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Output != "" {
				j.done[e.Output] = e
			}
		}
		if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
	} else if st.Mode().IsRegular() {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	// Start on a fresh line, in case a killed run left a torn one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if _, err := f.Write([]byte("\n")); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	return j, nil
}

func newJournal(dir string) *journal {
	return &journal{dir: dir, done: map[string]journalEntry{}, outputFS: map[uint64]*os.File{}, seenDirs: map[string]bool{}}
}

// addOutputDir notes a folder that outputs are written to, so that its file
// system is synced with the journal.
func (j *journal) addOutputDir(dir string) {
	if j.seenDirs[dir] {
		return
	}
	j.seenDirs[dir] = true
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	var st unix.Stat_t
	j.mu.Lock()
	defer j.mu.Unlock()
	if unix.Fstat(int(d.Fd()), &st) != nil || j.outputFS[st.Dev] != nil {
		d.Close()
		return
	}
	j.outputFS[st.Dev] = d
}

// lockFile takes an exclusive lock on f without waiting. The lock belongs
// to the open file, so it lasts until f is closed or the process ends.
func lockFile(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// lockHolder finds, in /proc/locks, the process holding the lock on f's
// file; 0 if it cannot tell.
func lockHolder(f *os.File) int {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	// "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; waiters have "->".
	for _, line := range strings.Split(string(locks), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != id {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// finished reports whether a task with this hash already made output, and
// the output is still what it made.
func (j *journal) finished(ctx context.Context, output, hash string) bool {
	e, ok := j.done[j.key(output)]
	if !ok || e.Hash != hash {
		return false
	}
	h, err := hashFileCtx(ctx, output)
	return err == nil && h == e.OutputHash
}

func (j *journal) record(e journalEntry) error {
	if j.f == nil { // --no-journal
		return nil
	}
	e.Output = j.key(e.Output)
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.syncErr; err != nil {
		j.syncErr = nil
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if j.sync && !j.dirty {
		j.dirty = true
		if j.timer == nil {
			j.timer = time.AfterFunc(syncEvery, j.syncNow)
		} else {
			j.timer.Reset(syncEvery)
		}
	}
	return nil
}

// syncNow syncs the entries written since the last sync.
func (j *journal) syncNow() {
	j.mu.Lock()
	if !j.dirty || j.closed {
		j.mu.Unlock()
		return
	}
	j.dirty = false
	j.syncs++
	j.syncing.Add(1)
	j.mu.Unlock()
	defer j.syncing.Done()
	if err := j.fsync(); err != nil {
		j.mu.Lock()
		if j.syncErr == nil {
			j.syncErr = err
		}
		j.mu.Unlock()
	}
}

// fsync syncs the journal file, unless it is a device such as /dev/null.
func (j *journal) fsync() error {
	if !j.sync {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// syncOutputs syncs the file systems outputs were written to.
func (j *journal) syncOutputs() error {
	for _, d := range j.outputFS {
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return fmt.Errorf("syncing the outputs in %s: %w", d.Name(), err)
		}
	}
	return nil
}

// close syncs what is left and closes the journal; its error is the first
// that a sync met and no record reported.
func (j *journal) close() error {
	defer func() {
		for dev, d := range j.outputFS {
			d.Close()
			delete(j.outputFS, dev)
		}
	}()
	err := j.syncOutputs()
	if j.f == nil {
		return err
	}
	j.mu.Lock()
	j.closed = true
	if j.timer != nil {
		j.timer.Stop()
	}
	j.mu.Unlock()
	j.syncing.Wait()
	j.syncs++
	if serr := j.fsync(); err == nil {
		err = serr
	}
	if err == nil {
		err = j.syncErr
	}
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: %w", cerr)
	}
	return err
}

// key names an output the same way whatever the current directory: output
// paths are relative to it (ppool run sub/jobs.yaml gives sub/out/x.npy,
// and cd sub; ppool run --resume jobs.yaml gives out/x.npy), but --resume
// must find the same task in both. Relative to the journal's folder, the
// key also survives moving the whole project.
func (j *journal) key(output string) string {
	abs, err := filepath.Abs(output)
	if err != nil {
		return output
	}
	if rel, err := filepath.Rel(j.dir, abs); err == nil {
		return rel
	}
	return abs
}

// hashFile hashes a regular file. It opens without blocking and refuses
// anything else, so that a named pipe put where an input was (after the
// jobs file was checked) cannot hang the master in open or read.
func hashFile(path string) (string, error) { return hashFileCtx(context.Background(), path) }

// hashFileCtx is hashFile, stopping with ctx's error when ctx ends.
func hashFileCtx(ctx context.Context, path string) (string, error) {
	h, _, err := HashFile(ctx, path)
	return h, err
}

// HashFile returns the SHA-256 (in hex) and the size of a regular file, as
// the journal records it. It opens without blocking and refuses anything
// but a regular file (a named pipe or a device would hang or never end),
// and stops with ctx's error when ctx ends.
func HashFile(ctx context.Context, path string) (string, int64, error) {
	return kinds.HashFile(ctx, path)
}

// taskHash is the content hash that decides whether a finished task can be
// skipped: everything that determines its output.
func taskHash(t *Task, k *Kind, fileHash func(string) (string, error)) (string, error) {
	h := sha256.New()
	backend := ""
	if k.Backend != nil {
		backend = k.Backend()
	}
	fmt.Fprintf(h, "ppool %s\nkind %s v%d\nbackend %s\n", Version, k.Name, k.Version, backend)
	names := make([]string, 0, len(t.Params))
	for n := range t.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "param %s=%#v\n", n, t.Params[n])
	}
	for _, s := range k.Slots {
		in := t.Inputs[s.Name]
		if in.Gen != nil {
			fmt.Fprintf(h, "input %s generated %s %v seed %d\n", s.Name, in.Gen.Kind, in.Gen.Shape, in.Gen.Seed)
			continue
		}
		fh, err := fileHash(in.Path)
		if err != nil {
			return "", fmt.Errorf("input %s: %w", in.Path, err)
		}
		fmt.Fprintf(h, "input %s file %s\n", s.Name, fh)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
