package cli_test

// End-to-end tests of the ppool binary, as testscript scripts in
// testdata/script. The test binary is the ppool binary: TestMain makes it
// serve as a worker (the pool re-executes it with PPOOL_WORKER set), and
// testscript installs it in $PATH as "ppool", plus two helper programs for
// what a script cannot say with exec alone: "exits", which checks an exact
// exit status and forwards signals, and "sigkill-after-results".
//
// Waiting is always on a condition with a deadline, never a sleep.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ppool/ppool/internal/cli"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/matrix"
	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/plugin"
)

func TestMain(m *testing.M) {
	workerproc.Main() // first: in a worker process this serves tasks and exits
	if mib := os.Getenv(envAddressSpace); mib != "" {
		os.Exit(limitedMain(mib))
	}
	testscript.RunMain(m, map[string]func() int{
		"ppool":                 func() int { return cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr) },
		"exits":                 exitsMain,
		"ppool-libs":            libsMain,
		"sigkill-after-results": sigkillAfterResultsMain,
		// A worker built on workerproc/plugin, serving this binary's
		// functions: what a user's custom Go worker is.
		"plugin-worker": func() int { plugin.Main(nil); return 1 },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		RequireUniqueNames: true,
		Setup: func(env *testscript.Env) error {
			// A -race binary sleeps a second as it exits, unless told
			// otherwise: every ppool, helper and worker would.
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=10")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitlines":   cmdWaitLines,
			"waitfile":    cmdWaitFile,
			"waitworkers": cmdWaitWorkers,
			"noorphans":   cmdNoOrphans,
			"jsonkeys":    cmdJSONKeys,
			"pids":        cmdPIDs,
			"resumed":     cmdResumed,
			"dims":        cmdDims,
			"truncate":    cmdTruncate,
			"kindslisted": cmdKindsListed,
			"schemacheck": cmdSchemaCheck,
			"pty":         cmdPty,
			"jsonlines":   cmdJSONLines,
		},
	})
}

// waitTimeout bounds every wait for a condition: generous, as the suite
// runs under -race on two cores with scripts in parallel, and on a busy
// machine (it must pass beside CPU hogs) a run can be ten times slower:
// at a load of 18, one waiting for its second result timed out at 30 s.
const waitTimeout = 2 * time.Minute

// orphanTimeout is how long worker processes may outlive the ppool that
// started them: they go at once, but on a busy machine the last of them
// (and the reaper's kill of what they started) can take a while to be
// scheduled.
const orphanTimeout = 10 * time.Second

// poll calls cond until it reports true or the timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// --- Programs the scripts run -------------------------------------------

// forwardSignals passes the signals a script sends (kill -INT) and the one
// testscript sends on a timeout (SIGQUIT) on to cmd's process.
func forwardSignals(cmd *exec.Cmd) (stop func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

func command(args []string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd
}

// exitsMain is "exits CODE PROG [ARG...]": it runs PROG, forwarding
// signals to it, and succeeds if PROG exits with status CODE. It works in
// the background too (exits 130 ppool run ... &run&), where testscript's
// libsMain is ppool, and then prints "loaded NAME" for each of the BLAS
// and JPEG libraries the process mapped while it ran.
func libsMain() int {
	rc := cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, lib := range []string{"libopenblas", "libturbojpeg"} {
		if strings.Contains(string(maps), lib) {
			fmt.Println("loaded", lib)
		}
	}
	return rc
}

// wait reports success or failure only.
func exitsMain() int {
	args := os.Args[1:]
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: exits CODE PROG [ARG...]")
		return 2
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "exits: bad exit status %q\n", args[0])
		return 2
	}
	cmd := command(args[1:])
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "exits: %v\n", err)
		return 1
	}
	stop := forwardSignals(cmd)
	_ = cmd.Wait()
	stop()
	if got := cmd.ProcessState.ExitCode(); got != want {
		fmt.Fprintf(os.Stderr, "exits: %s: %v, want exit status %d\n", args[1], cmd.ProcessState, want)
		return 1
	}
	return 0
}

// sigkillAfterResultsMain is "sigkill-after-results N FILE PROG [ARG...]":
// it runs PROG, and once FILE holds N complete lines kills PROG with
// SIGKILL. It fails if PROG ends by itself first.
func sigkillAfterResultsMain() int {
	args := os.Args[1:]
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: sigkill-after-results N FILE PROG [ARG...]")
		return 2
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "sigkill-after-results: bad count %q\n", args[0])
		return 2
	}
	cmd := command(args[2:])
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "sigkill-after-results: %v\n", err)
		return 1
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Poll until the lines are there, or PROG is gone, or time is up; kill
	// it in any case, and judge by how it ended.
	poll(waitTimeout, func() bool {
		select {
		case <-exited:
			return true
		default:
			return lineCount(args[1]) >= n
		}
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		fmt.Fprintf(os.Stderr, "sigkill-after-results: %s ended by itself (%v) before %s had %d lines\n", args[2], cmd.ProcessState, args[1], n)
		return 1
	}
	if got := lineCount(args[1]); got < n {
		fmt.Fprintf(os.Stderr, "sigkill-after-results: %s has %d lines after %v, want %d\n", args[1], got, waitTimeout, n)
		return 1
	}
	return 0
}

// lineCount counts the complete lines in a file; none if it is missing.
func lineCount(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte{'\n'})
}

// --- Script commands ----------------------------------------------------

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("unsupported: ! %s", name)
	}
}

func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		ts.Fatalf("%q is not a number", s)
	}
	return n
}

// waitlines FILE N: wait until FILE holds at least N complete lines.
func cmdWaitLines(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitlines")
	if len(args) != 2 {
		ts.Fatalf("usage: waitlines FILE N")
	}
	path, n := ts.MkAbs(args[0]), atoi(ts, args[1])
	if !poll(waitTimeout, func() bool { return lineCount(path) >= n }) {
		ts.Fatalf("%s has %d lines after %v, want %d", args[0], lineCount(path), waitTimeout, n)
	}
}

// waitfile FILE REGEXP: wait until FILE's contents match REGEXP (in
// multi-line mode, as testscript's grep).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitfile")
	if len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	path := ts.MkAbs(args[0])
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	if !poll(waitTimeout, func() bool {
		data, err := os.ReadFile(path)
		return err == nil && re.Match(data)
	}) {
		ts.Fatalf("%s does not match %q after %v", args[0], args[1], waitTimeout)
	}
}

// waitworkers N: wait until at least N worker processes that this script
// started are running.
func cmdWaitWorkers(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitworkers")
	if len(args) != 1 {
		ts.Fatalf("usage: waitworkers N")
	}
	n := atoi(ts, args[0])
	var found []int
	if !poll(waitTimeout, func() bool {
		found = scriptProcesses(ts, true)
		return len(found) >= n
	}) {
		ts.Fatalf("%d worker processes after %v, want %d", len(found), waitTimeout, n)
	}
}

// noorphans [RESULTS...]: within orphanTimeout, no process this script started
// (ppool, its workers, anything they started) is left alive; a zombie
// counts as gone. Every worker_pid in the RESULTS files must be among the
// gone, which also shows the check is not vacuous.
func cmdNoOrphans(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "noorphans")
	var workers []int
	for _, file := range args {
		for _, r := range readResults(ts, file) {
			if r.WorkerPID != 0 && !slices.Contains(workers, r.WorkerPID) {
				workers = append(workers, r.WorkerPID)
			}
		}
	}
	if len(args) > 0 && len(workers) == 0 {
		ts.Fatalf("no worker_pid in %s", strings.Join(args, ", "))
	}
	var left []int
	if poll(orphanTimeout, func() bool {
		left = scriptProcesses(ts, false)
		return len(left) == 0
	}) {
		ts.Logf("worker processes %v are gone", workers)
		return
	}
	var desc []string
	for _, pid := range left {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		desc = append(desc, fmt.Sprintf("%d (%s)", pid, strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " ")))
	}
	ts.Fatalf("processes left running %v after the run ended: %s", orphanTimeout, strings.Join(desc, "; "))
}

// scriptProcesses lists the live processes whose environment carries this
// script's $WORK, which every process a script starts inherits, whoever
// its parent is by now: an orphan is re-parented, but keeps its
// environment. With workersOnly, only ppool's workers (PPOOL_WORKER=1).
func scriptProcesses(ts *testscript.TestScript, workersOnly bool) []int {
	mark := []byte("WORK=" + ts.Getenv("WORK"))
	entries, err := os.ReadDir("/proc")
	ts.Check(err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || len(env) == 0 { // gone, or a zombie
			continue
		}
		vars := bytes.Split(env, []byte{0})
		if !slices.ContainsFunc(vars, func(v []byte) bool { return bytes.Equal(v, mark) }) {
			continue
		}
		if workersOnly && !slices.ContainsFunc(vars, func(v []byte) bool { return string(v) == workerproc.EnvWorker+"=1" }) {
			continue
		}
		if zombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// result is one line of a results file, as a script checks it.
type result struct {
	Job       string `json:"job"`
	Task      string `json:"task"`
	Status    string `json:"status"`
	WorkerPID int    `json:"worker_pid"`
}

func readResults(ts *testscript.TestScript, file string) []result {
	var out []result
	sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(file)))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			ts.Fatalf("%s: %q: %v", file, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// jsonkeys FILE KEY...: every line of FILE (or stdout) is a JSON object
// with exactly these keys; there is at least one line.
func cmdJSONKeys(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "jsonkeys")
	if len(args) < 2 {
		ts.Fatalf("usage: jsonkeys FILE KEY...")
	}
	want := slices.Sorted(slices.Values(args[1:]))
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(args[0])))
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			ts.Fatalf("%s: %q is not a JSON object: %v", args[0], sc.Text(), err)
		}
		if got := slices.Sorted(maps.Keys(obj)); !slices.Equal(got, want) {
			ts.Fatalf("%s: %s has keys %v, want %v", args[0], sc.Text(), got, want)
		}
		lines++
	}
	if lines == 0 {
		ts.Fatalf("%s has no lines", args[0])
	}
}

// pids FILE N: the tasks in results FILE ran on N distinct workers.
func cmdPIDs(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "pids")
	if len(args) != 2 {
		ts.Fatalf("usage: pids RESULTS N")
	}
	seen := map[int]bool{}
	for _, r := range readResults(ts, args[0]) {
		if r.WorkerPID == 0 {
			ts.Fatalf("%s: task %s/%s has no worker_pid", args[0], r.Job, r.Task)
		}
		seen[r.WorkerPID] = true
	}
	if n := atoi(ts, args[1]); len(seen) != n {
		ts.Fatalf("%s: tasks ran on %d workers %v, want %d", args[0], len(seen), slices.Collect(maps.Keys(seen)), n)
	}
}

// resumed JOURNAL RESULTS: a --resume run (RESULTS) skipped exactly the
// tasks that JOURNAL, the killed run's journal, records as done, and ran
// every other one successfully; there was some of each.
func cmdResumed(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "resumed")
	if len(args) != 2 {
		ts.Fatalf("usage: resumed JOURNAL RESULTS")
	}
	done := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(args[0])))
	for sc.Scan() {
		var e struct{ Job, Task string }
		// A killed run may leave a torn last line: ppool ignores it too.
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Job != "" {
			done[e.Job+"/"+e.Task] = true
		}
	}
	skipped, ran := map[string]bool{}, map[string]bool{}
	for _, r := range readResults(ts, args[1]) {
		name := r.Job + "/" + r.Task
		switch r.Status {
		case "skipped":
			skipped[name] = true
		case "ok":
			ran[name] = true
		default:
			ts.Fatalf("%s: %s is %s", args[1], name, r.Status)
		}
	}
	if !maps.Equal(done, skipped) {
		ts.Fatalf("skipped %v, but the journal has %v", slices.Sorted(maps.Keys(skipped)), slices.Sorted(maps.Keys(done)))
	}
	if len(skipped) == 0 || len(ran) == 0 {
		ts.Fatalf("skipped %d tasks and ran %d: the killed run was not killed mid-way", len(skipped), len(ran))
	}
	ts.Logf("skipped %v, ran %v", slices.Sorted(maps.Keys(skipped)), slices.Sorted(maps.Keys(ran)))
}

// dims FILE W H: an image is W×H pixels; a matrix (.npy, .csv) has W rows
// and H columns.
func cmdDims(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "dims")
	if len(args) != 3 {
		ts.Fatalf("usage: dims FILE W H")
	}
	path := ts.MkAbs(args[0])
	var w, h int
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy", ".csv":
		m, err := matrix.Read(path)
		ts.Check(err)
		w, h = m.Dims()
	default:
		f, err := os.Open(path)
		ts.Check(err)
		defer f.Close()
		cfg, _, err := image.DecodeConfig(f)
		ts.Check(err)
		w, h = cfg.Width, cfg.Height
	}
	if w != atoi(ts, args[1]) || h != atoi(ts, args[2]) {
		ts.Fatalf("%s is %d×%d, want %s×%s", args[0], w, h, args[1], args[2])
	}
}

// truncate FILE SIZE: cut FILE to SIZE bytes.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "truncate")
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	err := os.Truncate(ts.MkAbs(args[0]), int64(atoi(ts, args[1])))
	if errors.Is(err, os.ErrNotExist) {
		ts.Fatalf("truncate: %s does not exist", args[0])
	}
	ts.Check(err)
}

// kindslisted: the last command's stdout describes every registered job
// kind, each once, in order of name, and nothing else begins a line.
func cmdKindsListed(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kindslisted")
	if len(args) != 0 {
		ts.Fatalf("usage: kindslisted")
	}
	var listed []string
	for line := range strings.Lines(ts.ReadFile("stdout")) {
		if line == "\n" || strings.HasPrefix(line, "  ") {
			continue
		}
		name, _, ok := strings.Cut(line, ": ")
		if !ok {
			ts.Fatalf("stdout: %q is neither a kind's heading nor indented", line)
		}
		listed = append(listed, name)
	}
	if want := jobs.KindNames(); !slices.Equal(listed, want) {
		ts.Fatalf("listed kinds %v, want %v", listed, want)
	}
}

// schemacheck kinds: stdout is ppool kinds --json, listing every kind.
// schemacheck schema SCHEMA JOBS.yaml...: SCHEMA, from ppool kinds
// --schema, names every job key and kind, has an if/then per kind, and
// admits each jobs file: its keys, kinds and params, with their types.
// (No JSON Schema validator is a dependency: this checks what the schema
// says about the files, not every rule of draft-07.)
func cmdSchemaCheck(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "schemacheck")
	if len(args) == 1 && args[0] == "kinds" {
		var list []struct{ Name string }
		ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &list))
		var names []string
		for _, k := range list {
			names = append(names, k.Name)
		}
		if want := jobs.KindNames(); !slices.Equal(names, want) {
			ts.Fatalf("kinds --json lists %v, want %v", names, want)
		}
		return
	}
	if len(args) < 3 || args[0] != "schema" {
		ts.Fatalf("usage: schemacheck kinds | schemacheck schema SCHEMA JOBS.yaml...")
	}
	type node = map[string]any
	var schema node
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &schema))
	job := schema["definitions"].(node)["job"].(node)
	props := job["properties"].(node)
	if keys := slices.Sorted(maps.Keys(props)); !slices.Equal(keys, slices.Sorted(slices.Values(jobs.JobKeys()))) {
		ts.Fatalf("schema's job keys %v, want %v", keys, jobs.JobKeys())
	}
	var enum []string
	for _, k := range props["kind"].(node)["enum"].([]any) {
		enum = append(enum, k.(string))
	}
	if !slices.Equal(enum, jobs.KindNames()) {
		ts.Fatalf("schema's kinds %v, want %v", enum, jobs.KindNames())
	}
	then := map[string]node{}
	for _, c := range job["allOf"].([]any) {
		kind := c.(node)["if"].(node)["properties"].(node)["kind"].(node)["const"].(string)
		then[kind] = c.(node)["then"].(node)
	}
	if len(then) != len(enum) {
		ts.Fatalf("schema has if/then for %d kinds, want %d", len(then), len(enum))
	}
	jsonType := func(v any) string {
		switch v.(type) {
		case string:
			return "string"
		case bool:
			return "boolean"
		case float64:
			return "number"
		case int, int64, uint64:
			return "integer"
		}
		return fmt.Sprintf("%T", v)
	}
	for _, file := range args[2:] {
		var doc struct{ Jobs []map[string]any }
		ts.Check(yaml.Unmarshal([]byte(ts.ReadFile(file)), &doc))
		for _, j := range doc.Jobs {
			for k := range j {
				if props[k] == nil {
					ts.Fatalf("%s: job %v: key %q is not in the schema", file, j["name"], k)
				}
			}
			kind, _ := j["kind"].(string)
			t, ok := then[kind]
			if !ok {
				ts.Fatalf("%s: kind %q is not in the schema", file, kind)
			}
			params, _ := j["params"].(map[string]any)
			pprops := t["properties"].(node)["params"].(node)["properties"].(node)
			for name, v := range params {
				ps, ok := pprops[name].(node)
				if !ok {
					ts.Fatalf("%s: %s param %q is not in the schema", file, kind, name)
				}
				got, want := jsonType(v), ps["type"].(string)
				if got != want && !(want == "number" && got == "integer") {
					ts.Fatalf("%s: %s param %q is %s, schema says %s", file, kind, name, got, want)
				}
			}
		}
	}
}

// pty PROG [ARG...]: runs PROG with its stderr on a new pseudo-terminal
// that reports a size of 0×0, as under script(1) or some CI runners, and
// puts what it wrote there in stderr.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: pty PROG [ARG...]")
	}
	master, slave, err := openPty()
	ts.Check(err)
	defer master.Close()
	path, err := exec.LookPath(args[0])
	ts.Check(err)
	cmd := exec.Command(path, args[1:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = os.Environ()
	for _, kv := range []string{"PATH", "HOME", "TMPDIR", "GORACE"} {
		cmd.Env = append(cmd.Env, kv+"="+ts.Getenv(kv))
	}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	ts.Check(cmd.Start())
	slave.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil { // EIO once the last holder of the slave is gone
				return
			}
		}
	}()
	werr := cmd.Wait()
	<-done
	ts.Logf("[pty stderr]\n%s", out.String())
	ts.Check(os.WriteFile(filepath.Join(ts.Getenv("WORK"), "ptyerr"), bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n")), 0o644))
	if (werr != nil) != neg {
		ts.Fatalf("pty %v: %v", args, werr)
	}
}

// jsonlines FILE: FILE (or stdout, stderr) has at least one line, and
// every line is a JSON object.
func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "jsonlines")
	if len(args) != 1 {
		ts.Fatalf("usage: jsonlines FILE")
	}
	n := 0
	for line := range strings.Lines(ts.ReadFile(args[0])) {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			ts.Fatalf("%s: not a JSON object: %q", args[0], line)
		}
		n++
	}
	if n == 0 {
		ts.Fatalf("%s is empty", args[0])
	}
}
