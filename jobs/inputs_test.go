package jobs

import (
	"path/filepath"
	"strings"
	"testing"
)

// expandText parses and expands yaml in dir, returning the plan or the
// error text.
func expandText(t *testing.T, dir, yaml string) (*Plan, string) {
	t.Helper()
	f, err := Parse(filepath.Join(dir, "jobs.yaml"), []byte(yaml))
	if err != nil {
		return nil, err.Error()
	}
	plan, err := f.Expand()
	if err != nil {
		return nil, err.Error()
	}
	return plan, ""
}

func outputs(p *Plan, job int, dir string) []string {
	var out []string
	for _, t := range p.Jobs[job].Tasks {
		rel, _ := filepath.Rel(dir, t.Output)
		out = append(out, rel)
	}
	return out
}

func TestInputsAndTemplates(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"in/a.txt": "a", "in/b.out": "b", "in/sub/c.txt": "c", "in/sub/deep/d.txt": "d",
		"in/.hidden/e.txt": "e", "caps/A.TXT": "A", "two/x/f.txt": "", "two/y/f.txt": "",
	})
	cases := []struct {
		name, yaml string
		want       string // outputs of job 0, space-separated
	}{
		{"ext keeps each input's format", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: [in/a.txt, in/b.out]\n    output: o/{stem}{ext}\n", "o/a.txt o/b.out"},
		{"recursive glob", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: in/**/*.txt\n    output: o/{stem}.txt\n", "o/a.txt o/c.txt o/d.txt"},
		{"exclude one", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: in/**/*.txt\n    exclude: in/sub/c.txt\n    output: o/{stem}.txt\n", "o/a.txt o/d.txt"},
		{"exclude by name and glob", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: in/**/*.txt\n    exclude: [c.txt, in/sub/deep/**]\n    output: o/{stem}.txt\n", "o/a.txt"},
		{"dir keeps folders apart", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: two/**/*.txt\n    output: o/{dir}/{name}\n", "o/two/x/f.txt o/two/y/f.txt"},
		{"generated first input is named", "jobs:\n  - name: j\n    kind: test.pair\n    inputs: {a: {identity: 2}, b: [in/a.txt, in/sub/c.txt]}\n", "out/j/a.npy out/j/c.npy"},
		{"generated inputs only", "jobs:\n  - name: j\n    kind: test.pair\n    count: 2\n    inputs: {a: {identity: 2}, b: {identity: 2}}\n    output: o/{index}{ext}\n", "o/0.npy o/1.npy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := expandText(t, dir, c.yaml)
			if err != "" {
				t.Fatal(err)
			}
			if got := strings.Join(outputs(p, 0, dir), " "); got != c.want {
				t.Errorf("outputs %s, want %s", got, c.want)
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a", "in/b.png": "b", "caps/a.txt": "", "x/f.txt": "", "y/f.txt": "", "in/a.dat": ""})
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"ext the kind cannot write", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: in/*\n    output: o/{stem}{ext}\n",
			[]string{"jobs.yaml:5:5: test.copy writes .txt or .out files; output \"o/{stem}{ext}\" gives a.dat ({ext} is the input's extension: \".dat\" for "}},
		{"case", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: caps/*.TXT\n",
			[]string{"jobs.yaml:4:13: input \"caps/*.TXT\" matches no files (a.txt differs only in case; globs are case-sensitive: write caps/*.[tT][xX][tT] to match either case"}},
		{"overlap", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: [in/*.txt, in/a.*]\n",
			[]string{"jobs.yaml:4:24: job \"j\": input " + filepath.Join(dir, "in/a.txt") + " is matched by \"in/*.txt\" (line 4) and again by \"in/a.*\""}},
		{"every bad pattern", "jobs:\n  - name: j\n    kind: test.copy\n    inputs:\n      - in/nope.txt\n      - in/*.jpg\n      - in/a.txt\n      - \"in/[\"\n",
			[]string{"5:9: input in/nope.txt: no such file", "6:9: input \"in/*.jpg\" matches no files", "8:9: input \"in/[\" is not a valid glob"}},
		{"stem collides", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: [in/a.txt, in/a.dat]\n",
			[]string{"jobs.yaml:2:5: job \"j\" writes", "have the same {stem} in the default output out/{job}/{stem}.txt; put {index} in the output"}},
		{"name collides", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: \"*/f.txt\"\n    output: o/{name}\n",
			[]string{"jobs.yaml:5:5: job \"j\" writes", "have the same file name, in different folders", "put {dir} in the output"}},
		{"exclude everything", "jobs:\n  - name: j\n    kind: test.copy\n    inputs: in/*.txt\n    exclude: \"*.txt\"\n",
			[]string{"4:13: job \"j\": exclude leaves input \"src\" no files"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := expandText(t, dir, c.yaml)
			for _, w := range c.want {
				if !strings.Contains(err, w) {
					t.Errorf("error:\n%s\nwant it to contain\n%s", err, w)
				}
			}
			if strings.Contains(err, ":0:0") {
				t.Errorf("error has no position: %s", err)
			}
		})
	}
}

func TestYAMLFeatures(t *testing.T) {
	dir := writeTree(t, map[string]string{"in/a.txt": "a"})
	yaml := "\ufeffx-defaults: &defaults\n  kind: test.copy\n  params: &params {times: 3}\njobs:\n  - <<: *defaults\n    name: one\n    inputs: in/a.txt\n  - name: two\n    <<: [*defaults]\n    params: *params\n    inputs: in/a.txt\n    output: o/{stem}.out\n"
	p, err := expandText(t, dir, yaml)
	if err != "" {
		t.Fatal(err)
	}
	for _, j := range p.Jobs {
		if j.Kind.Name != "test.copy" || j.Params["times"] != 3 {
			t.Errorf("job %s: kind %s, params %v", j.Name, j.Kind.Name, j.Params)
		}
	}
	// An error in a merged value points at where it is written.
	_, err = expandText(t, dir, "x-d: &d\n  kind: test.copy\n  params: {times: 99}\njobs:\n  - <<: *d\n    name: a\n    inputs: in/a.txt\n")
	if !strings.Contains(err, "jobs.yaml:3:19: param times = 99 is out of range") {
		t.Errorf("error %s", err)
	}
	_, err = expandText(t, dir, "jobs:\n  - name: a\n    kind: test.copy\n    inputs: in/a.txt\n    output: \"o/\\0x.txt\"\n")
	if !strings.Contains(err, "jobs.yaml:5:13: \"output\" contains a NUL character") {
		t.Errorf("error %s", err)
	}
	_, err = expandText(t, dir, "jobs:\n  - name: a\n    kind: test.copy\n    inputs: *nowhere\n")
	if err == "" || strings.Contains(err, ":0:0") || !strings.Contains(err, "jobs.yaml:4:") {
		t.Errorf("error %s", err)
	}
}

func TestSuggestKind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"make", `"test.make"`},
		{"test.mkae", `"test.make"`},
		{"test.copying", `"test.copy"`},
		{"TEST.PAIR", `"test.pair"`},
		{"zzzzzz", "known: "},
	} {
		if got := SuggestKind(c.in); !strings.Contains(got, c.want) {
			t.Errorf("SuggestKind(%q) = %q, want %s", c.in, got, c.want)
		}
	}
}
