package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/ppool/ppool/jobs/kinds"
)

// File is a parsed jobs file.
type File struct {
	Path string // as given
	Dir  string // the folder relative paths resolve against
	Jobs []*Job
	src  []string // its lines, for error messages
}

// Job is one entry of the jobs list, checked against its kind.
type Job struct {
	Name    string
	Kind    *Kind
	Params  map[string]any    // every parameter of the kind, defaults filled in
	Inputs  map[string]Source // by slot name
	Count   int               // tasks to generate when inputs are generated
	Output  string            // output template, relative to the file's folder
	Timeout time.Duration
	Retries int
	Memory  uint64
	Workers int
	After   []string
	Worker  *WorkerSpec

	// Exclude drops the file inputs its globs match, whichever slot they
	// fill: one bad photo need not fail every run.
	Exclude []string

	pos        map[string]Pos // where each key was written, for later errors
	excludePos []Pos
	outputSet  bool
}

func (j *Job) hasFileInputs() bool {
	for _, src := range j.Inputs {
		if src.Gen == nil {
			return true
		}
	}
	return false
}

// listPos is where each entry of a string or list of strings is written.
func (d *decoder) listPos(n ast.Node) []Pos {
	if seq, ok := unwrap(n).(*ast.SequenceNode); ok {
		var out []Pos
		for _, v := range seq.Values {
			out = append(out, posOf(v))
		}
		return out
	}
	return []Pos{posOf(n)}
}

// WorkerSpec names a custom worker binary for a job.
type WorkerSpec struct {
	Command string
	Args    []string
	Env     map[string]string
	SHA256  string
	Plugin  bool // launched through hashicorp/go-plugin (workerproc/plugin.Main)
}

// Source is where one input slot's values come from: files (paths and
// globs), or generated values.
type Source struct {
	Patterns   []string // paths or globs, relative to the file's folder
	Gen        *Generator
	Pos        Pos   // where the input is written
	PatternPos []Pos // where each of Patterns is written
}

// patternPos is where Patterns[i] is written, for errors about that one
// path or glob in a list.
func (s Source) patternPos(i int) Pos {
	if i < len(s.PatternPos) {
		return s.PatternPos[i]
	}
	return s.Pos
}

// Pos is a place in the jobs file.
type Pos struct{ Line, Col int }

// Error is a problem in a jobs file, with where it is.
type Error struct {
	Path string
	Pos  Pos
	Msg  string
	Line string // the offending line, if known
}

func (e *Error) Error() string {
	if e.Pos.Line < 1 {
		// A position is a bug's absence, not a guess: say where the file
		// is rather than print a 0:0 that points nowhere.
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	s := fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Pos.Line, e.Pos.Col, e.Msg)
	if e.Line != "" {
		num := strconv.Itoa(e.Pos.Line)
		s += fmt.Sprintf("\n %s | %s\n %s | %s^", num, e.Line, strings.Repeat(" ", len(num)), caretPad(e.Line, e.Pos.Col))
	}
	return s
}

// caretPad returns the whitespace that puts a caret under column col,
// keeping the line's tabs so the caret lines up.
func caretPad(line string, col int) string {
	var b strings.Builder
	for i, r := range line {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// Errors is every problem found in a jobs file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

type decoder struct {
	f    *File
	errs Errors
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	d.errorAt(posOf(n), format, args...)
}

func (d *decoder) errorAt(p Pos, format string, args ...any) {
	e := &Error{Path: d.f.Path, Pos: p, Msg: fmt.Sprintf(format, args...)}
	if p.Line >= 1 && p.Line <= len(d.f.src) {
		e.Line = d.f.src[p.Line-1]
	}
	d.errs = append(d.errs, e)
}

func posOf(n ast.Node) Pos {
	// A mapping is where its first key is: where a reader looks for it.
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return posOf(m.Values[0].Key)
	}
	if m, ok := n.(*ast.MappingValueNode); ok {
		return posOf(m.Key)
	}
	if n == nil || n.GetToken() == nil {
		return Pos{1, 1}
	}
	p := n.GetToken().Position
	return Pos{p.Line, p.Column}
}

// ReadFile reads and checks a jobs file. Every problem is reported, each as
// file:line:col with the line shown; nothing has run yet when it fails.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().IsRegular() && st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: the jobs file is %d MiB; ppool reads jobs files of up to %d MiB (list inputs with globs, or generate them with count, rather than one by one)", path, st.Size()>>20, MaxFileSize>>20)
	}
	// Read at most one byte past the limit: a pipe or a device has no
	// size to check beforehand.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: the jobs file is over %d MiB, the most ppool reads", path, MaxFileSize>>20)
	}
	return Parse(path, data)
}

// MaxFileSize is the largest jobs file ppool reads. Parsing takes about a
// hundred times a file's size in memory; a real jobs file is a few KiB.
const MaxFileSize = 8 << 20

// MaxTasks is the most tasks a jobs file may expand to. Each costs the
// master a few hundred bytes from the start of the run to its end.
const MaxTasks = 1_000_000

// Parse checks a jobs file's contents; path names it in errors, and its
// folder is where relative paths resolve.
func Parse(path string, data []byte) (*File, error) {
	// A byte-order mark is legal at the start of a YAML stream (editors on
	// Windows write one); it is no part of the first key.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	f := &File{Path: path, Dir: dirOf(path), src: strings.Split(string(data), "\n")}
	d := &decoder{f: f}
	tree, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye interface {
			GetToken() *token.Token
			GetMessage() string
		}
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			d.errorAt(Pos{p.Line, p.Column}, "YAML syntax: %s", ye.GetMessage())
		} else {
			d.errorAt(Pos{1, 1}, "YAML syntax: %v", err)
		}
		return nil, d.errs
	}
	if len(tree.Docs) != 1 || tree.Docs[0].Body == nil {
		d.errorAt(Pos{1, 1}, "expected one YAML document with a \"jobs\" list")
		return nil, d.errs
	}
	body := d.resolveAliases(tree.Docs[0].Body, map[string]ast.Node{})
	if len(d.errs) == 0 {
		d.file(body)
	}
	if len(d.errs) == 0 {
		d.crossCheck()
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i].Pos, d.errs[j].Pos
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, d.errs
	}
	return f, nil
}

// resolveAliases replaces every alias (*name) with the value of its anchor
// (&name), in document order, so that the rest of the decoder sees plain
// values; errors about an aliased value point at where it is written, after
// its anchor. The value is shared, not copied: a chain of aliases costs
// nothing to build, and the decoder only descends as deep as a job goes.
func (d *decoder) resolveAliases(n ast.Node, anchors map[string]ast.Node) ast.Node {
	switch v := n.(type) {
	case *ast.AliasNode:
		name := v.Value.String()
		target, ok := anchors[name]
		if !ok {
			d.errorf(v, "alias *%s names no anchor &%s written before it", name, name)
			return &ast.NullNode{BaseNode: &ast.BaseNode{}, Token: v.GetToken()}
		}
		return target
	case *ast.AnchorNode:
		v.Value = d.resolveAliases(v.Value, anchors)
		anchors[v.Name.String()] = v.Value
	case *ast.TagNode:
		v.Value = d.resolveAliases(v.Value, anchors)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.resolveAliases(mv, anchors)
		}
	case *ast.MappingValueNode:
		v.Value = d.resolveAliases(v.Value, anchors)
	case *ast.SequenceNode:
		for i, e := range v.Values {
			v.Values[i] = d.resolveAliases(e, anchors)
		}
	}
	return n
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.CommentNode:
			return n
		default:
			return n
		}
	}
}

// mapping returns n's key/value pairs, reporting unknown and repeated keys.
func (d *decoder) mapping(n ast.Node, what string, known []string) (map[string]ast.Node, map[string]Pos, bool) {
	n = unwrap(n)
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.errorf(n, "%s must be a mapping of keys to values, not %s", what, describe(n))
		return nil, nil, false
	}
	out := map[string]ast.Node{}
	pos := map[string]Pos{}
	var merged []*ast.MappingValueNode
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			merged = append(merged, d.mergeValues(mv.Value)...)
			continue
		}
		key := mv.Key.String()
		if k, ok := unwrap(mv.Key).(*ast.StringNode); ok {
			key = k.Value
		}
		if _, dup := out[key]; dup {
			d.errorf(mv.Key, "%s: key %q appears twice", what, key)
			continue
		}
		if known != nil && !slices.Contains(known, key) && !(what == theFile && strings.HasPrefix(key, "x-")) {
			d.errorf(mv.Key, "unknown key %q in %s%s", key, what, suggest(key, known))
			continue
		}
		out[key] = mv.Value
		pos[key] = posOf(mv.Key)
	}
	// Merged keys (<<: *defaults) fill in what the mapping does not say
	// itself; of several merged mappings, the first to give a key wins.
	for _, mv := range merged {
		key := mv.Key.String()
		if k, ok := unwrap(mv.Key).(*ast.StringNode); ok {
			key = k.Value
		}
		if _, set := out[key]; set {
			continue
		}
		if known != nil && !slices.Contains(known, key) {
			d.errorf(mv.Key, "unknown key %q in %s (merged with <<)%s", key, what, suggest(key, known))
			continue
		}
		out[key] = mv.Value
		pos[key] = posOf(mv.Key)
	}
	return out, pos, true
}

// mergeValues returns the key/value pairs a merge key (<<) brings in: those
// of a mapping, or of each mapping in a list, nested merges included.
func (d *decoder) mergeValues(n ast.Node) []*ast.MappingValueNode {
	var out []*ast.MappingValueNode
	var add func(n ast.Node, depth int)
	add = func(n ast.Node, depth int) {
		switch m := unwrap(n).(type) {
		case *ast.MappingNode:
			var own, inner []*ast.MappingValueNode
			for _, mv := range m.Values {
				if _, ok := mv.Key.(*ast.MergeKeyNode); ok && depth < 8 {
					inner = append(inner, d.mergeValues(mv.Value)...)
				} else {
					own = append(own, mv)
				}
			}
			out = append(out, own...)
			out = append(out, inner...)
		case *ast.MappingValueNode:
			add(&ast.MappingNode{BaseNode: m.BaseNode, Values: []*ast.MappingValueNode{m}}, depth)
		case *ast.SequenceNode:
			if depth > 0 {
				d.errorf(n, "<< merges a mapping or a list of mappings, not a list of lists")
				return
			}
			for _, e := range m.Values {
				add(e, depth+1)
			}
		default:
			d.errorf(n, "<< merges a mapping (such as *defaults) or a list of them, not %s", describe(n))
		}
	}
	add(n, 0)
	return out
}

func suggest(key string, known []string) string { return closest(key, known, 3) }

// closest names the known word nearest key, fewer than within edits away,
// as " (did you mean "x"?)", or lists them all.
func closest(key string, known []string, within int) string {
	best, bestD := "", within
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

// SuggestKind says which registered kind a mistyped name probably means,
// as " (did you mean "image.blur"?)", or lists the kinds. Besides typos it
// knows a kind by its last part (blur for image.blur) and by a longer
// spelling of its name (matrix.multiplication for matrix.multiply).
func SuggestKind(name string) string {
	names := KindNames()
	lower := strings.ToLower(name)
	var hits []string
	for _, k := range names {
		dot := strings.LastIndexByte(k, '.')
		short := k[dot+1:]
		if strings.EqualFold(k, name) || strings.EqualFold(short, name) ||
			nearPrefix(lower, k, dot+4) || !strings.Contains(name, ".") && nearPrefix(lower, short, 3) {
			hits = append(hits, k)
		}
	}
	if len(hits) == 1 {
		return fmt.Sprintf(" (did you mean %q?)", hits[0])
	}
	if len(hits) > 1 {
		return " (did you mean one of " + strings.Join(hits, ", ") + "?)"
	}
	return closest(lower, names, max(3, len(name)/4+1))
}

// nearPrefix: a and b share at least least bytes at their start, and
// differ by at most three bytes' worth of ending.
func nearPrefix(a, b string, least int) bool {
	p := commonPrefix(a, b)
	return p >= least && p >= min(len(a), len(b))-3
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func describe(n ast.Node) string {
	switch unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode, nil:
		return "nothing (null)"
	}
	return "a " + unwrap(n).Type().String()
}

var jobKeys = []string{"name", "kind", "params", "inputs", "exclude", "count", "output", "timeout", "retries", "memory", "workers", "after", "worker"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// theFile names the top level in errors. Beside "jobs", it may hold keys
// starting with x- (as in Compose files), which ppool ignores: a place to
// write anchors (x-defaults: &defaults {...}) that jobs share with <<.
const theFile = "the jobs file"

func (d *decoder) file(body ast.Node) {
	top, _, ok := d.mapping(body, theFile, []string{"jobs"})
	if !ok {
		return
	}
	list, ok := top["jobs"]
	if !ok {
		d.errorf(body, "the jobs file has no \"jobs\" list")
		return
	}
	seq, ok := unwrap(list).(*ast.SequenceNode)
	if !ok {
		d.errorf(list, "\"jobs\" must be a list of jobs, not %s", describe(list))
		return
	}
	if len(seq.Values) == 0 {
		d.errorf(list, "\"jobs\" is empty: nothing to do")
	}
	for _, n := range seq.Values {
		if j := d.job(n); j != nil {
			d.f.Jobs = append(d.f.Jobs, j)
		}
	}
}

func (d *decoder) job(n ast.Node) *Job {
	m, pos, ok := d.mapping(n, "a job", jobKeys)
	if !ok {
		return nil
	}
	j := &Job{pos: pos, Count: 1, Params: map[string]any{}, Inputs: map[string]Source{}}
	if v, ok := m["name"]; ok {
		j.Name = d.str(v, "name")
		if j.Name != "" && !nameRE.MatchString(j.Name) {
			d.errorf(v, "job name %q: use letters, digits, '_', '.' and '-' only", j.Name)
		}
	} else {
		d.errorf(n, "a job needs a \"name\"")
	}
	kn, ok := m["kind"]
	if !ok {
		d.errorf(n, "job %q needs a \"kind\" (see `ppool kinds`)", j.Name)
		return nil
	}
	kind := d.str(kn, "kind")
	if kind == "" {
		return nil
	}
	k, found := kinds.LookupKind(kind)
	if !found {
		d.errorf(kn, "unknown kind %q%s", kind, SuggestKind(kind))
		return nil
	}
	j.Kind = k
	d.params(j, m["params"], n)
	if v, ok := m["count"]; ok {
		j.Count = d.int(v, "count", 1, 1_000_000)
	}
	d.inputs(j, m["inputs"], n)
	if v, ok := m["exclude"]; ok {
		j.Exclude = d.strings(v, "exclude")
		j.excludePos = d.listPos(v)
		if len(j.Inputs) == 0 || !j.hasFileInputs() {
			d.errorf(v, "job %q has no file inputs to exclude from", j.Name)
		}
		for i, p := range j.Exclude {
			if strings.TrimSpace(p) == "" {
				d.errorAt(j.excludePos[i], "an exclude pattern is empty")
			} else if !doublestar.ValidatePattern(p) {
				d.errorAt(j.excludePos[i], "exclude pattern %q is not a valid glob", p)
			}
		}
	}
	if v, ok := m["output"]; ok {
		j.Output = d.str(v, "output")
		j.outputSet = true
		switch {
		case j.Output == "":
			d.errorf(v, "\"output\" is empty")
		case strings.ContainsRune(j.Output, 0):
			d.errorf(v, "\"output\" contains a NUL character, which no file name may hold")
		}
	}
	if v, ok := m["timeout"]; ok {
		j.Timeout = d.duration(v, "timeout")
	}
	if v, ok := m["retries"]; ok {
		j.Retries = d.int(v, "retries", 0, 100)
	}
	if v, ok := m["memory"]; ok {
		j.Memory = d.bytes(v, "memory")
	}
	if v, ok := m["workers"]; ok {
		j.Workers = d.int(v, "workers", 1, 4096)
	}
	if v, ok := m["after"]; ok {
		j.After = d.strings(v, "after")
	}
	if v, ok := m["worker"]; ok {
		j.Worker = d.worker(v)
	} else if k.NeedsWorker {
		d.errorf(kn, "kind %s runs in a worker binary of your own: name it with worker: {command: ...}", k.Name)
	}
	return j
}

func (d *decoder) params(j *Job, n ast.Node, jobNode ast.Node) {
	var names []string
	for _, p := range j.Kind.Params {
		names = append(names, p.Name)
	}
	given := map[string]ast.Node{}
	if n != nil {
		if len(names) == 0 {
			d.errorf(n, "%s takes no params", j.Kind.Name)
			return
		}
		var ok bool
		if given, _, ok = d.mapping(n, "params of "+j.Kind.Name, names); !ok {
			return
		}
	}
	for _, p := range j.Kind.Params {
		v, ok := given[p.Name]
		if !ok {
			if p.Required {
				at := jobNode
				if n != nil {
					at = n
				}
				d.errorf(at, "%s needs the param %q (%s)", j.Kind.Name, p.Name, p.Doc)
			}
			j.Params[p.Name] = p.Default
			continue
		}
		j.Params[p.Name] = d.param(v, p)
	}
}

func (d *decoder) param(n ast.Node, p Param) any {
	what := "param " + p.Name
	// A value of the wrong type has already been reported: its stand-in
	// must not be reported again as out of range.
	errs := len(d.errs)
	switch p.Type {
	case TypeInt:
		v := d.int(n, what, math.MinInt32, math.MaxInt32)
		if len(d.errs) > errs {
			return v
		}
		if p.Min != nil && float64(v) < *p.Min || p.Max != nil && float64(v) > *p.Max {
			d.errorf(n, "%s = %d is out of range %s", what, v, p.RangeText())
		}
		return v
	case TypeFloat:
		v := d.float(n, what)
		if len(d.errs) > errs {
			return v
		}
		if p.Min != nil && v < *p.Min || p.Max != nil && v > *p.Max {
			d.errorf(n, "%s = %g is out of range %s", what, v, p.RangeText())
		}
		return v
	case TypeBool:
		b, ok := unwrap(n).(*ast.BoolNode)
		if !ok {
			d.errorf(n, "%s must be true or false, not %s", what, describe(n))
			return false
		}
		return b.Value
	case TypeString:
		s := d.str(n, what)
		if len(p.Choices) > 0 && !slices.Contains(p.Choices, s) {
			d.errorf(n, "%s = %q: choose one of %s", what, s, strings.Join(p.Choices, ", "))
		}
		return s
	}
	panic("jobs: param type " + string(p.Type))
}

func (d *decoder) str(n ast.Node, what string) string {
	switch v := unwrap(n).(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		return v.Value.Value
	}
	d.errorf(n, "%s must be a string, not %s", what, describe(n))
	return ""
}

func (d *decoder) strings(n ast.Node, what string) []string {
	if seq, ok := unwrap(n).(*ast.SequenceNode); ok {
		var out []string
		for _, v := range seq.Values {
			out = append(out, d.str(v, what+" entry"))
		}
		return out
	}
	if s := d.str(n, what); s != "" {
		return []string{s}
	}
	return nil
}

func (d *decoder) int(n ast.Node, what string, lo, hi int) int {
	v, ok := unwrap(n).(*ast.IntegerNode)
	if !ok {
		d.errorf(n, "%s must be a whole number, not %s", what, describe(n))
		return lo
	}
	var i int64
	switch x := v.Value.(type) {
	case int64:
		i = x
	case uint64:
		if x > math.MaxInt64 {
			i = math.MaxInt64
		} else {
			i = int64(x)
		}
	}
	if i < int64(lo) || i > int64(hi) {
		d.errorf(n, "%s = %d is out of range [%d, %d]", what, i, lo, hi)
		return lo
	}
	return int(i)
}

func (d *decoder) float(n ast.Node, what string) float64 {
	switch v := unwrap(n).(type) {
	case *ast.FloatNode:
		return v.Value
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return float64(x)
		case uint64:
			return float64(x)
		}
	}
	d.errorf(n, "%s must be a number, not %s", what, describe(n))
	return 0
}

func (d *decoder) duration(n ast.Node, what string) time.Duration {
	if iv, ok := unwrap(n).(*ast.IntegerNode); ok {
		d.errorf(n, "%s needs a unit: write e.g. \"%vs\" or \"500ms\"", what, iv.Value)
		return 0
	}
	s := d.str(n, what)
	if s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		d.errorf(n, "%s = %q is not a positive duration like \"30s\", \"2m\" or \"500ms\"", what, s)
		return 0
	}
	return v
}

// sizeRE splits a size into its number and its unit; units are matched
// without regard to case.
var sizeRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$`)

// sizeUnits are the units ParseSize knows, lower-cased. A bare letter and
// the IEC names (KiB, Ki) are powers of 1024, as memory is counted; the SI
// names with a B (kB, MB, GB, TB, PB) are powers of 1000, as disks are sold.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pi": 1 << 50, "pib": 1 << 50, "pb": 1e15,
}

// maxSize is the largest size ParseSize accepts: 1 EiB, beyond any
// machine's memory, and far from where a float64 loses whole bytes or a
// uint64 overflows.
const maxSize = 1 << 60

func (d *decoder) bytes(n ast.Node, what string) uint64 {
	var s string
	if iv, ok := unwrap(n).(*ast.IntegerNode); ok {
		s = fmt.Sprint(iv.Value)
	} else {
		s = d.str(n, what)
	}
	v, err := ParseSize(s)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
	}
	return v
}

// ParseSize parses a memory size such as "512MiB", "2GiB", "2GB", "1.5G",
// "512mb" or a plain number of bytes, in any case. K, M, G, T and P alone or
// with an i (KiB, Mi) are powers of 1024; kB, MB, GB, TB and PB are powers
// of 1000. Sizes under 1MiB (no worker runs in that) and over 1EiB are
// refused.
func ParseSize(s string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(s)
	unit, ok := 0.0, false
	if m != nil {
		unit, ok = sizeUnits[strings.ToLower(m[2])]
	}
	if !ok {
		return 0, fmt.Errorf("%q is not a size like \"512MiB\", \"2GiB\" or \"2GB\"", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v*unit > maxSize {
		return 0, fmt.Errorf("%q is too large: sizes go up to 1EiB", s)
	}
	v *= unit
	if v < 1<<20 {
		return 0, fmt.Errorf("%q is below 1MiB: no worker runs in that", s)
	}
	return uint64(v), nil
}

func (d *decoder) worker(n ast.Node) *WorkerSpec {
	m, _, ok := d.mapping(n, "worker", []string{"command", "args", "env", "sha256", "plugin"})
	if !ok {
		return nil
	}
	w := &WorkerSpec{}
	if v, ok := m["command"]; ok {
		w.Command = d.str(v, "worker command")
	} else {
		d.errorf(n, "worker needs a \"command\": the worker binary's path")
	}
	if v, ok := m["args"]; ok {
		w.Args = d.strings(v, "worker args")
	}
	if v, ok := m["env"]; ok {
		env, _, ok := d.mapping(v, "worker env", nil)
		if ok {
			w.Env = map[string]string{}
			for k, v := range env {
				if iv, isInt := unwrap(v).(*ast.IntegerNode); isInt {
					w.Env[k] = fmt.Sprint(iv.Value)
				} else {
					w.Env[k] = d.str(v, "worker env "+k)
				}
			}
		}
	}
	if v, ok := m["plugin"]; ok {
		b, isBool := unwrap(v).(*ast.BoolNode)
		if !isBool {
			d.errorf(v, "worker plugin must be true or false, not %s", describe(v))
		} else {
			w.Plugin = b.Value
		}
	}
	if v, ok := m["sha256"]; ok {
		w.SHA256 = strings.ToLower(d.str(v, "worker sha256"))
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(w.SHA256) {
			d.errorf(v, "worker sha256 must be 64 hex digits (`sha256sum BINARY` prints it)")
		}
	}
	return w
}

// inputs reads a job's inputs: for a kind with one input slot, a path, a
// glob, a list of them, or a generator; for several slots, a mapping of slot
// names to those.
func (d *decoder) inputs(j *Job, n ast.Node, jobNode ast.Node) {
	slots := j.Kind.Slots
	if n == nil {
		if len(slots) > 0 {
			d.errorf(jobNode, "job %q needs \"inputs\": %s", j.Name, slotsText(j.Kind))
		}
		return
	}
	if len(slots) == 0 {
		d.errorf(n, "%s makes its output from params alone and takes no inputs", j.Kind.Name)
		return
	}
	if len(slots) == 1 {
		j.Inputs[slots[0].Name] = d.source(n, slots[0], j)
		return
	}
	var names []string
	for _, s := range slots {
		names = append(names, s.Name)
	}
	m, _, ok := d.mapping(n, "inputs of "+j.Kind.Name, names)
	if !ok {
		return
	}
	for _, s := range slots {
		v, ok := m[s.Name]
		if !ok {
			d.errorf(n, "inputs of %s need %q (%s)", j.Kind.Name, s.Name, s.Doc)
			continue
		}
		j.Inputs[s.Name] = d.source(v, s, j)
	}
}

func slotsText(k *Kind) string {
	if len(k.Slots) == 1 {
		return k.Slots[0].Doc
	}
	var parts []string
	for _, s := range k.Slots {
		parts = append(parts, s.Name+" ("+s.Doc+")")
	}
	return "a mapping of " + strings.Join(parts, ", ")
}

func (d *decoder) source(n ast.Node, slot Slot, j *Job) Source {
	src := Source{Pos: posOf(n)}
	switch unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		if !slot.Generate {
			d.errorf(n, "input %q takes files (paths or globs), not generated values", slot.Name)
			return src
		}
		m, _, ok := d.mapping(n, "a generated input", []string{"random", "identity", "seed"})
		if !ok {
			return src
		}
		g := &Generator{}
		switch {
		case m["random"] != nil && m["identity"] != nil:
			d.errorf(n, "a generated input is either random or identity, not both")
		case m["random"] != nil:
			g.Kind = "random"
			g.Shape = d.shape(m["random"])
		case m["identity"] != nil:
			g.Kind = "identity"
			size := d.int(m["identity"], "identity size", 1, 1<<16)
			g.Shape = []int{size, size}
		default:
			d.errorf(n, "a generated input needs random: [rows, cols] or identity: n")
		}
		if v, ok := m["seed"]; ok {
			g.Seed = uint64(d.int(v, "seed", 0, math.MaxInt32))
		}
		src.Gen = g
	default:
		src.Patterns = d.strings(n, "input "+slot.Name)
		src.PatternPos = d.listPos(n)
		for i, p := range src.Patterns {
			switch {
			case strings.TrimSpace(p) == "":
				d.errorAt(src.patternPos(i), "input %q has an empty path", slot.Name)
			case strings.ContainsRune(p, 0):
				d.errorAt(src.patternPos(i), "input %q contains a NUL character, which no file name may hold", slot.Name)
			}
		}
	}
	return src
}

func (d *decoder) shape(n ast.Node) []int {
	seq, ok := unwrap(n).(*ast.SequenceNode)
	if !ok || len(seq.Values) != 2 {
		d.errorf(n, "a shape is [rows, cols]")
		return []int{1, 1}
	}
	return []int{d.int(seq.Values[0], "rows", 1, 1<<16), d.int(seq.Values[1], "cols", 1, 1<<16)}
}

// crossCheck checks what spans jobs: unique names, and after naming
// earlier jobs.
func (d *decoder) crossCheck() {
	seen := map[string]*Job{}
	for _, j := range d.f.Jobs {
		if prev, dup := seen[j.Name]; dup {
			d.errorAt(j.pos["name"], "job name %q is already used at line %d", j.Name, prev.pos["name"].Line)
		}
		seen[j.Name] = j
	}
	for _, j := range d.f.Jobs {
		for _, a := range j.After {
			dep, ok := seen[a]
			switch {
			case !ok:
				var names []string
				for n := range seen {
					names = append(names, n)
				}
				sort.Strings(names)
				d.errorAt(j.pos["after"], "job %q runs after %q, but there is no job of that name%s", j.Name, a, suggest(a, names))
			case dep == j:
				d.errorAt(j.pos["after"], "job %q cannot run after itself", j.Name)
			case dep.pos["name"].Line > j.pos["name"].Line:
				d.errorAt(j.pos["after"], "job %q runs after %q, which comes later in the file: list jobs in the order they run", j.Name, a)
			}
		}
	}
}

func dirOf(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "."
	}
	if i == 0 {
		return "/"
	}
	return path[:i]
}

// JobKeys returns the keys a job may have, whatever its kind, in the
// order the documentation lists them.
func JobKeys() []string { return slices.Clone(jobKeys) }
