package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/jobs"
)

// jobsSchema is what every job in a jobs file may say, whatever its kind.
const jobsSchema = `A jobs file is a mapping with one key, jobs: a list of jobs. Each job:

  name:     required; letters, digits, '_', '.' and '-'; unique
  kind:     required; one of the kinds below (ppool kinds)
  params:   the kind's parameters; defaults fill in the rest
  inputs:   for a kind with one input: a path, a glob, or a list of them
            (a matrix input may also be generated: {random: [rows, cols], seed: N}
            or {identity: N}); for several inputs, a mapping of input name to that
  count:    with generated inputs, how many tasks (seeds seed, seed+1, ...); default 1
  output:   output path template; placeholders {job} {index} {stem} {name} {ext}
  timeout:  per task, from when it starts running, e.g. 30s, 2m
  retries:  runs again after a crash, timeout or memory kill; default 0
  memory:   a worker over this while running the task is killed, e.g. 512MiB, 2GiB
  workers:  at most this many of the job's tasks at once
  after:    jobs (earlier in the file) this one waits for; it may read their outputs
  worker:   {command, args, env, sha256, plugin}: the job's own worker binary

Relative paths resolve against the jobs file's folder.
`

func newKindsCmd(io *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kinds [KIND...]",
		Short: "List the job kinds, with their inputs, parameters, types and defaults",
		Example: `  ppool kinds
  ppool kinds image.blur matrix.multiply
  ppool kinds --schema`,
		RunE: func(cmd *cobra.Command, args []string) error {
			list := jobs.Kinds()
			if all, _ := cmd.Flags().GetBool("schema"); all {
				fmt.Fprint(io.Out, jobsSchema)
				return nil
			}
			if len(args) > 0 {
				list = nil
				for _, name := range args {
					k, ok := jobs.LookupKind(name)
					if !ok {
						return usageError("unknown kind %q (ppool kinds lists them)", name)
					}
					list = append(list, k)
				}
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
	cmd.Flags().Bool("schema", false, "print the keys every job may have, whatever its kind")
	return cmd
}
