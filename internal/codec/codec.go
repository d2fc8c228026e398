// Package codec encodes task arguments and results as msgpack, the way both
// the master and Go workers do, with a zero-copy path for byte slices.
package codec

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
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
func Append(b []byte, v any) ([]byte, error) {
	if p, ok := v.([]byte); ok {
		return appendBin(b, p), nil
	}
	enc := encoders.Get().(*encoder)
	enc.a.b = b
	err := enc.e.Encode(v)
	b = enc.a.b
	enc.a.b = nil
	encoders.Put(enc)
	return b, err
}

func appendBin(b, p []byte) []byte {
	n := len(p)
	switch {
	case p == nil:
		return append(b, 0xc0)
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// Decode decodes raw into dst. raw must come from a validated frame (see
// ipc.Validate). A *[]byte destination aliases raw instead of copying it: the
// frame buffers ppool reads are never reused, so the alias stays valid.
func Decode(raw []byte, dst any) error {
	if p, ok := dst.(*[]byte); ok {
		if b, ok := aliasBin(raw); ok {
			*p = b
			return nil
		}
	}
	return msgpack.Unmarshal(raw, dst)
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
