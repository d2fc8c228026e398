// Package codec encodes task arguments and results as msgpack, the way both
// the master (package pool) and Go workers (package workerproc) do, with a
// zero-copy path for byte slices. It sits beside package ipc, the frames
// those bytes travel in, and imports nothing of ppool but ipc.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ppool/ppool/ipc"
)

// appender is the msgpack encoder's writer: it appends to b, and refuses
// to take b past limit (when limit > 0), so that a value too large to send
// costs no more memory than the limit to find out.
type appender struct {
	b     []byte
	limit int
}

func (a *appender) Write(p []byte) (int, error) {
	if a.limit > 0 && len(p) > a.limit-len(a.b) {
		return 0, errLimit
	}
	a.grow(len(p))
	a.b = append(a.b, p...)
	return len(p), nil
}

// WriteByte spares msgpack's own adapter, which allocates for each byte.
func (a *appender) WriteByte(c byte) error {
	if a.limit > 0 && len(a.b) >= a.limit {
		return errLimit
	}
	a.grow(1)
	a.b = append(a.b, c)
	return nil
}

// grow makes room for n more bytes, doubling: append's own growth falls
// to a quarter for large slices, and the buffers a large value outgrows on
// the way add up to five times its size, not two.
func (a *appender) grow(n int) {
	if cap(a.b)-len(a.b) >= n {
		return
	}
	c := max(2*cap(a.b), len(a.b)+n)
	if a.limit > 0 {
		c = min(c, a.limit)
	}
	a.b = slices.Grow(a.b, c-len(a.b))
}

var errLimit = errors.New("codec: past the limit")

// TooLargeError reports a value whose encoding would take the buffer
// past the limit given to AppendOfLimit. Nothing past the limit was
// encoded.
type TooLargeError struct {
	Limit int // the most the buffer could hold
	Size  int // what it would hold with the value; 0 if not known
}

func (e *TooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("codec: the value takes the buffer to %d bytes, over the limit of %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("codec: the value takes the buffer past the limit of %d bytes", e.Limit)
}

var encoders = sync.Pool{New: func() any {
	a := &appender{}
	e := msgpack.NewEncoder(a)
	e.UseCompactInts(true)
	return &encoder{a: a, e: e}
}}

type encoder struct {
	a *appender
	e *msgpack.Encoder
}

// Append appends v's msgpack encoding to b. A []byte is appended as one bin
// value with a single copy.
func Append(b []byte, v any) ([]byte, error) { return appendLimit(b, v, 0) }

// appendLimit is Append refusing to take b past limit bytes (0: no limit).
func appendLimit(b []byte, v any, limit int) ([]byte, error) {
	if out, ok := appendScalar(b, v); ok {
		return out, nil
	}
	enc := encoders.Get().(*encoder)
	enc.a.b, enc.a.limit = b, limit
	err := enc.e.Encode(v)
	b = enc.a.b
	enc.a.b = nil
	encoders.Put(enc)
	if errors.Is(err, errLimit) {
		return b, &TooLargeError{Limit: limit}
	}
	return b, err
}

// AppendOf is Append for a value of a static type: a scalar is encoded
// without first being boxed in an interface, which for an int above 255 is
// an allocation, and a Map of a million ints makes a million of them.
func AppendOf[T any](b []byte, v T) ([]byte, error) { return AppendOfLimit(b, v, 0) }

// AppendOfLimit is AppendOf refusing, with a *TooLargeError, to take b
// past limit bytes (0: no limit). A []byte or string is measured before
// anything is copied; any other value is encoded until it would pass the
// limit, so what a refusal costs is bounded by the limit, not the value.
// On error, b's contents past its original length are undefined.
func AppendOfLimit[T any](b []byte, v T, limit int) ([]byte, error) {
	if limit > 0 {
		if n, ok := sizeOf(any(v)); ok && len(b)+n > limit {
			return b, &TooLargeError{Limit: limit, Size: len(b) + n}
		}
	}
	if out, ok := appendScalar(b, any(v)); ok {
		return out, nil
	}
	return appendLimit(b, v, limit)
}

// sizeOf returns the encoded size of a value whose size is known without
// encoding it: a []byte or a string, the values that are large.
func sizeOf(v any) (int, bool) {
	switch x := v.(type) {
	case []byte:
		if x == nil {
			return 1, true // nil
		}
		return lengthBytes(len(x)) + len(x), true
	case string:
		if len(x) < 32 {
			return 1 + len(x), true // fixstr
		}
		return lengthBytes(len(x)) + len(x), true
	}
	return 0, false
}

// lengthBytes is the size of a str8/16/32 or bin8/16/32 header for n bytes.
func lengthBytes(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}

// appendScalar encodes the common scalar types without msgpack's
// reflection. It does not keep v, so a caller's conversion to any can stay
// on its stack.
func appendScalar(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return ipc.AppendBin(b, x), true
	case int:
		return ipc.AppendInt(b, int64(x)), true
	case int64:
		return ipc.AppendInt(b, x), true
	case float64:
		return append(b, 0xcb, byte(math.Float64bits(x)>>56), byte(math.Float64bits(x)>>48), byte(math.Float64bits(x)>>40),
			byte(math.Float64bits(x)>>32), byte(math.Float64bits(x)>>24), byte(math.Float64bits(x)>>16),
			byte(math.Float64bits(x)>>8), byte(math.Float64bits(x))), true
	case string:
		return ipc.AppendString(b, x), true
	case bool:
		if x {
			return append(b, 0xc3), true
		}
		return append(b, 0xc2), true
	}
	return b, false
}

// Decode decodes raw into dst. raw must come from a validated frame (see
// ipc.Validate). A *[]byte destination aliases raw instead of copying it: the
// frame buffers ppool reads are never reused, so the alias stays valid.
func Decode(raw []byte, dst any) error {
	switch p := dst.(type) {
	case *[]byte:
		if b, ok := aliasBin(raw); ok {
			*p = b
			return nil
		}
	case *int:
		if v, ok := readInt(raw); ok && int64(int(v)) == v {
			*p = int(v)
			return nil
		}
	case *int64:
		if v, ok := readInt(raw); ok {
			*p = v
			return nil
		}
	case *float64:
		if len(raw) == 9 && raw[0] == 0xcb {
			*p = math.Float64frombits(binary.BigEndian.Uint64(raw[1:]))
			return nil
		}
	case *string:
		if s, ok := readStr(raw); ok {
			*p = s
			return nil
		}
	case *bool:
		if len(raw) == 1 && (raw[0] == 0xc2 || raw[0] == 0xc3) {
			*p = raw[0] == 0xc3
			return nil
		}
	}
	// Anything else, and every form the fast paths do not take (a float32
	// into a float64, an integer too large for int, ...): msgpack decides.
	return msgpack.Unmarshal(raw, dst)
}

// readInt reads a msgpack integer that is the whole of raw.
func readInt(raw []byte) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	c := raw[0]
	switch {
	case c <= 0x7f:
		return int64(c), len(raw) == 1
	case c >= 0xe0:
		return int64(int8(c)), len(raw) == 1
	}
	switch {
	case c == 0xcc && len(raw) == 2:
		return int64(raw[1]), true
	case c == 0xcd && len(raw) == 3:
		return int64(binary.BigEndian.Uint16(raw[1:])), true
	case c == 0xce && len(raw) == 5:
		return int64(binary.BigEndian.Uint32(raw[1:])), true
	case c == 0xcf && len(raw) == 9:
		u := binary.BigEndian.Uint64(raw[1:])
		return int64(u), u <= math.MaxInt64
	case c == 0xd0 && len(raw) == 2:
		return int64(int8(raw[1])), true
	case c == 0xd1 && len(raw) == 3:
		return int64(int16(binary.BigEndian.Uint16(raw[1:]))), true
	case c == 0xd2 && len(raw) == 5:
		return int64(int32(binary.BigEndian.Uint32(raw[1:]))), true
	case c == 0xd3 && len(raw) == 9:
		return int64(binary.BigEndian.Uint64(raw[1:])), true
	}
	return 0, false
}

// readStr reads a msgpack str that is the whole of raw.
func readStr(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var n, h int
	switch c := raw[0]; {
	case c&0xe0 == 0xa0:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(raw) >= 2:
		n, h = int(raw[1]), 2
	case c == 0xda && len(raw) >= 3:
		n, h = int(binary.BigEndian.Uint16(raw[1:])), 3
	case c == 0xdb && len(raw) >= 5:
		n, h = int(binary.BigEndian.Uint32(raw[1:])), 5
	default:
		return "", false
	}
	if len(raw)-h != n {
		return "", false
	}
	return string(raw[h:]), true
}

func aliasBin(raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var n, h int
	switch raw[0] {
	case 0xc0:
		return nil, len(raw) == 1
	case 0xc4:
		if len(raw) < 2 {
			return nil, false
		}
		n, h = int(raw[1]), 2
	case 0xc5:
		if len(raw) < 3 {
			return nil, false
		}
		n, h = int(binary.BigEndian.Uint16(raw[1:])), 3
	case 0xc6:
		if len(raw) < 5 {
			return nil, false
		}
		n, h = int(binary.BigEndian.Uint32(raw[1:])), 5
	default:
		return nil, false
	}
	if len(raw)-h != n {
		return nil, false
	}
	return raw[h:len(raw):len(raw)], true
}

// Marshal is Append onto a new slice.
func Marshal(v any) ([]byte, error) {
	b, err := Append(nil, v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}
