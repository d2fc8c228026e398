package workerbin

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// fakeInfo is the build information of a ppool (or, with fewer deps, of a
// ppool-worker) built from a clean tree at revision abc.
func fakeInfo(deps ...*debug.Module) *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/ppool/ppool/cmd/ppool",
		Main:      debug.Module{Path: "github.com/ppool/ppool", Version: "v0.0.0-20261129212456-666765bec00d"},
		Deps:      deps,
		Settings: []debug.BuildSetting{
			{Key: "CGO_ENABLED", Value: "1"}, {Key: "GOARCH", Value: "amd64"}, {Key: "GOOS", Value: "linux"},
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "666765bec00d9e21e5eb98e26566a69b77316e52"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
}

var (
	msgpack = &debug.Module{Path: "github.com/vmihailenco/msgpack/v5", Version: "v5.4.1", Sum: "h1:cQri"}
	gonum   = &debug.Module{Path: "gonum.org/v1/gonum", Version: "v0.17.0", Sum: "h1:Vbpo"}
	nats    = &debug.Module{Path: "github.com/nats-io/nats-server/v2", Version: "v2.12.0", Sum: "h1:nats"}
)

func setting(bi *debug.BuildInfo, key, value string) *debug.BuildInfo {
	for i := range bi.Settings {
		if bi.Settings[i].Key == key {
			bi.Settings[i].Value = value
			return bi
		}
	}
	bi.Settings = append(bi.Settings, debug.BuildSetting{Key: key, Value: value})
	return bi
}

// TestChoose: ppool-worker beside ppool runs only when its build
// information proves it is the same code; anything else re-executes ppool
// and says why.
func TestChoose(t *testing.T) {
	self := fakeInfo(msgpack, gonum, nats)
	devel := func(bi *debug.BuildInfo) *debug.BuildInfo { bi.Main.Version = "(devel)"; return bi }
	cases := []struct {
		name    string
		worker  *debug.BuildInfo // nil: no ppool-worker beside ppool
		self    *debug.BuildInfo // default: self
		mode    os.FileMode      // default 0o755
		dir     bool             // ppool-worker is a folder
		readErr error
		want    string // "" for the match; else in the reason
	}{
		{name: "match", worker: fakeInfo(msgpack, gonum)},
		{name: "match, devel builds", worker: devel(fakeInfo(msgpack, gonum)), self: devel(fakeInfo(msgpack, gonum, nats))},
		{name: "no sibling", want: "no ppool-worker beside it"},
		{name: "not executable", worker: fakeInfo(msgpack), mode: 0o644, want: "is not executable"},
		{name: "a folder", worker: fakeInfo(msgpack), dir: true, want: "is not a regular file"},
		{name: "unreadable build info", worker: fakeInfo(msgpack), readErr: errors.New("not a Go binary"), want: "not a Go binary"},
		{name: "Go version differs", worker: func() *debug.BuildInfo { bi := fakeInfo(msgpack); bi.GoVersion = "go1.26.7"; return bi }(), want: "Go go1.26.7, not go1.26.8"},
		{name: "module version differs", worker: func() *debug.BuildInfo { bi := fakeInfo(msgpack); bi.Main.Version = "v0.1.0"; return bi }(), want: "module github.com/ppool/ppool v0.1.0"},
		{name: "dep version differs", worker: fakeInfo(&debug.Module{Path: gonum.Path, Version: "v0.16.0", Sum: gonum.Sum}), want: "gonum.org/v1/gonum v0.16.0"},
		{name: "dep sum differs", worker: fakeInfo(&debug.Module{Path: gonum.Path, Version: gonum.Version, Sum: "h1:other"}), want: "gonum.org/v1/gonum v0.17.0 (h1:other)"},
		{name: "dep ppool lacks", worker: fakeInfo(&debug.Module{Path: "example.com/extra", Version: "v1.0.0"}), want: "it links example.com/extra"},
		{name: "dep replaced", worker: fakeInfo(&debug.Module{Path: gonum.Path, Version: gonum.Version, Sum: gonum.Sum, Replace: &debug.Module{Path: "../gonum"}}), want: "replaced differently"},
		{name: "revision differs", worker: setting(fakeInfo(msgpack), "vcs.revision", "0123"), want: "vcs.revision"},
		{name: "worker's tree modified", worker: setting(fakeInfo(msgpack), "vcs.modified", "true"), want: "vcs.modified"},
		{name: "both trees modified", worker: setting(fakeInfo(msgpack), "vcs.modified", "true"), self: setting(fakeInfo(msgpack, nats), "vcs.modified", "true"), want: "uncommitted changes"},
		{name: "dirty version", worker: func() *debug.BuildInfo { bi := fakeInfo(msgpack); bi.Main.Version += "+dirty"; return bi }(),
			self: func() *debug.BuildInfo { bi := fakeInfo(msgpack); bi.Main.Version += "+dirty"; return bi }(), want: "uncommitted changes"},
		{name: "devel without a revision", worker: devel(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/ppool/ppool"}}),
			self: devel(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/ppool/ppool"}}), want: "without a VCS revision"},
		{name: "tags differ", worker: setting(fakeInfo(msgpack), "-tags", "nojpeg"), want: "-tags"},
		{name: "ldflags differ", worker: setting(fakeInfo(msgpack), "-ldflags", "-X main.x=1"), want: "-ldflags"},
		{name: "GOAMD64 differs", worker: setting(fakeInfo(msgpack), "GOAMD64", "v3"), want: "GOAMD64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ppool := filepath.Join(dir, "ppool")
			worker := filepath.Join(dir, Name)
			if c.worker != nil {
				mode := c.mode
				if mode == 0 {
					mode = 0o755
				}
				var err error
				if c.dir {
					err = os.Mkdir(worker, 0o755)
				} else {
					err = os.WriteFile(worker, []byte("#!/bin/false\n"), mode)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			info := c.self
			if info == nil {
				info = self
			}
			read := func(path string) (*debug.BuildInfo, error) {
				if path != worker {
					t.Errorf("read the build information of %s, want %s", path, worker)
				}
				return c.worker, c.readErr
			}
			got, err := choose("", ppool, info, read)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if got.Path != worker || got.Binary() != Name {
					t.Fatalf("chose %+v, want %s", got, worker)
				}
				return
			}
			if got.Path != "" || got.Binary() != "ppool" {
				t.Fatalf("chose %s, want ppool itself (%s)", got.Path, c.want)
			}
			if !strings.Contains(got.Why, c.want) {
				t.Errorf("why: %q, want it to say %q", got.Why, c.want)
			}
		})
	}
}

// TestChooseMode: PPOOL_WORKER_BINARY=self never runs ppool-worker, =slim
// fails where it would not be run, and anything else is an error.
func TestChooseMode(t *testing.T) {
	dir := t.TempDir()
	worker := filepath.Join(dir, Name)
	if err := os.WriteFile(worker, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ppool := filepath.Join(dir, "ppool")
	same := func(string) (*debug.BuildInfo, error) { return fakeInfo(msgpack), nil }
	self := fakeInfo(msgpack, nats)
	if c, err := choose("self", ppool, self, same); err != nil || c.Path != "" {
		t.Errorf("self: %+v, %v; want ppool", c, err)
	}
	for _, mode := range []string{"", "auto", "slim"} {
		if c, err := choose(mode, ppool, self, same); err != nil || c.Path != worker {
			t.Errorf("%q: %+v, %v; want %s", mode, c, err, worker)
		}
	}
	other := func(string) (*debug.BuildInfo, error) { return setting(fakeInfo(msgpack), "vcs.revision", "0123"), nil }
	if _, err := choose("slim", ppool, self, other); err == nil || !strings.Contains(err.Error(), "not built from the same code") {
		t.Errorf("slim with a different build: %v, want an error saying why", err)
	}
	if _, err := choose("slim", filepath.Join(t.TempDir(), "ppool"), self, same); err == nil || !strings.Contains(err.Error(), "no ppool-worker") {
		t.Errorf("slim with no ppool-worker: %v, want an error saying why", err)
	}
	if _, err := choose("fast", ppool, self, same); err == nil || !strings.Contains(err.Error(), EnvChoice) {
		t.Errorf("an unknown mode: %v, want an error naming %s", err, EnvChoice)
	}
}
