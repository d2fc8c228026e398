//go:build (linux || darwin) && (amd64 || arm64)

package openblas

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// library holds the handle of the opened shared library and the C functions
// bound to Go function values. Integer arguments are passed as Go int: on
// amd64 and arm64 every integer argument fills a 64-bit register or stack
// slot, so the same binding serves OpenBLAS builds with 32- and 64-bit
// integers; callers keep values within the int32 range (see fitsInt32).
type library struct {
	path   string
	handle uintptr

	setNumThreads func(n int32)
	getNumThreads func() int32
	getConfig     func() string
	getCorename   func() string

	dgemm  func(order, transA, transB, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
	dtrsm  func(order, side, uplo, transA, diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int)
	dtrmm  func(order, side, uplo, transA, diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int)
	dsyrk  func(order, uplo, trans, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int)
	dsyr2k func(order, uplo, trans, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// symbols lists every C function Load binds; a library missing any of them
// is not used.
func (lib *library) symbols() []struct {
	name string
	fn   any
} {
	return []struct {
		name string
		fn   any
	}{
		{"openblas_set_num_threads", &lib.setNumThreads},
		{"openblas_get_num_threads", &lib.getNumThreads},
		{"openblas_get_config", &lib.getConfig},
		{"openblas_get_corename", &lib.getCorename},
		{"cblas_dgemm", &lib.dgemm},
		{"cblas_dtrsm", &lib.dtrsm},
		{"cblas_dtrmm", &lib.dtrmm},
		{"cblas_dsyrk", &lib.dsyrk},
		{"cblas_dsyr2k", &lib.dsyr2k},
	}
}

var loadOnce = sync.OnceValues(load)

// Load finds and opens OpenBLAS, binds the routines Implementation uses, and
// returns the implementation. The library is opened once per process: later
// calls return the same value and error.
func Load() (*Implementation, error) {
	return loadOnce()
}

func load() (*Implementation, error) {
	var tried []string
	var firstErr error
	for _, candidate := range candidates() {
		lib, err := open(candidate)
		if err == nil {
			setThreads(lib)
			impl := &Implementation{lib: lib}
			if fns, err := bindLAPACK(lib); err == nil {
				impl.lapack = &LAPACK{fns: fns}
			} else {
				impl.lapackErr = err
			}
			return impl, nil
		}
		var notFound *notFoundError
		if errors.As(err, &notFound) {
			tried = append(tried, candidate)
			continue
		}
		// The file exists but is not a usable OpenBLAS: remember why, and
		// keep looking, since another candidate may be.
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("openblas: library not found (tried %s); install it, e.g. apt-get install libopenblas0-pthread", strings.Join(tried, ", "))
}

type notFoundError struct{ path string }

func (e *notFoundError) Error() string { return e.path + ": not found" }

// open loads one candidate: a bare name is searched by the dynamic linker, a
// path is opened as is.
func open(candidate string) (*library, error) {
	if strings.ContainsRune(candidate, '/') {
		if _, err := os.Stat(candidate); err != nil {
			return nil, &notFoundError{candidate}
		}
	}
	// RTLD_LOCAL keeps OpenBLAS's many symbols (its own LAPACK, its BLAS
	// under the Fortran names) out of the global namespace.
	handle, err := purego.Dlopen(candidate, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		if !strings.ContainsRune(candidate, '/') {
			return nil, &notFoundError{candidate}
		}
		return nil, fmt.Errorf("openblas: %s: %w", candidate, err)
	}
	lib := &library{path: candidate, handle: handle}
	for _, sym := range lib.symbols() {
		addr, err := purego.Dlsym(handle, sym.name)
		if err != nil || addr == 0 {
			_ = purego.Dlclose(handle)
			return nil, fmt.Errorf("openblas: %s has no symbol %s: it is not an OpenBLAS build with CBLAS", candidate, sym.name)
		}
		purego.RegisterFunc(sym.fn, addr)
	}
	return lib, nil
}

// setThreads honours the thread count the environment gave OpenBLAS when it
// loaded, and otherwise makes it single-threaded: one worker per core.
func setThreads(lib *library) {
	for _, name := range []string{"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"} {
		if os.Getenv(name) != "" {
			return
		}
	}
	lib.setNumThreads(1)
}

// EnvLibrary names the environment variable that, when set, gives the
// only file or library name Load tries.
const EnvLibrary = "PPOOL_OPENBLAS"

// candidates returns the names and paths Load tries, most likely first.
func candidates() []string {
	if path := os.Getenv(EnvLibrary); path != "" {
		return []string{path}
	}
	if runtime.GOOS == "darwin" {
		names := []string{"libopenblas.0.dylib", "libopenblas.dylib"}
		dirs := []string{"/opt/homebrew/opt/openblas/lib", "/usr/local/opt/openblas/lib", "/opt/local/lib"}
		return append(names, joinAll(dirs, names)...)
	}
	// libopenblasp is Fedora's name for the pthread build; libopenblas.so
	// is the development symlink.
	names := []string{"libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so"}
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	dirs := []string{
		"/usr/lib/" + triplet + "/openblas-pthread",
		"/usr/lib/" + triplet + "/openblas-openmp",
		"/usr/lib/" + triplet + "/openblas-serial",
		"/usr/lib/" + triplet,
		"/lib/" + triplet,
		"/usr/lib64",
		"/usr/lib",
		"/usr/local/lib",
		"/usr/local/lib64",
		"/opt/OpenBLAS/lib",
	}
	dirs = append(dirs, ldConfigDirs("/etc/ld.so.conf", 0)...)
	return append(names, joinAll(dedupe(dirs), names)...)
}

func joinAll(dirs, names []string) []string {
	var paths []string
	for _, dir := range dirs {
		for _, name := range names {
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	return paths
}

func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ldConfigDirs returns the directories an ld.so.conf file lists, following
// its include lines (glob patterns) a few levels deep.
func ldConfigDirs(path string, depth int) []string {
	if depth > 4 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line, _, _ := strings.Cut(scanner.Text(), "#")
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "include"):
			pattern := strings.TrimSpace(strings.TrimPrefix(line, "include"))
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), pattern)
			}
			matches, _ := filepath.Glob(pattern)
			for _, m := range matches {
				dirs = append(dirs, ldConfigDirs(m, depth+1)...)
			}
		case filepath.IsAbs(line):
			dirs = append(dirs, line)
		}
	}
	return dirs
}
