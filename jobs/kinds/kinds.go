package kinds

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Kind is a kind of job: what its tasks take, what they make, and the code
// that makes it, which runs in worker processes.
type Kind struct {
	Name    string // e.g. "image.blur"
	Summary string // one line for `ppool kinds`
	// Version changes whenever the kind's output for the same inputs and
	// params changes, so that --resume redoes what was made by an older one.
	Version int
	Slots   []Slot  // named inputs; none for kinds that generate from params
	Params  []Param // every parameter, with its type and default
	// Outputs lists the output file extensions the kind writes, the first
	// being the default.
	Outputs []string
	// Backend, if set, names what computes the output (e.g. the BLAS
	// library), which goes into the resume hash.
	Backend func() string

	// Run makes one task's output (or, with t.Part set, one part's) in a
	// worker process, writing it atomically.
	Run func(ctx context.Context, t *Task) (*Outcome, error)
	// Split, if set, runs in the master when a task is about to start and
	// may divide it into parts that run in parallel (tiles of a large
	// product, strips of a large image). The plan must depend only on the
	// task, never on the number of workers. No parts means run whole.
	Split func(t *Task) ([]Part, error)
	// Merge assembles the parts' outputs into t.Output, in a worker.
	Merge func(ctx context.Context, t *Task) (*Outcome, error)
	// Call, if set, sends each task to a function of the job's own worker
	// binary instead of Run: it names the function and its argument.
	Call func(t *Task) (function string, arg any)
	// NeedsWorker: a job of this kind must name its worker binary.
	NeedsWorker bool
	// PartExt is the file extension of the parts' own outputs (default:
	// the output's), e.g. "png" so that strips of a JPEG stay lossless.
	PartExt string
}

// Slot is one named input of a kind.
type Slot struct {
	Name     string
	Doc      string
	Generate bool // also accepts generated matrices (random, identity)
}

// ParamType is the type of a kind's parameter.
type ParamType string

const (
	TypeInt    ParamType = "int"
	TypeFloat  ParamType = "float"
	TypeString ParamType = "string"
	TypeBool   ParamType = "bool"
)

// Param is one parameter of a kind.
type Param struct {
	Name     string
	Type     ParamType
	Default  any // int, float64, string or bool, matching Type
	Doc      string
	Required bool
	Min, Max *float64 // inclusive bounds for numbers
	Choices  []string // allowed values for strings
}

// RangeText renders the bounds of a number parameter, as "[lo, hi]".
func (p Param) RangeText() string {
	lo, hi := "-∞", "∞"
	if p.Min != nil {
		lo = formatNumber(*p.Min)
	}
	if p.Max != nil {
		hi = formatNumber(*p.Max)
	}
	return "[" + lo + ", " + hi + "]"
}

// Bound returns a pointer to v, for Param.Min and Param.Max.
func Bound(v float64) *float64 { return &v }

var kinds = map[string]*Kind{}

// Register adds a kind. Call it at package init (the kind's code must exist
// in worker processes too). It panics on a duplicate name or a malformed
// kind: both are programming errors.
func Register(k *Kind) {
	if _, dup := kinds[k.Name]; dup {
		panic("kinds: kind " + k.Name + " registered twice")
	}
	if k.Run == nil || len(k.Outputs) == 0 {
		panic("kinds: kind " + k.Name + " needs Run and Outputs")
	}
	if (k.Split == nil) != (k.Merge == nil) {
		panic("kinds: kind " + k.Name + " needs both Split and Merge, or neither")
	}
	for _, p := range k.Params {
		ok := false
		switch p.Type {
		case TypeInt:
			_, ok = p.Default.(int)
		case TypeFloat:
			_, ok = p.Default.(float64)
		case TypeString:
			_, ok = p.Default.(string)
		case TypeBool:
			_, ok = p.Default.(bool)
		}
		if !ok && !p.Required {
			panic(fmt.Sprintf("kinds: kind %s: param %s has default %#v, not of type %s", k.Name, p.Name, p.Default, p.Type))
		}
	}
	kinds[k.Name] = k
}

// Kinds returns every registered kind, sorted by name.
func Kinds() []*Kind {
	out := make([]*Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KindNames returns the registered kind names, sorted.
func KindNames() []string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Name)
	}
	return names
}

// LookupKind returns the kind of that name.
func LookupKind(name string) (*Kind, bool) {
	k, ok := kinds[name]
	return k, ok
}

// Task is one unit of work of a job, as a worker receives it.
type Task struct {
	Job    string           `msgpack:"job"`
	Kind   string           `msgpack:"kind"`
	Index  int              `msgpack:"index"`
	Name   string           `msgpack:"name"` // within the job: the input's stem, or the index
	Inputs map[string]Input `msgpack:"inputs"`
	Output string           `msgpack:"output"`
	Params map[string]any   `msgpack:"params"`
	Part   *Part            `msgpack:"part,omitempty"`  // set when running one part of a split task
	Parts  []Part           `msgpack:"parts,omitempty"` // set when merging
	Mode   string           `msgpack:"mode"`            // "run", "part" or "merge"
	// Memory is the job's memory: limit in bytes (0: none). A worker over
	// it is killed; kinds that can tell beforehand what a task needs (the
	// image kinds, from a file's header) refuse or plan by it instead.
	Memory uint64 `msgpack:"memory,omitempty"`
}

// Input is one input of a task: a file, or a generated matrix.
type Input struct {
	Path string     `msgpack:"path,omitempty"`
	Gen  *Generator `msgpack:"gen,omitempty"`
}

// Generator describes a generated matrix input.
type Generator struct {
	Kind  string // "random" or "identity"
	Shape []int  // rows, cols
	Seed  uint64
}

// Part is one piece of a split task: a block of rows and columns of the
// output, written to its own file.
type Part struct {
	Index int    `msgpack:"index"`
	Row0  int    `msgpack:"row0"`
	Row1  int    `msgpack:"row1"`
	Col0  int    `msgpack:"col0"`
	Col1  int    `msgpack:"col1"`
	Path  string `msgpack:"path"`
}

// Outcome is what a task reports besides its output file.
type Outcome struct {
	Output string         `msgpack:"output"`
	Info   map[string]any `msgpack:"info,omitempty"` // small facts for the results file (e.g. a matrix's stats)
	// Warnings about a result that stands but may mislead (an
	// ill-conditioned solve): logged by the master and carried in the
	// task's results line.
	Warnings []string `msgpack:"warnings,omitempty"`
	// The SHA-256 of the output and of each input file, for the journal:
	// computed in the worker, in parallel, rather than by the master on
	// its dispatch path. A kind may fill them in from the bytes it read
	// and wrote (with a Hasher), so that no file is read twice; the
	// jobs.task function hashes whatever it left out.
	OutputHash  string            `msgpack:"output_hash,omitempty"`
	InputHashes map[string]string `msgpack:"input_hashes,omitempty"`
}

// Int returns an int parameter.
func (t *Task) Int(name string) int {
	switch v := t.Params[name].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	case uint64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// Float returns a float parameter.
func (t *Task) Float(name string) float64 {
	switch v := t.Params[name].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	}
	return float64(t.Int(name))
}

// String returns a string parameter.
func (t *Task) String(name string) string {
	s, _ := t.Params[name].(string)
	return s
}

// Bool returns a bool parameter.
func (t *Task) Bool(name string) bool {
	b, _ := t.Params[name].(bool)
	return b
}

// Label names the task in messages: job/name.
func (t *Task) Label() string { return t.Job + "/" + t.Name }

// Describe renders a kind's parameters for `ppool kinds`.
func (k *Kind) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", k.Name, k.Summary)
	if len(k.Slots) == 0 {
		b.WriteString("  inputs: none (made from params)\n")
	}
	for _, s := range k.Slots {
		gen := ""
		if s.Generate {
			gen = "; or generated: {random: [rows, cols], seed: N} or {identity: N}"
		}
		fmt.Fprintf(&b, "  input %-10s %s%s\n", s.Name, s.Doc, gen)
	}
	for _, p := range k.Params {
		def := fmt.Sprintf("default %v", p.Default)
		if p.Required {
			def = "required"
		}
		extra := ""
		if p.Min != nil || p.Max != nil {
			extra = " " + p.RangeText()
		}
		if len(p.Choices) > 0 {
			extra = " one of " + strings.Join(p.Choices, ", ")
		}
		fmt.Fprintf(&b, "  param %-10s %-6s %s%s: %s\n", p.Name, p.Type, def, extra, p.Doc)
	}
	fmt.Fprintf(&b, "  output: .%s\n", strings.Join(k.Outputs, ", ."))
	return b.String()
}

func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
