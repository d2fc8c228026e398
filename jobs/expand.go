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

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ppool/ppool/jobs/kinds"
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

var placeholders = []string{"job", "index", "stem", "name", "ext", "dir"}

// Expand turns each job into its tasks: globs are matched, inputs checked,
// output templates filled in, and outputs checked not to collide. An input
// may be a file that an earlier job named in "after" will write.
func (f *File) Expand() (*Plan, error) {
	d := &decoder{f: f}
	plan := &Plan{File: f}
	byName := map[string]*PlannedJob{}
	outputs := map[string]*PlannedJob{} // samePath of an output → job
	writer := map[string]*Task{}        // samePath of an output → task
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
					d.errorAt(outputPosOf(j), "job %q writes %s%s more than once%s", j.Name, t.Output, same, collisionAdvice(j, writer[key], t))
				} else {
					d.errorAt(outputPosOf(j), "job %q writes %s%s, which job %q (line %d) writes too", j.Name, t.Output, same, prev.Name, outputPos[key].Line)
				}
				break
			}
			outputs[key] = pj
			writer[key] = t
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

// collisionAdvice says why two tasks of a job write one file, and what
// output template would keep them apart.
func collisionAdvice(j *Job, a, b *Task) string {
	tmpl := j.Output
	if !j.outputSet {
		tmpl = "the default output " + defaultTemplate(j.Kind, true, 2)
	}
	var ina, inb string
	for _, s := range j.Kind.Slots {
		if pa, pb := a.Inputs[s.Name].Path, b.Inputs[s.Name].Path; pa != "" && pa != pb {
			ina, inb = pa, pb
			break
		}
	}
	stem, name := strings.Contains(tmpl, "{stem}"), strings.Contains(tmpl, "{name}")
	switch {
	case ina != "" && stem && filepath.Base(ina) != filepath.Base(inb):
		return fmt.Sprintf(": inputs %s and %s have the same {stem} in %s; put {index} in the output, or {stem}{ext} to keep each input's extension", ina, inb, tmpl)
	case ina != "" && (stem || name):
		return fmt.Sprintf(": inputs %s and %s have the same file name, in different folders, in %s; put {dir} in the output to keep a folder per input folder (e.g. out/{job}/{dir}/{stem}{ext}), or {index}", ina, inb, tmpl)
	case stem || name:
		return fmt.Sprintf(": its tasks share the input {stem} and {name} come from, in %s; put {index} in the output", tmpl)
	}
	return fmt.Sprintf(": %s names nothing that differs from task to task; put {stem} or {index} in the output", tmpl)
}

// defaultTemplate is the output of a job that names none.
func defaultTemplate(k *Kind, fromFiles bool, n int) string {
	switch {
	case fromFiles && k.Outputs[0] == anyExt:
		return "out/{job}/{name}"
	case fromFiles:
		return "out/{job}/{stem}." + k.Outputs[0]
	case n > 1:
		return "out/{job}/{index}." + k.Outputs[0]
	}
	return "out/{job}." + k.Outputs[0]
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
		tmpl = defaultTemplate(k, fromFiles, n)
	}
	outPos := outputPosOf(j)
	for _, m := range placeholderRE.FindAllStringSubmatch(tmpl, -1) {
		if !slices.Contains(placeholders, m[1]) {
			d.errorAt(outPos, "output %q: unknown placeholder {%s} (use {job}, {index}, {stem}, {name}, {ext} or {dir})", tmpl, m[1])
			return
		}
		if (m[1] == "stem" || m[1] == "name" || m[1] == "dir") && !fromFiles {
			d.errorAt(outPos, "output %q: {%s} needs file inputs; use {index}", tmpl, m[1])
			return
		}
	}
	// Names come from the first input that is a file and differs from
	// task to task, else from the first that is a file: a generated first
	// input has no name to give.
	nameSlot := ""
	for _, s := range k.Slots {
		if vs := values[s.Name]; len(vs) > 0 && vs[0].Path != "" {
			if nameSlot == "" || len(vs) > 1 && len(values[nameSlot]) <= 1 {
				nameSlot = s.Name
			}
		}
	}
	wantDir := strings.Contains(tmpl, "{dir}")
	baseDir, err := filepath.Abs(d.f.Dir)
	if err != nil && wantDir {
		d.errorAt(outPos, "output %q: {dir} needs the jobs file's folder: %v", tmpl, err)
		return
	}
	width := len(strconv.Itoa(max(n-1, 0)))
	for i := range n {
		t := &Task{Job: j.Name, Kind: k.Name, Index: i, Inputs: map[string]Input{}, Params: j.Params, Mode: "run", Memory: j.Memory}
		stem := ""
		for si, s := range k.Slots {
			vs := values[s.Name]
			in := vs[0]
			if len(vs) > 1 {
				in = vs[i]
			}
			t.Inputs[s.Name] = in
			if si == 0 && in.Path != "" {
				stem = strings.TrimSuffix(filepath.Base(in.Path), filepath.Ext(in.Path))
			}
		}
		index := fmt.Sprintf("%0*d", width, i)
		t.Name = stem
		if t.Name == "" || n > 1 && len(values[firstSlot(k)]) <= 1 {
			t.Name = index
		}
		// {ext} is the input's own extension, dot included, so that
		// {stem}{ext} keeps each input's format; with no input file it
		// is the kind's default.
		name, ext, dir := index, "."+k.Outputs[0], ""
		if ext == "."+anyExt {
			ext = ""
		}
		if nameSlot != "" {
			p := t.Inputs[nameSlot].Path
			name, ext = filepath.Base(p), filepath.Ext(p)
			if wantDir {
				dir = relDir(baseDir, p)
			}
		} else {
			name += ext
		}
		stem = strings.TrimSuffix(name, ext)
		if dir == "" && wantDir {
			d.errorAt(outPos, "output %q: {dir} is the input's folder under the jobs file's, but %s is outside it", tmpl, t.Inputs[nameSlot].Path)
			return
		}
		out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
			switch m {
			case "{job}":
				return j.Name
			case "{index}":
				return index
			case "{stem}":
				return stem
			case "{name}":
				return name
			case "{dir}":
				return dir
			}
			return ext
		})
		if k.Outputs[0] != anyExt {
			if oext := strings.TrimPrefix(path.Ext(out), "."); !slices.Contains(k.Outputs, strings.ToLower(oext)) {
				why := ""
				if strings.Contains(tmpl, "{ext}") && nameSlot != "" {
					why = fmt.Sprintf(" ({ext} is the input's extension: %q for %s)", ext, t.Inputs[nameSlot].Path)
				}
				d.errorAt(outPos, "%s writes .%s files; output %q gives %s%s", k.Name, strings.Join(k.Outputs, " or ."), tmpl, filepath.Base(out), why)
				return
			}
		}
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

// relDir is the folder of input p under base, the jobs file's folder as
// an absolute path: "." for base itself, or "" if p is outside it.
func relDir(base, p string) string {
	abs, err := filepath.Abs(filepath.Dir(p))
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	return rel
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

// files resolves a slot's paths and globs, less what the job excludes. A
// path or glob may also name files that a job in "after" will write. Every
// bad path or glob of the list is reported.
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
	bad := false
	from := map[string]int{} // a file → the pattern that first gave it
	add := func(i int, file string) {
		if first, dup := from[file]; dup {
			d.errorAt(src.patternPos(i), "job %q: input %s is matched by %q (line %d) and again by %q: each file is one task; narrow one of them, or exclude the file", pj.Name, file, src.Patterns[first], src.patternPos(first).Line, src.Patterns[i])
			bad = true
			return
		}
		from[file] = i
		if !d.excluded(pj.Job, file) {
			out = append(out, Input{Path: file})
		}
	}
	for i, pat := range src.Patterns {
		at := src.patternPos(i)
		full := resolve(d.f.Dir, pat)
		if !hasMeta(pat) {
			st, err := os.Stat(full)
			switch {
			case err == nil && st.IsDir():
				d.errorAt(at, "input %s is a folder; use a glob such as %s/*.png, or %s/**/*.png for its subfolders too", pat, strings.TrimSuffix(pat, "/"), strings.TrimSuffix(pat, "/"))
				bad = true
			case err == nil && notRegular(st.Mode()) != "":
				d.errorAt(at, "input %s is %s; ppool reads regular files only", pat, notRegular(st.Mode()))
				bad = true
			case err == nil, slices.Contains(upstream, full):
				add(i, full)
			default:
				hint := ""
				if pj.After == nil {
					hint = " (if an earlier job writes it, name that job in \"after\")"
				}
				d.errorAt(at, "input %s: no such file%s", pat, hint)
				bad = true
			}
			continue
		}
		if !doublestar.ValidatePattern(filepath.ToSlash(full)) {
			d.errorAt(at, "input %q is not a valid glob: %v", pat, doublestar.ErrBadPattern)
			bad = true
			continue
		}
		matches, err := doublestar.FilepathGlob(full)
		if err != nil {
			d.errorAt(at, "input %q: %v", pat, err)
			bad = true
			continue
		}
		for _, u := range upstream {
			if ok, _ := doublestar.PathMatch(full, u); ok && !slices.Contains(matches, u) {
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
			if hiddenMatch(full, m) {
				continue
			}
			files = append(files, m)
		}
		if len(files) == 0 {
			d.errorAt(at, "input %q matches no files%s", pat, caseHint(full, pat))
			bad = true
			continue
		}
		slices.Sort(files)
		for _, m := range files {
			add(i, m)
		}
	}
	if bad {
		return nil
	}
	if len(out) == 0 {
		d.errorAt(src.Pos, "job %q: exclude leaves input %q no files", pj.Name, s.Name)
		return nil
	}
	return out
}

// hiddenMatch: as in a shell, a glob matches a hidden file or a file in a
// hidden folder only if it says so (.* or .git/*): that also keeps out
// the temporary files of an interrupted atomic write.
func hiddenMatch(pattern, match string) bool {
	base, _ := doublestar.SplitPattern(filepath.ToSlash(pattern))
	rel := strings.TrimPrefix(filepath.ToSlash(match), base)
	if !strings.Contains(rel, "/.") && !strings.HasPrefix(rel, ".") {
		return false
	}
	for _, part := range strings.Split(filepath.ToSlash(pattern)[len(base):], "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return true
}

// excluded reports whether the job's exclude patterns match file: as a
// path under the jobs file's folder, or, for a pattern without a slash, as
// a file name wherever it is.
func (d *decoder) excluded(j *Job, file string) bool {
	for _, ex := range j.Exclude {
		if !strings.Contains(ex, "/") {
			if ok, _ := doublestar.Match(ex, filepath.Base(file)); ok {
				return true
			}
		}
		if ok, _ := doublestar.PathMatch(resolve(d.f.Dir, ex), file); ok {
			return true
		}
	}
	return false
}

// caseHint looks for files a glob misses only by case (*.PNG and a.png),
// and says how to match them.
func caseHint(full, pat string) string {
	var fold strings.Builder
	inClass := false
	for _, r := range full {
		lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r))
		switch {
		case r == '[':
			inClass = true
		case r == ']':
			inClass = false
		case !inClass && lo != up:
			fold.WriteString("[" + lo + up + "]")
			continue
		}
		fold.WriteRune(r)
	}
	matches, err := doublestar.FilepathGlob(fold.String())
	if err != nil || len(matches) == 0 {
		return ""
	}
	// Fold the case of the pattern's last part only: that is where the
	// extension is, and the rest of it matched as written.
	dir, last := path.Split(pat)
	var b strings.Builder
	for _, r := range last {
		if lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r)); lo != up && !insideClass(b.String()) {
			b.WriteString("[" + lo + up + "]")
		} else {
			b.WriteRune(r)
		}
	}
	return fmt.Sprintf(" (%s differs only in case; globs are case-sensitive: write %s to match either case, or list both spellings)", filepath.Base(matches[0]), dir+b.String())
}

// insideClass reports whether pattern s ends inside a [...] class.
func insideClass(s string) bool {
	return strings.LastIndexByte(s, '[') > strings.LastIndexByte(s, ']')
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

// notRegular describes a file that is not a regular one, or returns "" for
// a regular file: see kinds.NotRegular.
func notRegular(m os.FileMode) string { return kinds.NotRegular(m) }

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[{") }

// UnknownJobError is a job name asked for (ppool run --job) that the
// jobs file does not have.
type UnknownJobError struct {
	Name, Suggestion string
}

func (e *UnknownJobError) Error() string {
	return fmt.Sprintf("no job named %q%s", e.Name, e.Suggestion)
}

// Only returns the plan cut down to the named jobs and the jobs they run
// after, directly or not, in file order: what must run for those to run.
func (p *Plan) Only(names []string) (*Plan, error) {
	byName := map[string]*PlannedJob{}
	var all []string
	for _, j := range p.Jobs {
		byName[j.Name] = j
		all = append(all, j.Name)
	}
	keep := map[*PlannedJob]bool{}
	var add func(j *PlannedJob)
	add = func(j *PlannedJob) {
		if keep[j] {
			return
		}
		keep[j] = true
		for _, a := range j.After {
			add(a)
		}
	}
	for _, n := range names {
		j, ok := byName[n]
		if !ok {
			return nil, &UnknownJobError{Name: n, Suggestion: suggest(n, all)}
		}
		add(j)
	}
	out := &Plan{File: p.File}
	for _, j := range p.Jobs {
		if keep[j] {
			out.Jobs = append(out.Jobs, j)
			out.Tasks += len(j.Tasks)
		}
	}
	return out, nil
}
