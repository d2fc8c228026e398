package workerbin_test

import (
	"context"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ppool/ppool/internal/benchmark/benchfunc"
	"github.com/ppool/ppool/internal/benchmark/pipeecho"
	_ "github.com/ppool/ppool/internal/cli" // with served: every function ppool registers
	_ "github.com/ppool/ppool/internal/served"
	"github.com/ppool/ppool/internal/workerbin"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/kinds"
	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// buildWorker builds cmd/ppool-worker into a temporary folder and returns
// its path. Under the race detector it is a race build too, so that it
// reuses the packages the test's own build compiled.
func buildWorker(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	out, err := exec.Command(gobin, append(args, "github.com/ppool/ppool/cmd/ppool-worker")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, workerbin.Name)
}

// fromCleanTree stamps a build information with the same commit, as a
// build from a clean checkout has: go test and this test's go build stamp
// none, and without one no build can be proven equal.
func fromCleanTree(bi *debug.BuildInfo) *debug.BuildInfo {
	c := *bi
	c.Settings = append(slices.Clone(bi.Settings),
		debug.BuildSetting{Key: "vcs", Value: "git"},
		debug.BuildSetting{Key: "vcs.revision", Value: "666765bec00d9e21e5eb98e26566a69b77316e52"},
		debug.BuildSetting{Key: "vcs.modified", Value: "false"})
	return &c
}

// TestSlimWorker: a ppool-worker built from this code, beside a program
// built from it, is chosen (its real build information read and matched,
// module by module), and a pool given it runs its tasks in ppool-worker processes;
// every function ppool registers is served there, none unknown. Started
// by hand, ppool-worker says what it is and exits 2.
func TestSlimWorker(t *testing.T) {
	worker := buildWorker(t)
	read := func(path string) (*debug.BuildInfo, error) {
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return fromCleanTree(bi), nil
	}
	// ppool's build information, as ppool-worker's with the modules only
	// ppool links: a test binary records no modules to compare with.
	self, err := read(worker)
	if err != nil {
		t.Fatal(err)
	}
	self.Path = "github.com/ppool/ppool/cmd/ppool"
	self.Deps = append(slices.Clone(self.Deps), &debug.Module{Path: "github.com/nats-io/nats-server/v2", Version: "v2.12.0", Sum: "h1:nats"})
	choice, err := workerbin.ChooseFor("", filepath.Join(filepath.Dir(worker), "ppool"), self, read)
	if err != nil {
		t.Fatal(err)
	}
	if choice.Path != worker {
		t.Fatalf("chose %s, want %s", choice, worker)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pool.New(ctx, pool.Config{Workers: 1, SelfBinary: choice.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	if got, err := pool.Apply(ctx, p, benchfunc.Square, 7); err != nil || got != 49 {
		t.Fatalf("bench.square(7) = %d, %v; want 49", got, err)
	}
	pid := p.Stats().PerWorker[0].PID
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if exe != worker {
		t.Errorf("the worker runs %s, want %s", exe, worker)
	}
	// Every function ppool's pools can call. The argument fits none of
	// them (bar echo): an error from the function is fine, unknown is not.
	for _, name := range workerproc.Default.Names() {
		if strings.HasPrefix(name, "ppool.") {
			continue // the built-ins, in every worker
		}
		_, err := pool.Apply(ctx, p, workerproc.Remote[string, any](name), "not an argument")
		if errors.Is(err, pool.ErrUnknownFunction) {
			t.Errorf("ppool registers %s, but ppool-worker does not serve it: %v", name, err)
		}
	}
	// Every kind ppool's jobs.task runs (a "call" kind's tasks go to the
	// job's own binary instead). An empty merge: the worker looks the kind
	// up first, then fails for want of parts, making nothing.
	output := filepath.Join(t.TempDir(), "out")
	for _, k := range jobs.Kinds() {
		if k.Call != nil {
			continue
		}
		_, err := pool.Apply(ctx, p, kinds.TaskFunc, jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "merge", Output: output})
		if err != nil && strings.Contains(err.Error(), "no job kind") {
			t.Errorf("ppool has the kind %s, but ppool-worker does not: %v", k.Name, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(worker)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, workerproc.EnvWorker+"=") })
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("ppool-worker by hand: %v, want exit status 2", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "started by ppool") {
		t.Errorf("ppool-worker by hand says %q, want one line saying ppool starts it", out)
	}
	echoesForTheFloor(t, worker)
}

// echoesForTheFloor: started as ppool bench's pipe echo child, the worker
// binary echoes a frame from fd 3 to fd 4 and exits 0 at EOF, so that the
// floor can run the binary the workers run.
func echoesForTheFloor(t *testing.T, worker string) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(worker)
	cmd.Env = append(os.Environ(), pipeecho.Env+"=1")
	cmd.ExtraFiles = []*os.File{inR, outW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	frame := pipeecho.AppendFrame(nil, []byte("0123456789abcdef"))
	_, err = inW.Write(frame)
	inW.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(outR)
	if werr := cmd.Wait(); werr != nil || err != nil {
		t.Fatalf("echo child: read %v, exit %v", err, werr)
	}
	if string(got) != string(frame) {
		t.Errorf("echo child wrote %q, want %q", got, frame)
	}
}

// TestSlimWorkerLinksLittle: ppool-worker links no CLI, NATS, Prometheus,
// go-plugin or gRPC, and neither pool nor dist: only what its functions
// need.
func TestSlimWorkerLinksLittle(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/ppool/ppool/cmd/ppool-worker").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{"github.com/spf13/cobra", "github.com/nats-io/", "github.com/prometheus/", "github.com/hashicorp/go-plugin",
		"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/ppool/ppool/dist", "github.com/ppool/ppool/pool", "github.com/ppool/ppool/internal/cli"}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(dep, b) {
				t.Errorf("cmd/ppool-worker links %s", dep)
			}
		}
	}
}
