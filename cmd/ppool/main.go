// Command ppool runs CPU-bound jobs on every core: see `ppool --help`.
package main

import (
	"os"

	"github.com/ppool/ppool/internal/cli"
	_ "github.com/ppool/ppool/internal/served" // the functions its pools call, as ppool-worker serves them
	"github.com/ppool/ppool/workerproc"
)

func main() {
	workerproc.Main() // a worker process serves tasks here and never returns
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
