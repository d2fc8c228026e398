//go:build (linux || darwin) && (amd64 || arm64)

package openblas

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestOpenRejectsOtherLibraries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses glibc's soname")
	}
	_, err := open("libc.so.6")
	if err == nil || !strings.Contains(err.Error(), "libc.so.6 has no symbol openblas_set_num_threads: it is not an OpenBLAS build with CBLAS") {
		t.Fatalf("open(libc) error = %v", err)
	}
	_, err = open("/nonexistent/libopenblas.so.0")
	var notFound *notFoundError
	if !errors.As(err, &notFound) {
		t.Fatalf("open(missing) error = %v, want not found", err)
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "libopenblas.so.0")
	if err := os.WriteFile(junk, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = open(junk); err == nil || errors.As(err, &notFound) || !strings.Contains(err.Error(), junk) {
		t.Fatalf("open(junk) error = %v, want a load error naming the file", err)
	}
}

func TestLdConfigDirs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
	write("ld.so.conf", "# comment\ninclude conf.d/*.conf\n/opt/one/lib  # trailing\n\nrelative/ignored\n")
	write("conf.d/a.conf", "/opt/two/lib\ninclude "+filepath.Join(dir, "ld.so.conf")+"\n") // a loop, cut by depth
	got := ldConfigDirs(filepath.Join(dir, "ld.so.conf"), 0)
	if !slices.Contains(got, "/opt/one/lib") || !slices.Contains(got, "/opt/two/lib") || slices.Contains(got, "relative/ignored") {
		t.Fatalf("ldConfigDirs = %v", got)
	}
}

func TestCandidates(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	all := candidates()
	if len(all) == 0 || !strings.HasPrefix(all[0], "libopenblas") {
		t.Fatalf("candidates start %v, want the soname first", all[:min(3, len(all))])
	}
	t.Setenv(EnvLibrary, "/x/libopenblas.so")
	if got := candidates(); len(got) != 1 || got[0] != "/x/libopenblas.so" {
		t.Fatalf("with %s set, candidates = %v", EnvLibrary, got)
	}
}
