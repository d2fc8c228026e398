package jobs

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

// TestJournalGroupCommit: a burst of finished tasks costs a few fsyncs, not
// one each; every entry is in the file as soon as it is recorded (a killed
// run keeps it), and all are synced by close.
func TestJournalGroupCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.jsonl")
	j, err := openJournal(path, false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		out := filepath.Join(dir, "out", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
		if err := j.record(journalEntry{Job: "j", Task: "t", Output: out, Hash: "h", OutputHash: "o"}); err != nil {
			t.Fatal(err)
		}
	}
	if lines := countLines(t, path); lines != n {
		t.Errorf("%d lines in the journal before close, want %d", lines, n)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if j.syncs == 0 || j.syncs > n/10 {
		t.Errorf("%d fsyncs for %d entries, want at least one and far fewer than one each", j.syncs, n)
	}
	// And a second run, resuming, finds every entry.
	j2, err := openJournal(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.close()
	if len(j2.done) != n {
		t.Errorf("resume read %d entries, want %d", len(j2.done), n)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	return n
}
