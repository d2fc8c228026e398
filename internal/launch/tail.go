package launch

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Tail keeps the first and the last few KiB of what a worker writes to
// stdout and stderr, for crash reports: the end says what the worker was
// doing, the start often why it died (a Go runtime writes "fatal error:
// ..." first, then a dump of every goroutine). It passes every byte on to
// its Cmd's Output. Its methods are safe for concurrent use.
type Tail struct {
	mu    sync.Mutex
	head  []byte // the first HeadSize bytes written
	tail  []byte // the last TailSize bytes (up to twice that, between trims) written after head
	total int64  // bytes written after head
	out   io.Writer
}

// The sizes of what a Tail keeps.
const (
	HeadSize = 1 << 10
	TailSize = 4 << 10
)

// Write keeps what it must of p and passes p on.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := p
	if n := min(HeadSize-len(t.head), len(rest)); n > 0 {
		t.head = append(t.head, rest[:n]...)
		rest = rest[n:]
	}
	t.total += int64(len(rest))
	t.tail = append(t.tail, rest...)
	if len(t.tail) > 2*TailSize {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-TailSize:]...)
	}
	if t.out != nil {
		_, _ = t.out.Write(p)
	}
	return len(p), nil
}

// Ends returns the first bytes written (up to HeadSize) and the last
// (up to TailSize, of all the output: they overlap head when little was
// written).
func (t *Tail) Ends() (head, last string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.tail
	if len(b) > TailSize {
		b = b[len(b)-TailSize:]
	}
	if t.total == int64(len(b)) { // nothing left out: the end runs into head
		all := append(t.head[:len(t.head):len(t.head)], b...)
		b = all[max(0, len(all)-TailSize):]
	}
	return string(t.head), string(b)
}

// String returns the start and the end of the output, with a line saying
// how many bytes between them were left out, if any were.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.tail
	if len(b) > TailSize {
		b = b[len(b)-TailSize:]
	}
	omitted := t.total - int64(len(b))
	if omitted == 0 {
		return string(t.head) + string(b)
	}
	sep := "\n"
	if bytes.HasSuffix(t.head, []byte("\n")) {
		sep = ""
	}
	return fmt.Sprintf("%s%s… %d bytes omitted …\n%s", t.head, sep, omitted, b)
}

// Lines returns a writer that calls logLine with each line written to it,
// without its newline; a line longer than TailSize is passed on in parts.
// It is not safe for concurrent use: a Tail serialises its writes.
func Lines(logLine func(string)) io.Writer { return &lineWriter{logLine: logLine} }

type lineWriter struct {
	partial []byte
	logLine func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.logLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > TailSize { // a very long line: log what we have
		w.logLine(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}
