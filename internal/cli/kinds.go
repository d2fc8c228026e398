package cli

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/jobs"
)

// jobsKeys is what every job in a jobs file may say, whatever its kind.
const jobsKeys = `A jobs file is a mapping with one key, jobs: a list of jobs (and, if you
like, keys starting with x- that ppool ignores: a place for YAML anchors
that jobs share with <<: *name). Each job:

  name:     required; letters, digits, '_', '.' and '-'; unique
  kind:     required; one of the kinds (ppool kinds)
  params:   the kind's parameters; defaults fill in the rest
  inputs:   for a kind with one input: a path, a glob (** matches any depth
            of folders), or a list of them (a matrix input may also be
            generated: {random: [rows, cols], seed: N} or {identity: N});
            for several inputs, a mapping of input name to that
  exclude:  a glob or a list of globs: input files to leave out (a glob with
            no / matches file names anywhere)
  count:    with generated inputs, how many tasks (seeds seed, seed+1, ...); default 1
  output:   output path template; placeholders {job} {index} {stem} {name},
            {ext} (the input's extension, with its dot) and {dir} (the
            input's folder under the jobs file's)
  timeout:  per task, from when it starts running, e.g. 30s, 2m
  retries:  runs again after a crash, timeout or memory kill; default 0
  memory:   a worker over this while running the task is killed, e.g. 512MiB, 2GiB
  workers:  at most this many of the job's tasks at once
  after:    jobs (earlier in the file) this one waits for; it may read their outputs
  worker:   {command, args, env, sha256, plugin}: the job's own worker binary

Relative paths resolve against the jobs file's folder.`

func newKindsCmd(io *IO) *cobra.Command {
	var asJSON, schema bool
	cmd := &cobra.Command{
		Use:   "kinds [KIND...]",
		Short: "List the job kinds, with their inputs, parameters, types and defaults",
		Long:  "List the job kinds, with their inputs, parameters, types and defaults.\n\n" + jobsKeys,
		Example: `  ppool kinds
  ppool kinds image.blur matrix.multiply
  ppool kinds --json | jq '.[].name'
  ppool kinds --schema > ppool.schema.json   # then, atop a jobs file:
  # yaml-language-server: $schema=ppool.schema.json`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var out []cobra.Completion
			for _, k := range jobs.Kinds() {
				if !slices.Contains(args, k.Name) {
					out = append(out, cobra.CompletionWithDesc(k.Name, k.Summary))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if schema {
				if len(args) > 0 || asJSON {
					return usageError("--schema describes the whole jobs file: it takes no kinds and no --json")
				}
				return writeJSON(io, jobsSchema(jobs.Kinds()))
			}
			list := jobs.Kinds()
			if len(args) > 0 {
				list = nil
				for _, name := range args {
					k, ok := jobs.LookupKind(name)
					if !ok {
						return usageError("unknown kind %q%s", name, jobs.SuggestKind(name))
					}
					list = append(list, k)
				}
			}
			if asJSON {
				var out []kindJSON
				for _, k := range list {
					out = append(out, describeKind(k))
				}
				return writeJSON(io, out)
			}
			for i, k := range list {
				if i > 0 {
					fmt.Fprintln(io.Out)
				}
				fmt.Fprint(io.Out, k.Describe())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the kinds as a JSON list")
	cmd.Flags().BoolVar(&schema, "schema", false, "print a JSON Schema of the jobs file, for editors (YAML language server)")
	return cmd
}

func writeJSON(io *IO, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(io.Out, "%s\n", b)
	return err
}

// kindJSON is a kind as ppool kinds --json prints it.
type kindJSON struct {
	Name    string      `json:"name"`
	Summary string      `json:"summary"`
	Version int         `json:"version"`
	Inputs  []slotJSON  `json:"inputs"`
	Params  []paramJSON `json:"params"`
	Outputs []string    `json:"outputs"` // extensions, the default first; "*" for any
}

type slotJSON struct {
	Name      string `json:"name"`
	Doc       string `json:"doc"`
	Generated bool   `json:"generated"` // also takes {random: ...} or {identity: N}
}

type paramJSON struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Default  any      `json:"default,omitempty"`
	Required bool     `json:"required,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Choices  []string `json:"choices,omitempty"`
	Doc      string   `json:"doc"`
}

func describeKind(k *jobs.Kind) kindJSON {
	out := kindJSON{Name: k.Name, Summary: k.Summary, Version: k.Version, Outputs: k.Outputs, Inputs: []slotJSON{}, Params: []paramJSON{}}
	for _, s := range k.Slots {
		out.Inputs = append(out.Inputs, slotJSON{Name: s.Name, Doc: s.Doc, Generated: s.Generate})
	}
	for _, p := range k.Params {
		pj := paramJSON{Name: p.Name, Type: string(p.Type), Required: p.Required, Min: p.Min, Max: p.Max, Choices: p.Choices, Doc: p.Doc}
		if !p.Required {
			pj.Default = p.Default
		}
		out.Params = append(out.Params, pj)
	}
	return out
}
