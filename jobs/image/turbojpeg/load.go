//go:build (linux || darwin) && (amd64 || arm64)

package turbojpeg

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// openLibrary opens the first candidate that loads and has every symbol.
func openLibrary() (*library, error) {
	var errs []string
	for _, candidate := range candidates() {
		lib, err := open(candidate)
		if err == nil {
			return lib, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("libturbojpeg not found or not usable (%s); install it, e.g. apt-get install libturbojpeg0", strings.Join(errs, "; "))
}

// candidates returns the names Load tries, most likely first. A bare name
// is searched by the dynamic linker (LD_LIBRARY_PATH, the ld.so cache);
// Homebrew and MacPorts keep theirs outside the default path.
func candidates() []string {
	if runtime.GOOS == "darwin" {
		names := []string{"libturbojpeg.0.dylib", "libturbojpeg.dylib"}
		var paths []string
		for _, dir := range []string{"/opt/homebrew/opt/jpeg-turbo/lib", "/usr/local/opt/jpeg-turbo/lib", "/opt/local/lib"} {
			for _, name := range names {
				paths = append(paths, filepath.Join(dir, name))
			}
		}
		return append(names, paths...)
	}
	return []string{"libturbojpeg.so.0", "libturbojpeg.so"}
}

func open(candidate string) (*library, error) {
	if strings.ContainsRune(candidate, '/') {
		if _, err := os.Stat(candidate); err != nil {
			return nil, fmt.Errorf("%s: not found", candidate)
		}
	}
	handle, err := purego.Dlopen(candidate, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		if !strings.ContainsRune(candidate, '/') {
			return nil, fmt.Errorf("%s: not found", candidate)
		}
		return nil, fmt.Errorf("%s: %w", candidate, err)
	}
	lib := &library{path: candidate}
	for _, sym := range lib.symbols() {
		addr, err := purego.Dlsym(handle, sym.name)
		if err != nil || addr == 0 {
			_ = purego.Dlclose(handle)
			return nil, fmt.Errorf("%s has no symbol %s: it is not libjpeg-turbo's TurboJPEG 2.0 or later", candidate, sym.name)
		}
		purego.RegisterFunc(sym.fn, addr)
	}
	if err := lib.bindFactors(); err != nil {
		_ = purego.Dlclose(handle)
		return nil, err
	}
	if p := mappedPath("libturbojpeg"); p != "" {
		lib.path = p
	}
	return lib, nil
}

// mappedPath returns the file of a loaded library whose name starts with
// prefix, from /proc/self/maps; "" where there is none (as on macOS).
func mappedPath(prefix string) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 6 && strings.HasPrefix(filepath.Base(fields[5]), prefix) {
			return fields[5]
		}
	}
	return ""
}

// libraryVersion reads the version from the library's file. TurboJPEG 2.x
// has no function that tells it, but libjpeg-turbo puts the string
// "libjpeg-turbo version 2.1.5 (build ...)" into every build precisely so
// that a binary can be identified (jcmaster.c).
func libraryVersion(lib *library) string {
	if !strings.ContainsRune(lib.path, '/') {
		return ""
	}
	f, err := os.Open(lib.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return ""
	}
	const marker = "libjpeg-turbo version "
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		return ""
	}
	rest := data[i+len(marker):]
	end := bytes.IndexAny(rest, " \x00")
	if end <= 0 || end > 32 {
		return ""
	}
	return string(rest[:end])
}
