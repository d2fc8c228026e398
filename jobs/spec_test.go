package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Test kinds, registered in the test binary only.
func init() {
	Register(&Kind{
		Name: "test.copy", Summary: "copies its input", Version: 1,
		Slots:   []Slot{{Name: "src", Doc: "any file"}},
		Params:  []Param{{Name: "times", Type: TypeInt, Default: 1, Doc: "copies", Min: Bound(1), Max: Bound(10)}, {Name: "mode", Type: TypeString, Default: "plain", Choices: []string{"plain", "upper"}, Doc: "how"}},
		Outputs: []string{"txt", "out"},
		Run:     func(ctx context.Context, t *Task) (*Outcome, error) { return nil, nil },
	})
	Register(&Kind{
		Name: "test.pair", Summary: "pairs two inputs", Version: 1,
		Slots:   []Slot{{Name: "a", Doc: "a matrix", Generate: true}, {Name: "b", Doc: "a matrix", Generate: true}},
		Outputs: []string{"npy"},
		Run:     func(ctx context.Context, t *Task) (*Outcome, error) { return nil, nil },
	})
	Register(&Kind{
		Name: "test.make", Summary: "makes a file from params", Version: 1,
		Params:  []Param{{Name: "size", Type: TypeFloat, Default: 1.5, Doc: "how big"}},
		Outputs: []string{"png"},
		Run:     func(ctx context.Context, t *Task) (*Outcome, error) { return nil, nil },
	})
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string // want: "line:col: message part"
	}{
		{"syntax", "jobs:\n  - name: a\n   kind: x\n", "3:"},
		{"not a mapping", "- a\n- b\n", "1:1: the jobs file must be a mapping"},
		{"no jobs", "other: 1\n", "1:1: unknown key \"other\" in the jobs file"},
		{"unknown job key", "jobs:\n  - name: a\n    kind: test.make\n    outptu: x.png\n", "4:5: unknown key \"outptu\" in a job (did you mean \"output\"?)"},
		{"unknown kind", "jobs:\n  - name: a\n    kind: test.mkae\n", "3:11: unknown kind \"test.mkae\" (did you mean \"test.make\"?)"},
		{"missing kind", "jobs:\n  - name: a\n", "2:5: job \"a\" needs a \"kind\""},
		{"wrong param type", "jobs:\n  - name: a\n    kind: test.make\n    params:\n      size: big\n", "5:13: param size must be a number, not a string"},
		{"unknown param", "jobs:\n  - name: a\n    kind: test.make\n    params: {siz: 2}\n", "4:14: unknown key \"siz\" in params of test.make (did you mean \"size\"?)"},
		{"param out of range", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in.txt\n    params: {times: 11}\n", "5:21: param times = 11 is out of range [1, 10]"},
		{"bad choice", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in.txt\n    params: {mode: loud}\n", "5:20: param mode = \"loud\": choose one of plain, upper"},
		{"missing inputs", "jobs:\n  - name: a\n    kind: test.copy\n", "2:5: job \"a\" needs \"inputs\""},
		{"inputs for generator", "jobs:\n  - name: a\n    kind: test.make\n    inputs: x.txt\n", "4:13: test.make makes its output from params alone"},
		{"timeout without unit", "jobs:\n  - name: a\n    kind: test.make\n    timeout: 30\n", "4:14: timeout needs a unit"},
		{"bad memory", "jobs:\n  - name: a\n    kind: test.make\n    memory: lots\n", "4:13: memory: \"lots\" is not a size"},
		{"duplicate name", "jobs:\n  - name: a\n    kind: test.make\n  - name: a\n    kind: test.make\n", "4:5: job name \"a\" is already used at line 2"},
		{"after unknown", "jobs:\n  - name: a\n    kind: test.make\n    after: [b]\n", "4:5: job \"a\" runs after \"b\", but there is no job of that name"},
		{"after later", "jobs:\n  - name: a\n    kind: test.make\n    after: b\n  - name: b\n    kind: test.make\n", "4:5: job \"a\" runs after \"b\", which comes later"},
		{"bad name", "jobs:\n  - name: a b\n    kind: test.make\n", "2:11: job name \"a b\""},
		{"bad sha", "jobs:\n  - name: a\n    kind: test.make\n    worker: {command: ./w, sha256: abc}\n", "4:36: worker sha256 must be 64 hex digits"},
		{"generated for files", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: {random: [2, 2]}\n", "4:14: input \"src\" takes files"},
		{"shape", "jobs:\n  - name: a\n    kind: test.pair\n    inputs: {a: {random: [2]}, b: {identity: 2}}\n", "4:26: a shape is [rows, cols]"},
		{"missing slot", "jobs:\n  - name: a\n    kind: test.pair\n    inputs: {a: {identity: 2}}\n", "4:14: inputs of test.pair need \"b\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("jobs.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error for:\n%s", c.yaml)
			}
			if !strings.Contains(err.Error(), "jobs.yaml:"+c.want) {
				t.Errorf("error:\n%v\nwant it to contain\njobs.yaml:%s", err, c.want)
			}
			// The offending line is shown under the message.
			if es, ok := err.(Errors); ok && es[0].Line == "" && c.name != "syntax" {
				t.Errorf("error %q does not show its line", es[0].Msg)
			}
		})
	}
}

func TestErrorShowsLine(t *testing.T) {
	_, err := Parse("dir/jobs.yaml", []byte("jobs:\n  - name: a\n    kind: test.make\n    params: {size: x}\n"))
	want := "dir/jobs.yaml:4:20: param size must be a number, not a string\n 4 |     params: {size: x}\n   | " + strings.Repeat(" ", 19) + "^"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestExpand(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a", "in/b.txt": "b", "in/c.dat": "c"})
	yaml := `jobs:
  - name: copy
    kind: test.copy
    inputs: in/*.txt
  - name: again
    kind: test.copy
    after: [copy]
    inputs: out/copy/*.txt
    output: out/again/{stem}-{index}.out
  - name: pairs
    kind: test.pair
    count: 3
    inputs:
      a: {random: [4, 4], seed: 10}
      b: {identity: 4}
  - name: one
    kind: test.make
`
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if plan.Tasks != 2+2+3+1 {
		t.Fatalf("%d tasks", plan.Tasks)
	}
	c := plan.Jobs[0].Tasks
	if c[0].Name != "a" || c[0].Output != filepath.Join(dir, "out/copy/a.txt") || c[1].Inputs["src"].Path != filepath.Join(dir, "in/b.txt") {
		t.Errorf("copy tasks: %+v %+v", c[0], c[1])
	}
	if got := plan.Jobs[1].Tasks[1].Output; got != filepath.Join(dir, "out/again/b-1.out") {
		t.Errorf("again output %s", got)
	}
	p := plan.Jobs[2].Tasks
	if p[2].Inputs["a"].Gen.Seed != 12 || p[2].Inputs["b"].Gen.Kind != "identity" || p[2].Output != filepath.Join(dir, "out/pairs/2.npy") {
		t.Errorf("pairs task 2: %+v", p[2])
	}
	if got := plan.Jobs[3].Tasks[0].Output; got != filepath.Join(dir, "out/one.png") {
		t.Errorf("one output %s", got)
	}
	if plan.Jobs[0].Tasks[0].Params["times"] != 1 || plan.Jobs[0].Tasks[0].Params["mode"] != "plain" {
		t.Errorf("defaults not filled: %v", plan.Jobs[0].Tasks[0].Params)
	}
}

func TestExpandErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a", "in/b.txt": "b", "in/x.txt": "x", "sub/keep": ""})
	cases := []struct{ name, yaml, want string }{
		{"missing file", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/nope.txt\n", "4:13: input in/nope.txt: no such file"},
		{"empty glob", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/*.png\n", "4:13: input \"in/*.png\" matches no files"},
		{"bad glob", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: \"in/[.txt\"\n", "4:13: input \"in/[.txt\" is not a valid glob"},
		{"folder", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: sub\n", "4:13: input sub is a folder"},
		{"collide within", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/*.txt\n    output: out/same.txt\n", "5:5: job \"a\" writes"},
		{"collide across", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    output: o.txt\n  - name: b\n    kind: test.copy\n    inputs: in/b.txt\n    output: o.txt\n", "9:5: job \"b\" writes " + filepath.Join(dir, "o.txt") + ", which job \"a\" (line 5) writes too"},
		{"bad ext", "jobs:\n  - name: a\n    kind: test.make\n    output: x.jpg\n", "4:5: test.make writes .png files"},
		{"bad placeholder", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    output: \"{stme}.txt\"\n", "5:5: output \"{stme}.txt\": unknown placeholder {stme}"},
		{"overwrite input", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    output: in/a.txt\n", "5:5: job \"a\" would overwrite its own input"},
		{"count with files", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    count: 3\n", "5:5: count applies to generated inputs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(c.yaml))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = f.Expand()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain %s", err, c.want)
			}
		})
	}
}

// FuzzParse feeds arbitrary bytes to the jobs-file parser: it must never
// panic, whatever it is given.
func FuzzParse(f *testing.F) {
	f.Add([]byte("jobs:\n  - name: a\n    kind: test.make\n    params: {size: 2}\n"))
	f.Add([]byte("jobs:\n  - name: a\n    kind: test.pair\n    inputs: {a: {random: [2, 2], seed: 1}, b: {identity: 2}}\n    count: 2\n"))
	f.Add([]byte("jobs: [{name: x, kind: test.copy, inputs: [a, b], after: y, worker: {command: w, env: {A: 1}}}]"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("\ufeffx-d: &d {kind: test.make}\njobs:\n  - <<: [*d, {name: a}]\n    output: \"o/{index}{ext}\"\n"))
	f.Add([]byte("jobs:\n  - name: a\n    kind: test.copy\n    inputs: [\"**/*.txt\", a.*]\n    exclude: \"*.out\"\n    output: o/{dir}/{stem}{ext}\n"))
	// Every error says where it is: a 0:0 points nowhere.
	placed := func(t *testing.T, err error) {
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				if e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("error without a position: %v", e.Msg)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		placed(t, err)
		// A ** glob from / walks the whole machine: legal, but not a
		// thing to do thousands of times a second.
		if err == nil && !bytes.Contains(data, []byte("**")) {
			_, err = file.Expand()
			placed(t, err)
		}
	})
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"2gib", 2 << 30}, {"512mib", 512 << 20},
		{"2G", 2 << 30}, {"2g", 2 << 30}, {"2Gi", 2 << 30}, {"1.5G", 3 << 29},
		{"2GB", 2e9}, {"2gb", 2e9}, {"500MB", 500e6}, {"500 MB", 500e6}, {"1TB", 1e12},
		{"1048576", 1 << 20}, {"1048576B", 1 << 20}, {"1PiB", 1 << 50},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"lots", "is not a size"},
		{"2 GiBs", "is not a size"},
		{"1XB", "is not a size"},
		{"100000000T", "too large"},
		{"99999999999999999999999", "too large"},
		{"2048PiB", "too large"},
		{"100KiB", "below 1MiB"},
		{"0", "below 1MiB"},
	} {
		if _, err := ParseSize(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSize(%q): err = %v, want one saying %q", c.in, err, c.want)
		}
	}
}

// TestExpandRefusesOddFiles: named pipes and devices are refused as inputs
// when the file is read (reading one could block forever or never end), and
// a glob passes over them as over folders.
func TestExpandRefusesOddFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a"})
	if err := syscall.Mkfifo(filepath.Join(dir, "in/pipe.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"fifo", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/pipe.txt\n", "4:13: input in/pipe.txt is a named pipe (FIFO); ppool reads regular files only"},
		{"device", "jobs:\n  - name: a\n    kind: test.copy\n    inputs: /dev/zero\n", "4:13: input /dev/zero is a character device; ppool reads regular files only"},
	} {
		f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Expand(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte("jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/*.txt\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if ts := plan.Jobs[0].Tasks; len(ts) != 1 || ts[0].Inputs["src"].Path != filepath.Join(dir, "in/a.txt") {
		t.Errorf("glob over a folder with a FIFO gave %d tasks, want the one regular file", len(ts))
	}
	// A FIFO put in an input's place after the check: hashing it fails at
	// once rather than block in open (no writer) or read.
	done := make(chan error, 1)
	go func() { _, err := hashFile(filepath.Join(dir, "in/pipe.txt")); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("hashing a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hashing a FIFO blocked")
	}
}

// TestExpandCollisionsResolved: two spellings of one output (relative and
// absolute, or through a symlinked folder) collide.
func TestExpandCollisionsResolved(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a", "in/b.txt": "b", "real/keep": ""})
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, out2, want string }{
		{"absolute", filepath.Join(dir, "real/x.txt"), "(the same file as " + filepath.Join(dir, "real/x.txt") + ")"},
		{"symlink", "link/x.txt", "(the same file as " + filepath.Join(dir, "real/x.txt") + ")"},
		{"symlink, folder to make", "link/new/x.txt", "(the same file as " + filepath.Join(dir, "real/new/x.txt") + ")"},
	} {
		out1 := "real/x.txt"
		if strings.Contains(c.name, "make") {
			out1 = "real/new/x.txt"
		}
		yaml := "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    output: " + out1 + "\n  - name: b\n    kind: test.copy\n    inputs: in/b.txt\n    output: " + c.out2 + "\n"
		f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Expand(); err == nil || !strings.Contains(err.Error(), "9:5: job \"b\" writes") || !strings.Contains(err.Error(), "which job \"a\" (line 5) writes too") {
			t.Errorf("%s: error %v, want a collision", c.name, err)
		}
	}
}

// TestExpandBounded: the total of tasks is bounded before any is made, and
// an oversized jobs file is refused before it is parsed.
func TestExpandBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("jobs:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - name: j%d\n    kind: test.make\n    count: 1000000\n", i)
	}
	f, err := Parse("jobs.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = f.Expand()
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "would bring the run to 2000000 tasks; a jobs file may expand to 1000000 at most") {
		t.Errorf("error %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<30 {
		t.Errorf("expanding allocated %d MiB", grew>>20)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, append([]byte("jobs: []\n#"), bytes.Repeat([]byte("x"), MaxFileSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "ppool reads jobs files of up to 8 MiB") {
		t.Errorf("oversized file: %v", err)
	}
}
