// Package workerbin decides which binary runs as the workers of ppool's own
// pools (ppool run, ppool bench, ppool agent): ppool-worker, the slim
// worker binary beside ppool, or ppool itself, re-executed.
//
// ppool links a CLI, a NATS client and server, Prometheus and go-plugin;
// each worker process would run all their package inits and map the whole
// binary to serve a handful of functions. ppool-worker links only those
// functions (package served). It is run only when it was provably built
// from the same code as the running ppool: its build information names
// the same Go, the same main module version, the same versions and sums of
// every module it links and the same build settings, and, for a build
// from a source tree, the same VCS revision with no uncommitted changes.
// Anything less, and ppool re-executes itself, as it always could.
package workerbin

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Name is the slim worker binary's file name, looked for beside ppool.
const Name = "ppool-worker"

// EnvChoice overrides the choice: "self" always re-executes ppool; "slim"
// requires ppool-worker and makes ppool fail, saying why, where it would
// not be run; empty (or "auto") runs it when it matches.
const EnvChoice = "PPOOL_WORKER_BINARY"

// Choice is the binary ppool's own pools run as their workers.
type Choice struct {
	// Path is the ppool-worker to run, or "" for ppool itself.
	Path string
	// Why says why ppool-worker is not run, when Path is "".
	Why string
}

// Binary names the worker binary: "ppool-worker" or "ppool".
func (c Choice) Binary() string {
	if c.Path != "" {
		return Name
	}
	return "ppool"
}

// String is the choice as ppool version prints it.
func (c Choice) String() string {
	if c.Path != "" {
		return Name + " (" + c.Path + ")"
	}
	return "ppool, re-executed (" + c.Why + ")"
}

// Choose makes the choice for the running program, once per process, and
// returns it, or an error if EnvChoice is not a known value or says slim
// and ppool-worker cannot be run.
var Choose = sync.OnceValues(func() (Choice, error) {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return choose(os.Getenv(EnvChoice), "", nil, nil)
	}
	info, _ := debug.ReadBuildInfo()
	return choose(os.Getenv(EnvChoice), self, info, buildinfo.ReadFile)
})

// choose is Choose with its inputs given: mode is EnvChoice's value, self
// the running binary's resolved path ("" if unknown) and info its build
// information (nil if none); readInfo reads a binary's.
func choose(mode, self string, info *debug.BuildInfo, readInfo func(string) (*debug.BuildInfo, error)) (Choice, error) {
	switch mode {
	case "self":
		return Choice{Why: EnvChoice + "=self"}, nil
	case "", "auto", "slim":
	default:
		return Choice{}, fmt.Errorf("%s=%q: want self, slim or auto", EnvChoice, mode)
	}
	path, why := sibling(self, info, readInfo)
	if path == "" && mode == "slim" {
		return Choice{}, fmt.Errorf("%s=slim, but %s cannot be run: %s", EnvChoice, Name, why)
	}
	return Choice{Path: path, Why: why}, nil
}

// sibling returns the path of a ppool-worker beside self built from the
// same code, or "" and why there is none.
func sibling(self string, info *debug.BuildInfo, readInfo func(string) (*debug.BuildInfo, error)) (string, string) {
	if self == "" {
		return "", "this program's path is unknown"
	}
	if info == nil {
		return "", "this program has no build information"
	}
	path := filepath.Join(filepath.Dir(self), Name)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", "no " + Name + " beside it"
	case err != nil:
		return "", err.Error()
	case !st.Mode().IsRegular():
		return "", path + " is not a regular file"
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return "", path + " is not executable: " + err.Error()
	}
	other, err := readInfo(path)
	if err != nil {
		return "", "cannot read " + path + "'s build information: " + err.Error()
	}
	if err := sameBuild(info, other); err != nil {
		return "", path + " is not built from the same code: " + err.Error()
	}
	return path, ""
}

// settings are the build settings that must agree: what was built, for
// which machine, with which tags, experiments and linker flags (-X can set
// a variable). -race and -gcflags are left out: they change how the code
// runs, not what it does.
var settings = []string{"GOOS", "GOARCH", "GOAMD64", "GOARM64", "CGO_ENABLED", "GOEXPERIMENT", "-tags", "-ldflags", "vcs", "vcs.revision", "vcs.modified"}

// sameBuild returns nil if worker (the ppool-worker's build information)
// is provably built from the same code as self (ppool's), or what differs.
// Every module the worker links must be one ppool links, at the same
// version and sum; ppool links more (the worker's list is a subset).
func sameBuild(self, worker *debug.BuildInfo) error {
	if self.GoVersion != worker.GoVersion {
		return fmt.Errorf("Go %s, not %s", worker.GoVersion, self.GoVersion)
	}
	if self.Main.Path != worker.Main.Path || self.Main.Version != worker.Main.Version || self.Main.Sum != worker.Main.Sum {
		return fmt.Errorf("module %s %s, not %s %s", worker.Main.Path, worker.Main.Version, self.Main.Path, self.Main.Version)
	}
	s, w := settingsOf(self), settingsOf(worker)
	for _, k := range settings {
		if s[k] != w[k] {
			return fmt.Errorf("build setting %s is %q, not %q", k, w[k], s[k])
		}
	}
	// A module version names its code; a build from a source tree is named
	// only by its commit, and only if nothing was changed since.
	if s["vcs.revision"] == "" && (self.Main.Version == "" || self.Main.Version == "(devel)") {
		return errors.New("a build from source without a VCS revision cannot be proven equal")
	}
	if s["vcs.modified"] == "true" || strings.HasSuffix(self.Main.Version, "+dirty") {
		return errors.New("built from a tree with uncommitted changes, which cannot be proven equal")
	}
	deps := map[string]*debug.Module{}
	for _, d := range self.Deps {
		deps[d.Path] = d
	}
	for _, d := range worker.Deps {
		m := deps[d.Path]
		switch {
		case m == nil:
			return fmt.Errorf("it links %s, which ppool does not", d.Path)
		case m.Version != d.Version || m.Sum != d.Sum:
			return fmt.Errorf("%s %s (%s), not %s (%s)", d.Path, d.Version, d.Sum, m.Version, m.Sum)
		case (m.Replace == nil) != (d.Replace == nil) ||
			m.Replace != nil && (m.Replace.Path != d.Replace.Path || m.Replace.Version != d.Replace.Version || m.Replace.Sum != d.Replace.Sum):
			return fmt.Errorf("%s is replaced differently", d.Path)
		case d.Replace != nil && d.Replace.Version == "":
			return fmt.Errorf("%s is replaced by the folder %s, whose code has no version", d.Path, d.Replace.Path)
		}
	}
	return nil
}

func settingsOf(bi *debug.BuildInfo) map[string]string {
	m := map[string]string{}
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}
