package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/jobs"
)

func newKindsCmd(io *IO) *cobra.Command {
	return &cobra.Command{
		Use:   "kinds [KIND...]",
		Short: "List the job kinds, with their inputs, parameters, types and defaults",
		Example: `  ppool kinds
  ppool kinds image.blur matrix.multiply`,
		RunE: func(cmd *cobra.Command, args []string) error {
			list := jobs.Kinds()
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
}
