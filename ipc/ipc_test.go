package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frames returns one frame of every message type, for round trips and as
// fuzz seeds.
func frames(t testing.TB) map[string][]byte {
	args := mustMarshal(t, map[string]any{"x": []float64{1, 2.5}, "name": "a"})
	batch := AppendArrayHeader(nil, 2)
	batch = append(batch, mustMarshal(t, 1)...)
	batch = append(batch, mustMarshal(t, 2)...)
	items := AppendArrayHeader(nil, 2)
	items = AppendItem(items, mustMarshal(t, 4), nil)
	items = AppendItem(items, nil, &Error{Type: ErrTypePanic, Message: "boom", Traceback: "goroutine 1"})
	return map[string][]byte{
		"hello":    AppendHello(nil, []int{1}, 4242, []string{"square", "sleep"}, "go1.26"),
		"task":     AppendTask(nil, 7, "square", args, 200*time.Millisecond, false),
		"batch":    AppendTask(nil, 8, "square", batch, 0, true),
		"result":   AppendResult(nil, 7, mustMarshal(t, 49), nil, time.Microsecond, false),
		"error":    AppendResult(nil, 9, nil, &Error{Type: ErrTypeUnknownFunction, Message: "no such function \"cube\""}, 0, false),
		"items":    AppendResult(nil, 8, items, nil, 0, true),
		"cancel":   AppendCancel(nil, 7),
		"progress": AppendProgress(nil, 7, 3, 10),
		"shutdown": AppendShutdown(nil),
	}
}

func TestRoundTrip(t *testing.T) {
	f := frames(t)
	want := map[string]Msg{
		"hello":    {Kind: KindHello, Versions: []int{1}, PID: 4242, Functions: []string{"square", "sleep"}, Runtime: "go1.26"},
		"task":     {Kind: KindTask, ID: 7, Function: "square", Timeout: 200 * time.Millisecond},
		"batch":    {Kind: KindTask, ID: 8, Function: "square", Batch: true},
		"result":   {Kind: KindResult, ID: 7, Duration: time.Microsecond},
		"error":    {Kind: KindResult, ID: 9, Err: &Error{Type: ErrTypeUnknownFunction, Message: "no such function \"cube\""}},
		"items":    {Kind: KindResult, ID: 8, Batch: true},
		"cancel":   {Kind: KindCancel, ID: 7},
		"progress": {Kind: KindProgress, ID: 7, Done: 3, Total: 10},
		"shutdown": {Kind: KindShutdown},
	}
	for name, frame := range f {
		t.Run(name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(frame), 64, 0)
			m, err := r.ReadMsg()
			if err != nil {
				t.Fatal(err)
			}
			got := m
			got.Args, got.Value = nil, nil
			if !reflect.DeepEqual(got, want[name]) {
				t.Errorf("decoded %+v\nwant    %+v", got, want[name])
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Errorf("after the only frame: %v, want io.EOF", err)
			}
		})
	}

	m, _ := Decode(f["task"][4:])
	var args struct {
		X    []float64 `msgpack:"x"`
		Name string    `msgpack:"name"`
	}
	if err := msgpack.Unmarshal(m.Args, &args); err != nil || args.Name != "a" || len(args.X) != 2 || args.X[1] != 2.5 {
		t.Errorf("task args decoded to %+v, %v", args, err)
	}
	m, _ = Decode(f["items"][4:])
	items, err := DecodeBatch(m.Value)
	if err != nil || len(items) != 2 || items[0].Err != nil || items[1].Err == nil || items[1].Err.Traceback != "goroutine 1" {
		t.Fatalf("batch items %+v, %v", items, err)
	}
	var four int
	if err := msgpack.Unmarshal(items[0].Value, &four); err != nil || four != 4 {
		t.Errorf("item 0 = %d, %v", four, err)
	}
	m, _ = Decode(f["batch"][4:])
	elems, err := SplitArray(m.Args)
	if err != nil || len(elems) != 2 {
		t.Fatalf("batch args %v, %v", elems, err)
	}
}

// TestCraftedArrayHeader keeps the header that made msgpack v5.4.1 try to
// allocate ~34 GB: an array32 claiming 0xFFFFFFFF float64s in a 5-byte value.
func TestCraftedArrayHeader(t *testing.T) {
	crafted := []byte{0xdd, 0xff, 0xff, 0xff, 0xff}
	if err := Validate(crafted); err == nil {
		t.Fatal("Validate accepted an array header claiming 4 billion elements in 5 bytes")
	}
	// The same header as a task's arguments, inside an otherwise valid frame.
	frame := AppendTask(nil, 1, "sum", crafted, 0, false)
	_, err := NewReader(bytes.NewReader(frame), 64, 0).ReadMsg()
	if err == nil {
		t.Fatal("a task frame with a lying array header decoded")
	}
	// A lying header nested in a map, and a lying str/bin/map length.
	for _, b := range [][]byte{
		{0x81, 0xa1, 'x', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xcb},
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		{0xc6, 0x10, 0x00, 0x00, 0x00},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if err := Validate(b); err == nil {
			t.Errorf("Validate accepted % x", b)
		}
	}
}

func TestFrameLimit(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<31)
	_, err := NewReader(bytes.NewReader(hdr[:]), 64, 1<<20).ReadFrame()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("2 GiB frame: %v, want ErrFrameTooLarge", err)
	}
	frame := AppendShutdown(nil)
	_, err = NewReader(bytes.NewReader(frame[:len(frame)-1]), 64, 0).ReadFrame()
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestNestingLimit(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, MaxDepth+1)
	deep = append(deep, 0xc0)
	if err := Validate(deep); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("nesting %d deep: %v", MaxDepth+1, err)
	}
	ok := append(bytes.Repeat([]byte{0x91}, MaxDepth-1), 0xc0)
	if err := Validate(ok); err != nil {
		t.Fatalf("nesting %d deep: %v", MaxDepth-1, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string][]byte{
		"not a map":       mustMarshal(t, []int{1}),
		"no type":         mustMarshal(t, map[string]any{"id": 1}),
		"unknown type":    mustMarshal(t, map[string]any{"t": "frobnicate"}),
		"negative id":     mustMarshal(t, map[string]any{"t": "task", "id": -1}),
		"id wrong type":   mustMarshal(t, map[string]any{"t": "task", "id": "seven"}),
		"trailing bytes":  append(AppendShutdown(nil)[4:], 0xc0),
		"reserved byte":   {0x81, 0xa1, 't', 0xc1},
		"empty":           {},
		"versions string": mustMarshal(t, map[string]any{"t": "hello", "vs": "1"}),
	}
	for name, p := range cases {
		if m, err := Decode(p); err == nil {
			t.Errorf("%s: decoded to %+v, want an error", name, m)
		}
	}
}

func TestNegotiate(t *testing.T) {
	if v, err := Negotiate([]int{1, 2}, []int{2, 3}); v != 2 || err != nil {
		t.Errorf("Negotiate([1 2], [2 3]) = %d, %v", v, err)
	}
	_, err := Negotiate([]int{1}, []int{2})
	var ve *VersionError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "ppool speaks 1, the worker speaks 2") {
		t.Errorf("Negotiate([1], [2]) error = %v", err)
	}
	if vs, err := ParseVersions("1, 2"); err != nil || !reflect.DeepEqual(vs, []int{1, 2}) {
		t.Errorf("ParseVersions = %v, %v", vs, err)
	}
	for _, bad := range []string{"", "x", "0", "1,,2"} {
		if _, err := ParseVersions(bad); err == nil {
			t.Errorf("ParseVersions(%q) succeeded", bad)
		}
	}
}

func BenchmarkTaskEncodeDecode(b *testing.B) {
	args := mustMarshal(b, []byte("0123456789abcdef"))
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendTask(buf[:0], 12345, "echo", args, 0, false)
		if _, err := Decode(buf[4:]); err != nil {
			b.Fatal(err)
		}
	}
}

// stutter returns at most one byte per read, and a timeout error between
// bytes, like a pipe whose read deadline keeps being set.
type stutter struct {
	b       []byte
	timeout bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }

func (s *stutter) Read(p []byte) (int, error) {
	s.timeout = !s.timeout
	if s.timeout {
		return 0, timeoutErr{}
	}
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	p[0] = s.b[0]
	s.b = s.b[1:]
	return 1, nil
}

// TestReadFrameResumes: a read interrupted anywhere in a frame picks up
// where it stopped when called again.
func TestReadFrameResumes(t *testing.T) {
	var stream []byte
	for _, f := range frames(t) {
		stream = append(stream, f...)
	}
	want := len(frames(t))
	r := NewReader(&stutter{b: stream}, 16, 0)
	got := 0
	for {
		p, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if _, ok := err.(timeoutErr); ok {
			continue
		}
		if err != nil {
			t.Fatalf("frame %d: %v", got, err)
		}
		if _, err := Decode(p); err != nil {
			t.Fatalf("frame %d: %v", got, err)
		}
		got++
	}
	if got != want {
		t.Fatalf("read %d frames, want %d", got, want)
	}
}

// TestDepthAtTheBoundary pins the rule protocol.md states (section 9): each
// value of the message map may nest MaxDepth levels of arrays and maps,
// counted from the value itself; the message map does not count, and a
// batch's array does.
func TestDepthAtTheBoundary(t *testing.T) {
	nest := func(n int) []byte { // 1 inside n arrays: depth n
		return append(bytes.Repeat([]byte{0x91}, n), 0x01)
	}
	nestMaps := func(n int) []byte { // n maps {"k": ...}: depth n
		var b []byte
		for range n {
			b = append(b, 0x81, 0xa1, 'k')
		}
		return append(b, 0x01)
	}
	batchOf := func(item []byte) []byte { return append(AppendArrayHeader(nil, 1), item...) }
	items := func(value []byte) []byte { return AppendItem(AppendArrayHeader(nil, 1), value, nil) }
	// An error map with an extra key nested n-1 deep: "e" is at depth n.
	errorAt := func(n int) []byte {
		b := appendMapLen(nil, 3)
		b = appendStr(appendStr(b, "type"), "error")
		b = appendStr(appendStr(b, "msg"), "m")
		return append(appendStr(b, "x"), nest(n-1)...)
	}
	errorFrame := func(e []byte) []byte {
		b := appendMapLen(nil, 3)
		b = appendStr(appendStr(b, "t"), "result")
		b = appendStr(b, "id")
		b = appendUint(b, 1)
		return append(appendStr(b, "e"), e...)
	}
	for _, n := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		ok := n <= MaxDepth
		frames := map[string][]byte{
			"task argument":       AppendTask(nil, 1, "f", nest(n), 0, false)[4:],
			"task argument, maps": AppendTask(nil, 1, "f", nestMaps(n), 0, false)[4:],
			"batch argument":      AppendTask(nil, 1, "f", batchOf(nest(n-1)), 0, true)[4:],
			"result value":        AppendResult(nil, 1, nest(n), nil, 0, false)[4:],
			"batch result":        AppendResult(nil, 1, items(nest(n-2)), nil, 0, true)[4:],
			"error":               errorFrame(errorAt(n)),
		}
		for what, f := range frames {
			_, err := Decode(f)
			if ok && err != nil {
				t.Errorf("%s at depth %d: %v", what, n, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), "nesting deeper than 100")) {
				t.Errorf("%s at depth %d: %v; want nesting deeper than 100", what, n, err)
			}
		}
		if err := Validate(nest(n)); ok != (err == nil) {
			t.Errorf("Validate at depth %d: %v", n, err)
		}
		if err := CheckDepth(nest(n), MaxArgDepth); (n <= MaxArgDepth) != (err == nil) {
			t.Errorf("CheckDepth(%d, MaxArgDepth) = %v", n, err)
		}
	}
}
