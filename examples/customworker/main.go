// Command customworker is a ppool worker binary with functions of its own,
// launched through go-plugin. Build it, check it, run jobs on it:
//
//	go build -o examples/customworker/customworker ./examples/customworker
//	go run ./cmd/ppool worker check examples/customworker/customworker
//	go run ./cmd/ppool run examples/customworker/jobs.yaml
//
// Its functions take jobs.CallArgs, as "call" jobs send them: an input
// file, the output file to write, and the job's arg.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/plugin"
)

var registry = workerproc.NewRegistry()

// wordfreq counts the words of a text file and writes the most frequent
// ones as JSON; arg is how many (default 10).
var _ = workerproc.RegisterIn(registry, "wordfreq", func(ctx context.Context, a jobs.CallArgs) (int, error) {
	text, err := os.ReadFile(a.Input)
	if err != nil {
		return 0, err
	}
	top := 10
	if a.Arg != "" {
		if _, err := fmt.Sscan(a.Arg, &top); err != nil || top < 1 {
			return 0, fmt.Errorf("arg %q: want a positive number of words", a.Arg)
		}
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(string(text)), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' }) {
		counts[w]++
	}
	type entry struct {
		Word  string `json:"word"`
		Count int    `json:"count"`
	}
	var list []entry
	for w, n := range counts {
		list = append(list, entry{w, n})
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].Count > list[j].Count || list[i].Count == list[j].Count && list[i].Word < list[j].Word
	})
	out, _ := json.MarshalIndent(map[string]any{"file": filepath.Base(a.Input), "distinct": len(list), "top": list[:min(top, len(list))]}, "", "  ")
	return len(list), writeAtomic(a.Output, append(out, '\n'))
})

// shout upper-cases a text file.
var _ = workerproc.RegisterIn(registry, "shout", func(ctx context.Context, a jobs.CallArgs) (int, error) {
	text, err := os.ReadFile(a.Input)
	if err != nil {
		return 0, err
	}
	return len(text), writeAtomic(a.Output, []byte(strings.ToUpper(string(text))))
})

// writeAtomic writes a file whole or not at all.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func main() { plugin.Main(registry) }
