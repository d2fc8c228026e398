//go:build chaos

package jobs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chaosJobs exercises what a kill can interrupt: tasks split into parts
// (strips of a render, tiles of a big product) and merged, jobs that wait
// for others and read their outputs, many small tasks, PNG, JPEG, .npy and
// JSON outputs. Uninterrupted it runs in one to two seconds on two cores.
const chaosJobs = `jobs:
  - name: render
    kind: image.mandelbrot
    params: {width: 4096, height: 2048, max_iter: 16}
    output: out/render.jpg
  - name: small
    kind: image.mandelbrot
    params: {width: 1024, height: 768, max_iter: 64}
    output: out/small.png
  - name: blurred
    kind: image.blur
    after: [small]
    inputs: out/small.png
    params: {sigma: 1.5}
    output: out/blurred.png
  - name: thumbs
    kind: image.thumbnail
    after: [render, small]
    inputs: [out/render.jpg, out/small.png]
    params: {max_width: 200, max_height: 200}
    output: out/thumbs/{stem}.png
  - name: products
    kind: matrix.multiply
    count: 40
    inputs:
      a: {random: [200, 200], seed: 1}
      b: {random: [200, 200], seed: 101}
  - name: big
    kind: matrix.multiply
    inputs:
      a: {random: [1536, 1536], seed: 7}
      b: {random: [1536, 1536], seed: 8}
    output: out/big.npy
  - name: inverses
    kind: matrix.inverse
    count: 16
    inputs: {random: [150, 150], seed: 42}
  - name: stats
    kind: matrix.stats
    after: [products]
    inputs: out/products/*.npy
`

// buildPPool builds the ppool binary once: the runs must be real processes,
// killed with a real SIGKILL (go run would neither forward it nor report
// the exit status).
func buildPPool(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ppool")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/ppool")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ppool: %v\n%s", err, out)
	}
	return bin
}

type runResult struct {
	Job, Task, Status, Error string
	WorkerPID                int `json:"worker_pid"`
}

// chaosRun is one `ppool run` of the jobs file in dir. kill, if not nil,
// is called with each result as it arrives and says when to start the
// kill's countdown; the run is then SIGKILLed after delay.
type chaosRun struct {
	killed   bool
	exitCode int
	results  []runResult
	wall     time.Duration
}

func runPPool(t *testing.T, bin, dir, token string, resume bool, killAfter int, delay time.Duration) chaosRun {
	t.Helper()
	args := []string{"run", "--progress", "none", "--results", "-"}
	if resume {
		args = append(args, "--resume")
	}
	cmd := exec.Command(bin, append(args, "jobs.yaml")...)
	cmd.Dir = dir
	// The token marks every process of the run (workers and the reaper
	// inherit the environment), so that leftovers can be found in /proc.
	cmd.Env = append(os.Environ(), "PPOOL_CHAOS_RUN="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan runResult)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r runResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("results line %q: %v", sc.Text(), err)
				continue
			}
			lines <- r
		}
	}()
	var res chaosRun
	var countdown <-chan time.Time
	ok := 0
	if killAfter == 0 {
		countdown = time.After(delay)
	}
	for open := true; open; {
		select {
		case r, more := <-lines:
			if !more {
				open = false
				break
			}
			res.results = append(res.results, r)
			if r.Status == "ok" {
				if ok++; killAfter > 0 && ok == killAfter {
					countdown = time.After(delay)
				}
			}
		case <-countdown:
			countdown = nil
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	err = cmd.Wait()
	res.wall = time.Since(t0)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			res.killed = true
		}
		res.exitCode = ee.ExitCode()
	default:
		t.Fatalf("ppool run: %v", err)
	}
	if !res.killed && res.exitCode != 0 {
		t.Fatalf("ppool run exited %d:\n%s", res.exitCode, stderr.String())
	}
	return res
}

// files lists the regular files under root, relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			list = append(list, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(list)
	return list
}

// marked returns the live processes whose environment holds token.
func marked(token string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(env, []byte("PPOOL_CHAOS_RUN="+token)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestChaosKilledRunsResume: a jobs file run killed with SIGKILL at 20
// random moments, resumed with --resume after each, ends with outputs
// byte-identical to an uninterrupted run's, and nothing left running.
func TestChaosKilledRunsResume(t *testing.T) {
	const kills = 20
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PPOOL_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (PPOOL_CHAOS_SEED=%d reproduces the random choices)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	token := strconv.FormatUint(rng.Uint64(), 36)
	bin := buildPPool(t)

	ref := t.TempDir()
	if err := os.WriteFile(filepath.Join(ref, "jobs.yaml"), []byte(chaosJobs), 0o644); err != nil {
		t.Fatal(err)
	}
	whole := runPPool(t, bin, ref, token, false, -1, 0)
	tasks := len(whole.results)
	t.Logf("uninterrupted run: %d tasks in %v", tasks, whole.wall.Round(time.Millisecond))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jobs.yaml"), []byte(chaosJobs), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each run is killed a random moment (0 to 25 ms) after a random number
	// of new results (on average, what is left over the kills left, plus
	// one share for the final run), so that kills land in every phase: start-up, the
	// journal's replay, the middle of tasks, parts and merges, just after a
	// result was journalled. A run that finishes first is not a kill.
	var moments []string
	workerPIDs := map[int]bool{}
	done := map[string]bool{}
	runs, finished := 0, 0
	for k := 0; k < kills; runs++ {
		if runs > 20*kills {
			t.Fatalf("only %d kills in %d runs", k, runs)
		}
		left := tasks - len(done)
		after := rng.IntN(2*left/(kills-k+1) + 1)
		delay := time.Duration(rng.IntN(25_000)) * time.Microsecond
		r := runPPool(t, bin, dir, token, runs > 0, after, delay)
		newOK := 0
		for _, res := range r.results {
			if res.WorkerPID != 0 {
				workerPIDs[res.WorkerPID] = true
			}
			if res.Status == "ok" {
				newOK++
			}
			if res.Status == "ok" || res.Status == "skipped" {
				done[res.Job+"/"+res.Task] = true
			}
			if res.Status == "failed" {
				t.Errorf("run %d: task %s/%s failed: %s", runs, res.Job, res.Task, res.Error)
			}
		}
		if !r.killed {
			finished++
			continue
		}
		k++
		moments = append(moments, fmt.Sprintf("%d+%dms", after, delay.Milliseconds()))
		t.Logf("kill %2d: run %2d killed %3dms after %d new results (%v in): %d new, %d of %d done so far",
			k, runs, delay.Milliseconds(), after, r.wall.Round(time.Millisecond), newOK, len(done), tasks)
	}

	final := runPPool(t, bin, dir, token, true, -1, 0)
	var ok, skipped int
	for _, res := range final.results {
		switch res.Status {
		case "ok":
			ok++
		case "skipped":
			skipped++
		default:
			t.Errorf("final run: %s/%s %s: %s", res.Job, res.Task, res.Status, res.Error)
		}
	}
	if ok+skipped != tasks {
		t.Errorf("final run reported %d tasks, want %d", ok+skipped, tasks)
	}
	// And once more: everything is skipped, so the journal agrees with the
	// outputs.
	again := runPPool(t, bin, dir, token, true, -1, 0)
	for _, res := range again.results {
		if res.Status != "skipped" {
			t.Errorf("run after the final one: %s/%s %s, want skipped", res.Job, res.Task, res.Status)
		}
	}

	want := files(t, filepath.Join(ref, "out"))
	got := files(t, filepath.Join(dir, "out"))
	var strays []string
	for _, f := range got {
		if !slices.Contains(want, f) {
			strays = append(strays, f)
		}
	}
	for _, f := range want {
		a, err := os.ReadFile(filepath.Join(ref, "out", f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "out", f))
		if err != nil {
			t.Errorf("output %s: %v", f, err)
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("output %s differs from the uninterrupted run's (%d bytes, want %d)", f, len(b), len(a))
		}
	}
	// Beside the journal, nothing: the parts of split tasks are gone.
	if left := files(t, filepath.Join(dir, ".ppool")); !slices.Equal(left, []string{"jobs.journal.jsonl"}) {
		t.Errorf("after the final run, .ppool holds %v, want only the journal", left)
	}
	if left := marked(token); len(left) > 0 {
		t.Errorf("processes of the killed runs still running: %v", left)
	}
	var alive []int
	for pid := range workerPIDs {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ"); err == nil && bytes.Contains(b, []byte(token)) {
			alive = append(alive, pid)
		}
	}
	if len(alive) > 0 {
		t.Errorf("workers still running: %v", alive)
	}
	if len(strays) > 0 {
		// Not torn outputs (those are renamed into place whole), but the
		// temporary files of writes the kills interrupted: the final run
		// sweeps them.
		t.Errorf("%d temporary files left in the output folders after the final run: %s", len(strays), strings.Join(strays, ", "))
	}
	t.Logf("%d kills in %d runs (%d finished before their kill), kill moments (results+delay): %s", kills, runs, finished, strings.Join(moments, " "))
	t.Logf("final run: %d redone, %d skipped; %d outputs byte-identical to the uninterrupted run; %d stray files; no process left (%d workers seen)",
		ok, skipped, len(want), len(strays), len(workerPIDs))
}
