package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ppool/ppool/internal/workerbin"
	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
	"github.com/ppool/ppool/jobs/matrix"
)

func newVersionCmd(io *IO) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ppool's version, protocol versions, Go runtime and the BLAS and JPEG backends",
		Example: "  ppool version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(io.Out, versionText())
			return nil
		},
	}
}

// versionText is what ppool version and ppool --version print: ppool's
// version and commit, the worker protocol versions and the Go runtime.
func versionText() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " (" + s.Value[:min(12, len(s.Value))] + ")"
			}
		}
	}
	workers := ""
	if c, err := workerbin.Choose(); err != nil {
		workers = err.Error()
	} else {
		workers = c.String()
	}
	return fmt.Sprintf("ppool %s%s\nworker protocol %s\nworkers: %s\n%s %s/%s\nmatrices: %s\nJPEG: %s\n",
		jobs.Version, rev, ipc.FormatVersions(ipc.Versions), workers, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		matrix.Backend(), turbojpeg.Backend())
}
