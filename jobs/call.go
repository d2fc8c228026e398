package jobs

import (
	"context"
	"errors"
)

// CallArgs is what a custom worker's function receives for each task of a
// "call" job: the input file, the output file it must write (atomically:
// write a temporary file beside it, then rename), and the job's arg.
type CallArgs struct {
	Job    string `msgpack:"job"`
	Task   string `msgpack:"task"`
	Input  string `msgpack:"input"`
	Output string `msgpack:"output"`
	Arg    string `msgpack:"arg"`
}

// The call kind runs a function of the job's own worker binary (its worker:
// key) on each input file.
func init() {
	Register(&Kind{
		Name:    "call",
		Summary: "call a function of the job's own worker binary (worker:) on each input file",
		Version: 1,
		Slots:   []Slot{{Name: "input", Doc: "files: a path, a glob, or a list of them"}},
		Params: []Param{
			{Name: "function", Type: TypeString, Required: true, Doc: "the worker function to call, with jobs.CallArgs {job, task, input, output, arg}"},
			{Name: "arg", Type: TypeString, Default: "", Doc: "passed to the function as is"},
		},
		Outputs:     []string{anyExt},
		NeedsWorker: true,
		Call: func(t *Task) (string, any) {
			return t.String("function"), CallArgs{Job: t.Job, Task: t.Name, Input: t.Inputs["input"].Path, Output: t.Output, Arg: t.String("arg")}
		},
		Run: func(ctx context.Context, t *Task) (*Outcome, error) {
			return nil, errors.New("call tasks run in the job's own worker binary")
		},
	})
}

// anyExt in Kind.Outputs accepts any output file name.
const anyExt = "*"
