package cli

import "github.com/ppool/ppool/internal/workerbin"

// selfBinary is the binary ppool's own pools run as their workers in place
// of ppool itself: the ppool-worker beside it if it was built from the same
// code, else "" (ppool, re-executed). A PPOOL_WORKER_BINARY that cannot be
// honoured is a usage error.
func selfBinary() (string, error) {
	c, err := workerbin.Choose()
	if err != nil {
		return "", usageError("%v", err)
	}
	return c.Path, nil
}
