package jobs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Plan is a jobs file expanded into tasks, every input found and every
// output path decided, before anything runs.
type Plan struct {
	File  *File
	Jobs  []*PlannedJob
	Tasks int
}

// PlannedJob is a job and its tasks.
type PlannedJob struct {
	*Job
	Tasks []*Task
	After []*PlannedJob
}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

var placeholders = []string{"job", "index", "stem", "name", "ext"}

// Expand turns each job into its tasks: globs are matched, inputs checked,
// output templates filled in, and outputs checked not to collide. An input
// may be a file that an earlier job named in "after" will write.
func (f *File) Expand() (*Plan, error) {
	d := &decoder{f: f}
	plan := &Plan{File: f}
	byName := map[string]*PlannedJob{}
	outputs := map[string]*PlannedJob{} // samePath of an output → job
	outputPos := map[string]Pos{}
	spelled := map[string]string{} // samePath of an output → as first written
	// Counts are refused before a task is made: ten jobs of count 1000000
	// would take the master gigabytes.
	counted := 0
	for _, j := range f.Jobs {
		if j.Count > 1 {
			if counted += j.Count; counted > MaxTasks {
				d.errorAt(j.pos["count"], "job %q would bring the run to %d tasks; a jobs file may expand to %d at most: split the work over several files", j.Name, counted, MaxTasks)
			}
		}
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	paths := newPathResolver()
	for _, j := range f.Jobs {
		pj := &PlannedJob{Job: j}
		for _, a := range j.After {
			pj.After = append(pj.After, byName[a])
		}
		d.expand(pj)
		if plan.Tasks+len(pj.Tasks) > MaxTasks {
			d.errorAt(j.pos["name"], "job %q brings the run to %d tasks; a jobs file may expand to %d at most: split the work over several files", j.Name, plan.Tasks+len(pj.Tasks), MaxTasks)
		}
		for _, t := range pj.Tasks {
			key := paths.same(t.Output)
			if prev, dup := outputs[key]; dup {
				same := ""
				if first := spelled[key]; first != t.Output {
					same = fmt.Sprintf(" (the same file as %s)", first)
				}
				if prev == pj {
					d.errorAt(j.pos["output"], "job %q writes %s%s more than once: put {stem} or {index} in its output", j.Name, t.Output, same)
				} else {
					d.errorAt(outputPosOf(j), "job %q writes %s%s, which job %q (line %d) writes too", j.Name, t.Output, same, prev.Name, outputPos[key].Line)
				}
				break
			}
			outputs[key] = pj
			outputPos[key] = outputPosOf(j)
			spelled[key] = t.Output
		}
		byName[j.Name] = pj
		plan.Jobs = append(plan.Jobs, pj)
		plan.Tasks += len(pj.Tasks)
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return plan, nil
}

func outputPosOf(j *Job) Pos {
	if p, ok := j.pos["output"]; ok {
		return p
	}
	return j.pos["name"]
}

// expand fills in pj.Tasks.
func (d *decoder) expand(pj *PlannedJob) {
	j := pj.Job
	k := j.Kind
	// Each slot's values; a slot with one value is shared by every task.
	values := map[string][]Input{}
	n := 1
	fromFiles := false
	for _, s := range k.Slots {
		src := j.Inputs[s.Name]
		var vs []Input
		if src.Gen != nil {
			for i := range j.Count {
				g := *src.Gen
				g.Seed += uint64(i)
				vs = append(vs, Input{Gen: &g})
			}
		} else {
			fromFiles = true
			vs = d.files(pj, s, src)
			if vs == nil {
				return
			}
		}
		values[s.Name] = vs
		if len(vs) > 1 {
			if n > 1 && len(vs) != n {
				d.errorAt(src.Pos, "input %q has %d files but another input has %d: inputs pair up one to one, or one is shared", s.Name, len(vs), n)
				return
			}
			n = len(vs)
		}
	}
	if len(k.Slots) == 0 {
		n = j.Count
	} else if fromFiles && j.Count > 1 {
		d.errorAt(j.pos["count"], "count applies to generated inputs; job %q's inputs are files", j.Name)
		return
	} else if !fromFiles {
		n = j.Count
	}

	tmpl := j.Output
	if !j.outputSet {
		switch {
		case fromFiles && k.Outputs[0] == anyExt:
			tmpl = "out/{job}/{name}"
		case fromFiles:
			tmpl = "out/{job}/{stem}.{ext}"
		case n > 1:
			tmpl = "out/{job}/{index}.{ext}"
		default:
			tmpl = "out/{job}.{ext}"
		}
	}
	outPos := outputPosOf(j)
	ext := strings.TrimPrefix(path.Ext(placeholderRE.ReplaceAllString(tmpl, "")), ".")
	if strings.Contains(tmpl, "{ext}") {
		ext = k.Outputs[0]
	} else if k.Outputs[0] != anyExt && !slices.Contains(k.Outputs, strings.ToLower(ext)) {
		d.errorAt(outPos, "%s writes .%s files; output %q ends in %q", k.Name, strings.Join(k.Outputs, " or ."), tmpl, path.Ext(tmpl))
		return
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(tmpl, -1) {
		if !slices.Contains(placeholders, m[1]) {
			d.errorAt(outPos, "output %q: unknown placeholder {%s} (use {job}, {index}, {stem}, {name} or {ext})", tmpl, m[1])
			return
		}
		if (m[1] == "stem" || m[1] == "name") && !fromFiles {
			d.errorAt(outPos, "output %q: {%s} needs file inputs; use {index}", tmpl, m[1])
			return
		}
	}
	width := len(strconv.Itoa(max(n-1, 0)))
	for i := range n {
		t := &Task{Job: j.Name, Kind: k.Name, Index: i, Inputs: map[string]Input{}, Params: j.Params, Mode: "run", Memory: j.Memory}
		stem, name := "", ""
		for si, s := range k.Slots {
			vs := values[s.Name]
			in := vs[0]
			if len(vs) > 1 {
				in = vs[i]
			}
			t.Inputs[s.Name] = in
			if si == 0 && in.Path != "" {
				name = filepath.Base(in.Path)
				stem = strings.TrimSuffix(name, filepath.Ext(name))
			}
		}
		t.Name = stem
		if t.Name == "" || n > 1 && len(values[firstSlot(k)]) <= 1 {
			t.Name = fmt.Sprintf("%0*d", width, i)
		}
		out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
			switch m {
			case "{job}":
				return j.Name
			case "{index}":
				return fmt.Sprintf("%0*d", width, i)
			case "{stem}":
				return stem
			case "{name}":
				return name
			}
			return ext
		})
		t.Output = resolve(d.f.Dir, out)
		for _, in := range t.Inputs {
			if in.Path != "" && filepath.Clean(in.Path) == filepath.Clean(t.Output) {
				d.errorAt(outPos, "job %q would overwrite its own input %s", j.Name, in.Path)
				return
			}
		}
		pj.Tasks = append(pj.Tasks, t)
	}
}

func firstSlot(k *Kind) string {
	if len(k.Slots) == 0 {
		return ""
	}
	return k.Slots[0].Name
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "." {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// files resolves a slot's paths and globs. A path or glob may also name
// files that a job in "after" will write.
func (d *decoder) files(pj *PlannedJob, s Slot, src Source) []Input {
	var upstream []string
	var walk func(p *PlannedJob)
	seen := map[*PlannedJob]bool{}
	walk = func(p *PlannedJob) {
		for _, a := range p.After {
			if !seen[a] {
				seen[a] = true
				for _, t := range a.Tasks {
					upstream = append(upstream, t.Output)
				}
				walk(a)
			}
		}
	}
	walk(pj)
	var out []Input
	for i, pat := range src.Patterns {
		at := src.patternPos(i)
		full := resolve(d.f.Dir, pat)
		if !hasMeta(pat) {
			st, err := os.Stat(full)
			switch {
			case err == nil && st.IsDir():
				d.errorAt(at, "input %s is a folder; use a glob such as %s/*.png", pat, strings.TrimSuffix(pat, "/"))
				return nil
			case err == nil && notRegular(st.Mode()) != "":
				d.errorAt(at, "input %s is %s; ppool reads regular files only", pat, notRegular(st.Mode()))
				return nil
			case err == nil, slices.Contains(upstream, full):
				out = append(out, Input{Path: full})
			default:
				hint := ""
				if pj.After == nil {
					hint = " (if an earlier job writes it, name that job in \"after\")"
				}
				d.errorAt(at, "input %s: no such file%s", pat, hint)
				return nil
			}
			continue
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			d.errorAt(at, "input %q is not a valid glob: %v", pat, err)
			return nil
		}
		for _, u := range upstream {
			if ok, _ := filepath.Match(full, u); ok && !slices.Contains(matches, u) {
				matches = append(matches, u)
			}
		}
		var files []string
		for _, m := range matches {
			// Folders, named pipes and devices are not inputs; a glob
			// passes over them, as over a folder.
			if st, err := os.Stat(m); err == nil && notRegular(st.Mode()) != "" {
				continue
			}
			// As in a shell, a glob matches hidden files only if it says so:
			// that also keeps out the temporary files of an interrupted
			// atomic write.
			if strings.HasPrefix(filepath.Base(m), ".") && !strings.HasPrefix(filepath.Base(pat), ".") {
				continue
			}
			files = append(files, m)
		}
		if len(files) == 0 {
			d.errorAt(at, "input %q matches no files", pat)
			return nil
		}
		slices.Sort(files)
		for _, m := range files {
			out = append(out, Input{Path: m})
		}
	}
	return out
}

// pathResolver gives the key under which two spellings of one file meet:
// the absolute path, through any symbolic links of the folders that exist,
// so that out/x.png, its absolute spelling and a path through a symlinked
// folder all collide. Folders are resolved once each: a job's outputs
// mostly share one.
type pathResolver struct{ dirs map[string]string }

func newPathResolver() *pathResolver { return &pathResolver{dirs: map[string]string{}} }

func (r *pathResolver) same(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return filepath.Join(r.dir(filepath.Dir(abs)), filepath.Base(abs))
}

// dir resolves an absolute folder's links; the part that does not exist
// yet (folders the run will make) cannot be a link, and is kept as it is.
func (r *pathResolver) dir(d string) string {
	if real, ok := r.dirs[d]; ok {
		return real
	}
	real, err := filepath.EvalSymlinks(d)
	if err != nil {
		if parent := filepath.Dir(d); parent != d {
			real = filepath.Join(r.dir(parent), filepath.Base(d))
		} else {
			real = d
		}
	}
	r.dirs[d] = real
	return real
}

// notRegular describes a file that is not a regular one (a named pipe, a
// device, a socket), or returns "" for a regular file. Reading one could
// block forever (a FIFO with no writer) or never end (/dev/zero).
func notRegular(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return ""
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }
