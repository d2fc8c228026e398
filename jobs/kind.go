package jobs

import (
	"github.com/ppool/ppool/jobs/kinds"
)

// The kinds' registry and the types a worker sees live in package kinds,
// which links no pool, so that a worker binary can serve every kind
// without the master's machinery (cmd/ppool-worker). These are the same
// names, here for the master's side and for existing code.

// Kind is a kind of job: see kinds.Kind.
type Kind = kinds.Kind

// Slot is one named input of a kind.
type Slot = kinds.Slot

// ParamType is the type of a kind's parameter.
type ParamType = kinds.ParamType

// The parameter types.
const (
	TypeInt    = kinds.TypeInt
	TypeFloat  = kinds.TypeFloat
	TypeString = kinds.TypeString
	TypeBool   = kinds.TypeBool
)

// Param is one parameter of a kind.
type Param = kinds.Param

// Task is one unit of work of a job, as a worker receives it.
type Task = kinds.Task

// Input is one input of a task: a file, or a generated matrix.
type Input = kinds.Input

// Generator describes a generated matrix input.
type Generator = kinds.Generator

// Part is one piece of a split task: see kinds.Part.
type Part = kinds.Part

// Outcome is what a task reports besides its output file.
type Outcome = kinds.Outcome

// A Hasher computes a file's journal hash from its bytes as a kind writes
// or reads them: see kinds.Hasher.
type Hasher = kinds.Hasher

// NewHasher returns a Hasher that has seen no bytes.
func NewHasher() *Hasher { return kinds.NewHasher() }

// Bound returns a pointer to v, for Param.Min and Param.Max.
func Bound(v float64) *float64 { return kinds.Bound(v) }

// Register adds a kind: see kinds.Register.
func Register(k *Kind) { kinds.Register(k) }

// Kinds returns every registered kind, sorted by name.
func Kinds() []*Kind { return kinds.Kinds() }

// KindNames returns the registered kind names, sorted.
func KindNames() []string { return kinds.KindNames() }

// LookupKind returns the kind of that name.
func LookupKind(name string) (*Kind, bool) { return kinds.LookupKind(name) }
