package codec_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyIPC: codec is on the bottom floor, beside ipc: of ppool's
// packages it imports ipc alone, so pool and workerproc can both use it.
func TestImportsOnlyIPC(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/ppool/ppool/ipc/codec").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case !strings.HasPrefix(dep, "github.com/ppool/ppool/"),
			dep == "github.com/ppool/ppool/ipc", dep == "github.com/ppool/ppool/ipc/codec":
		default:
			t.Errorf("ipc/codec imports %s", dep)
		}
	}
}
