package ipc

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocol versions this build speaks, oldest first.
var Versions = []int{1}

// Environment variables set by the master when it starts a worker.
const (
	// EnvProtocol lists the protocol versions the master speaks, comma
	// separated ("1"). The worker picks the highest one it also speaks.
	EnvProtocol = "PPOOL_PROTOCOL"
	// EnvMaxFrame is the largest frame payload, in bytes, either side may send.
	EnvMaxFrame = "PPOOL_MAX_FRAME"
	// EnvThreads is the worker's thread budget (default 1).
	EnvThreads = "PPOOL_THREADS"
)

// File descriptors of the two pipes in the worker process.
const (
	FromMasterFD = 3 // master → worker: tasks, cancels, shutdown
	ToMasterFD   = 4 // worker → master: hello, results, progress
)

// Kind is a message type, the "t" key of every frame.
type Kind uint8

const (
	KindInvalid  Kind = iota
	KindHello         // worker → master, first frame: versions, pid, functions
	KindTask          // master → worker: run a function
	KindResult        // worker → master: a task's value or error
	KindCancel        // master → worker: stop a task
	KindProgress      // worker → master: optional progress of a running task
	KindShutdown      // master → worker: exit once the running task is done
)

var kindNames = [...]string{"invalid", "hello", "task", "result", "cancel", "progress", "shutdown"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func kindOf(name []byte) Kind {
	for i, n := range kindNames[1:] {
		if string(name) == n {
			return Kind(i + 1)
		}
	}
	return KindInvalid
}

// Error types a worker reports in a result's "e" map. A worker may use other
// types too (e.g. a Python exception class name); the master passes them on.
const (
	ErrTypeError           = "error"            // the function returned an error
	ErrTypePanic           = "panic"            // the function panicked; Traceback has the stack
	ErrTypeUnknownFunction = "unknown_function" // the worker serves no such function
	ErrTypeBadArguments    = "bad_arguments"    // the arguments did not decode
	ErrTypeCancelled       = "cancelled"        // the task was cancelled before or while running
	ErrTypeInit            = "init"             // the worker's initializer failed
)

// Error is a failure reported by the worker for one task.
type Error struct {
	Type      string // one of the ErrType constants, or a language's own class name
	Message   string
	Traceback string // the worker-side stack, if any
}

// Msg is one decoded frame. Which fields are set depends on Kind:
//
//	hello:    Versions ("vs"), PID, Functions ("fns"), Runtime ("rt")
//	task:     ID, Function, Args, Timeout, Batch
//	result:   ID, Value or Err, Duration, Batch
//	cancel:   ID
//	progress: ID, Done, Total
//	shutdown: (nothing)
//
// Args and Value alias the frame they were decoded from.
type Msg struct {
	Kind      Kind
	ID        uint64
	Function  string
	Args      []byte // raw msgpack value
	Value     []byte // raw msgpack value
	Err       *Error
	Timeout   time.Duration
	Duration  time.Duration
	Batch     bool // Args is an array of argument values; Value an array of item results
	Versions  []int
	PID       int
	Functions []string
	Runtime   string
	Done      uint64
	Total     uint64
}

// Decode parses one frame payload. It validates the payload first, so it is
// safe on bytes from anywhere.
func Decode(p []byte) (Msg, error) {
	// No Validate walk first: every read below checks what it reads
	// against the bytes there are, and every value taken whole (a, v,
	// unknown keys) goes through skip, which is Validate for that value.
	// A batch's values would otherwise be walked three times.
	var m Msg
	c := cursor{b: p}
	n, err := c.mapLen()
	if err != nil {
		return m, fmt.Errorf("ipc: frame is not a map: %w", err)
	}
	for range n {
		key, err := c.str()
		if err != nil {
			return m, fmt.Errorf("ipc: map key: %w", err)
		}
		if err := m.field(&c, key); err != nil {
			return m, fmt.Errorf("ipc: key %q: %w", key, err)
		}
	}
	if c.off != len(p) {
		return m, fmt.Errorf("msgpack: %d trailing bytes after the value", len(p)-c.off)
	}
	if m.Kind == KindInvalid {
		return m, fmt.Errorf("ipc: frame has no known message type (key \"t\")")
	}
	return m, nil
}

func (m *Msg) field(c *cursor, key []byte) error {
	var err error
	switch string(key) {
	case "t":
		var s []byte
		if s, err = c.str(); err == nil {
			if m.Kind = kindOf(s); m.Kind == KindInvalid {
				return fmt.Errorf("unknown message type %q", s)
			}
		}
	case "id":
		m.ID, err = c.uint()
	case "fn":
		var s []byte
		if s, err = c.str(); err == nil {
			m.Function = intern(s)
		}
	case "a":
		m.Args, err = c.raw()
	case "v":
		m.Value, err = c.raw()
	case "vs":
		m.Versions, err = decodeInts(c)
	case "e":
		if c.isNil() {
			_, err = c.raw()
		} else {
			m.Err, err = decodeError(c)
		}
	case "to":
		var v uint64
		v, err = c.uint()
		m.Timeout = time.Duration(v)
	case "d":
		var v uint64
		v, err = c.uint()
		m.Duration = time.Duration(v)
	case "b":
		m.Batch, err = c.bool()
	case "pid":
		var v int64
		v, err = c.int()
		m.PID = int(v)
	case "fns":
		m.Functions, err = decodeStrings(c)
	case "rt":
		var s []byte
		if s, err = c.str(); err == nil {
			m.Runtime = string(s)
		}
	case "done":
		m.Done, err = c.uint()
	case "total":
		m.Total, err = c.uint()
	default:
		_, err = c.raw() // unknown keys are ignored: newer peers may add fields
	}
	return err
}

func decodeInts(c *cursor) ([]int, error) {
	n, err := c.arrayLen()
	if err != nil {
		return nil, err
	}
	if n > len(c.b)-c.off { // each takes a byte at least
		return nil, errShort
	}
	out := make([]int, 0, n)
	for range n {
		v, err := c.int()
		if err != nil {
			return nil, err
		}
		out = append(out, int(v))
	}
	return out, nil
}

func decodeStrings(c *cursor) ([]string, error) {
	n, err := c.arrayLen()
	if err != nil {
		return nil, err
	}
	if n > len(c.b)-c.off {
		return nil, errShort
	}
	out := make([]string, 0, n)
	for range n {
		s, err := c.str()
		if err != nil {
			return nil, err
		}
		out = append(out, string(s))
	}
	return out, nil
}

func decodeError(c *cursor) (*Error, error) {
	n, err := c.mapLen()
	if err != nil {
		return nil, err
	}
	e := &Error{}
	for range n {
		key, err := c.str()
		if err != nil {
			return nil, err
		}
		var dst *string
		switch string(key) {
		case "type":
			dst = &e.Type
		case "msg":
			dst = &e.Message
		case "tb":
			dst = &e.Traceback
		default:
			// Inside the error map, one level down: "e" as a whole
			// nests at most MaxDepth levels, like any value.
			if _, err := c.rawWithin(MaxDepth - 1); err != nil {
				return nil, err
			}
			continue
		}
		if c.isNil() { // nil is as good as absent
			c.off++
			continue
		}
		s, err := c.str()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		*dst = string(s)
	}
	return e, nil
}

// ItemResult is one element of a batch result: a value or an error.
type ItemResult struct {
	Value []byte // raw msgpack, aliases the frame
	Err   *Error
}

// DecodeBatch splits a batch result's Value into its items.
func DecodeBatch(v []byte) ([]ItemResult, error) {
	r, err := NewBatchReader(v)
	if err != nil {
		return nil, err
	}
	out := make([]ItemResult, r.Len())
	for i := range out {
		if out[i], err = r.Next(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BatchReader walks a batch result's items one at a time: DecodeBatch
// without a slice of them all.
type BatchReader struct{ array }

// NewBatchReader reads the array header of a batch result's Value.
func NewBatchReader(v []byte) (*BatchReader, error) {
	r := new(BatchReader)
	if err := r.open(v); err != nil {
		return nil, err
	}
	return r, nil
}

// Next decodes the next item; after the last, it returns io.EOF.
func (r *BatchReader) Next() (ItemResult, error) {
	var it ItemResult
	if r.i >= r.n {
		return it, io.EOF
	}
	i := r.i
	r.i++
	c := &r.c
	// Most items are {"v": value}, as workers write them.
	if b := c.b[c.off:]; len(b) > 3 && b[0] == 0x81 && b[1] == 0xa1 && b[2] == 'v' {
		c.off += 3
		v, err := c.raw()
		if err != nil {
			return it, fmt.Errorf("batch item %d: %w", i, err)
		}
		it.Value = v
		return it, nil
	}
	m, err := c.mapLen()
	if err != nil {
		return it, fmt.Errorf("batch item %d: %w", i, err)
	}
	for range m {
		key, err := c.str()
		if err != nil {
			return it, fmt.Errorf("batch item %d: %w", i, err)
		}
		switch string(key) {
		case "v":
			it.Value, err = c.raw()
		case "e":
			if c.isNil() {
				_, err = c.raw()
			} else {
				it.Err, err = decodeError(c)
			}
		default:
			_, err = c.raw()
		}
		if err != nil {
			return it, fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return it, nil
}

// Encoders. Each Append function appends one whole frame, length prefix
// included, to b and returns the extended slice.

func beginFrame(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// EndFrame fills in the length prefix of the frame that starts at b[start].
func EndFrame(b []byte, start int) []byte { return EndFrameTail(b, start, 0) }

// EndFrameTail fills in the length prefix of the frame that starts at
// b[start] and goes on with tail more bytes, which the caller writes after
// b from where they are instead of copying them into it.
func EndFrameTail(b []byte, start, tail int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4+tail))
	return b
}

// AppendHello appends a hello frame.
func AppendHello(b []byte, versions []int, pid int, functions []string, runtime string) []byte {
	b, s := beginFrame(b)
	b = appendMapLen(b, 5)
	b = appendStr(b, "t")
	b = appendStr(b, "hello")
	b = appendStr(b, "vs")
	b = appendArrayLen(b, len(versions))
	for _, v := range versions {
		b = appendUint(b, uint64(v))
	}
	b = appendStr(b, "pid")
	b = appendUint(b, uint64(pid))
	b = appendStr(b, "fns")
	b = appendArrayLen(b, len(functions))
	for _, f := range functions {
		b = appendStr(b, f)
	}
	b = appendStr(b, "rt")
	b = appendStr(b, runtime)
	return EndFrame(b, s)
}

// AppendTask appends a task frame. args is the encoded msgpack argument (for
// a batch, an array of them). A zero timeout means none.
func AppendTask(b []byte, id uint64, function string, args []byte, timeout time.Duration, batch bool) []byte {
	b, s := AppendTaskHead(b, id, function, timeout, batch)
	return EndFrame(append(b, args...), s)
}

// AppendTaskHead appends a task frame up to its arguments, so the caller can
// encode the arguments straight into b (one copy of a large payload, not
// two), then finish the frame with EndFrame(b, start).
func AppendTaskHead(b []byte, id uint64, function string, timeout time.Duration, batch bool) (_ []byte, start int) {
	b, s := beginFrame(b)
	n := 4
	if timeout > 0 {
		n++
	}
	if batch {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(b, "t")
	b = appendStr(b, "task")
	b = appendStr(b, "id")
	b = appendUint(b, id)
	b = appendStr(b, "fn")
	b = appendStr(b, function)
	if timeout > 0 {
		b = appendStr(b, "to")
		b = appendUint(b, uint64(timeout))
	}
	if batch {
		b = appendStr(b, "b")
		b = appendBool(b, true)
	}
	return appendStr(b, "a"), s
}

// AppendResult appends a result frame carrying either value (raw msgpack) or
// err.
func AppendResult(b []byte, id uint64, value []byte, err *Error, d time.Duration, batch bool) []byte {
	if err == nil {
		b, s := AppendResultHead(b, id, d, batch)
		if value == nil {
			return EndFrame(AppendNil(b), s)
		}
		return EndFrame(append(b, value...), s)
	}
	b, s := beginFrame(b)
	b = appendResultKeys(b, id, d, batch)
	b = appendStr(b, "e")
	return EndFrame(AppendError(b, err), s)
}

// AppendResultHead appends a successful result frame up to its value, for
// the caller to encode the value into b and finish with EndFrame.
func AppendResultHead(b []byte, id uint64, d time.Duration, batch bool) (_ []byte, start int) {
	b, s := beginFrame(b)
	b = appendResultKeys(b, id, d, batch)
	return appendStr(b, "v"), s
}

func appendResultKeys(b []byte, id uint64, d time.Duration, batch bool) []byte {
	n := 4
	if batch {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(b, "t")
	b = appendStr(b, "result")
	b = appendStr(b, "id")
	b = appendUint(b, id)
	b = appendStr(b, "d")
	b = appendUint(b, uint64(max(d, 0)))
	if batch {
		b = appendStr(b, "b")
		b = appendBool(b, true)
	}
	return b
}

// AppendError appends err as the msgpack map {"type", "msg", "tb"}.
func AppendError(b []byte, e *Error) []byte {
	n := 2
	if e.Traceback != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(b, "type")
	b = appendStr(b, e.Type)
	b = appendStr(b, "msg")
	b = appendStr(b, e.Message)
	if e.Traceback != "" {
		b = appendStr(b, "tb")
		b = appendStr(b, e.Traceback)
	}
	return b
}

// AppendItem appends one element of a batch result: {"v": value} or {"e": err}.
func AppendItem(b []byte, value []byte, err *Error) []byte {
	b = appendMapLen(b, 1)
	if err != nil {
		b = appendStr(b, "e")
		return AppendError(b, err)
	}
	b = appendStr(b, "v")
	if value == nil {
		return AppendNil(b)
	}
	return append(b, value...)
}

// AppendCancel appends a cancel frame.
func AppendCancel(b []byte, id uint64) []byte {
	b, s := beginFrame(b)
	b = appendMapLen(b, 2)
	b = appendStr(b, "t")
	b = appendStr(b, "cancel")
	b = appendStr(b, "id")
	b = appendUint(b, id)
	return EndFrame(b, s)
}

// AppendProgress appends a progress frame.
func AppendProgress(b []byte, id, done, total uint64) []byte {
	b, s := beginFrame(b)
	b = appendMapLen(b, 4)
	b = appendStr(b, "t")
	b = appendStr(b, "progress")
	b = appendStr(b, "id")
	b = appendUint(b, id)
	b = appendStr(b, "done")
	b = appendUint(b, done)
	b = appendStr(b, "total")
	b = appendUint(b, total)
	return EndFrame(b, s)
}

// AppendShutdown appends a shutdown frame.
func AppendShutdown(b []byte) []byte {
	b, s := beginFrame(b)
	b = appendMapLen(b, 1)
	b = appendStr(b, "t")
	b = appendStr(b, "shutdown")
	return EndFrame(b, s)
}

// Negotiate picks the highest version both sides speak. The error names both
// lists, so whoever reads it knows which side to upgrade.
func Negotiate(master, worker []int) (int, error) {
	best := 0
	for _, v := range worker {
		if v > best && slices.Contains(master, v) {
			best = v
		}
	}
	if best == 0 {
		return 0, &VersionError{Master: master, Worker: worker}
	}
	return best, nil
}

// VersionError reports that master and worker share no protocol version.
type VersionError struct {
	Master, Worker []int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("no common protocol version: ppool speaks %s, the worker speaks %s",
		FormatVersions(e.Master), FormatVersions(e.Worker))
}

// FormatVersions renders versions as "1,2", the form of EnvProtocol.
func FormatVersions(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// ParseVersions parses the EnvProtocol form.
func ParseVersions(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("ipc: bad protocol version %q in %q", f, s)
		}
		out = append(out, v)
	}
	return out, nil
}

// Function names repeat in every task frame; interning them saves a
// worker an allocation per task. The table is bounded: past its size,
// names are simply copied.
var (
	internMu  sync.RWMutex
	internTab = map[string]string{}
)

const internMax = 4096

func intern(b []byte) string {
	internMu.RLock()
	s, ok := internTab[string(b)]
	internMu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	internMu.Lock()
	if len(internTab) < internMax {
		internTab[s] = s
	}
	internMu.Unlock()
	return s
}
