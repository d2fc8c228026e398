package cli_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/ppool/ppool/internal/cli"
	"github.com/ppool/ppool/internal/proctest"
)

// envAddressSpace makes the test binary run ppool (cli.Main on its
// arguments) with its address space limited to what it has mapped plus
// this many MiB.
const envAddressSpace = "PPOOL_TEST_ADDRESS_SPACE_MIB"

// limitedMain runs ppool under envAddressSpace's limit.
func limitedMain(mib string) int {
	extra, err := strconv.Atoi(mib)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", envAddressSpace, err)
		return 100
	}
	size, err := proctest.Status("VmSize")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	limit := uint64(size + int64(extra)<<20)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 100
	}
	// The crash this provokes must not leave a core file behind.
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 100
	}
	return cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
