package dist_test

import (
	"go/build"
	"strings"
	"testing"
)

// pool and jobs, and every package of this module they import, never
// import NATS or dist: the import rule is one-way.
func TestImportRule(t *testing.T) {
	const module = "github.com/ppool/ppool/"
	seen := map[string]bool{}
	var walk func(path string, from []string)
	walk = func(path string, from []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			chain := append(from[:len(from):len(from)], imp)
			if strings.Contains(imp, "nats-io") || imp == module+"dist" || strings.HasPrefix(imp, module+"dist/") {
				t.Errorf("import chain %s", strings.Join(chain, " → "))
			}
			if strings.HasPrefix(imp, module) {
				walk(imp, chain)
			}
		}
	}
	for _, root := range []string{module + "pool", module + "jobs", module + "jobs/image", module + "jobs/matrix"} {
		walk(root, []string{root})
	}
	if len(seen) < 5 {
		t.Fatalf("walked only %v", seen)
	}
}
