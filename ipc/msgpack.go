package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// MaxDepth bounds how deeply arrays and maps may nest in each value of a
// frame's message map (an argument "a", a result "v", an error "e"), so
// that a frame of nested one-byte headers cannot exhaust a decoder's stack.
// A value's depth counts from the value itself: a scalar is at depth 0,
// [1] at 1, [[1]] and {"k": [1]} at 2. The message map is not counted, so
// a frame as a whole nests at most MaxDepth+1 levels. A batch's array is
// part of its "a" or "v" and counts: each item of a batch task may nest
// MaxDepth-1 levels (see MaxArgDepth).
const MaxDepth = 100

// MaxArgDepth is how deeply one argument may nest for every task frame to
// carry it, alone or as an item of a batch, whose array is one level more.
const MaxArgDepth = MaxDepth - 1

var (
	errShort   = errors.New("msgpack: value runs past the end of the frame")
	errTooDeep = errors.New("msgpack: nesting too deep")
)

// Validate checks that b holds exactly one well-formed msgpack value: every
// declared length fits in the bytes left, nesting stays within MaxDepth, and
// no reserved byte (0xc1) appears. It allocates nothing.
func Validate(b []byte) error {
	n, err := skipValue(b, 0, MaxDepth)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("msgpack: %d trailing bytes after the value", len(b)-n)
	}
	return nil
}

// CheckDepth returns an error if the msgpack value in b nests arrays and
// maps deeper than limit, or is not exactly one well-formed value. It
// allocates nothing.
func CheckDepth(b []byte, limit int) error {
	n, err := skipValue(b, 0, limit)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("msgpack: %d trailing bytes after the value", len(b)-n)
	}
	return nil
}

// skipValue is skip for a value allowed to nest limit levels, its error
// saying so.
func skipValue(b []byte, off, limit int) (int, error) {
	n, err := skip(b, off, limit)
	if err == errTooDeep {
		return 0, fmt.Errorf("msgpack: nesting deeper than %d", limit)
	}
	return n, err
}

// skip returns the offset just past the value starting at b[off]. Containers
// are walked with an explicit count of pending values rather than recursion
// per element, but nesting is still bounded by depth.
func skip(b []byte, off, depth int) (int, error) {
	if off >= len(b) {
		return 0, errShort
	}
	c := b[off]
	off++
	var n int // payload bytes (str/bin/ext) or element count (array/map)
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return off, nil
	case c&0xe0 == 0xa0: // fixstr
		n = int(c & 0x1f)
		return span(b, off, n)
	case c&0xf0 == 0x90: // fixarray
		return skipContainer(b, off, int(c&0x0f), depth)
	case c&0xf0 == 0x80: // fixmap
		return skipContainer(b, off, 2*int(c&0x0f), depth)
	}
	switch c {
	case 0xc1:
		return 0, fmt.Errorf("msgpack: reserved byte 0xc1 at offset %d", off-1)
	case 0xcc, 0xd0: // uint8, int8
		return span(b, off, 1)
	case 0xcd, 0xd1:
		return span(b, off, 2)
	case 0xce, 0xd2, 0xca:
		return span(b, off, 4)
	case 0xcf, 0xd3, 0xcb:
		return span(b, off, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1,2,4,8,16 plus type byte
		return span(b, off, 1+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		n, off, err := length(b, off, 1)
		if err != nil {
			return 0, err
		}
		return span(b, off, n)
	case 0xc5, 0xda:
		n, off, err := length(b, off, 2)
		if err != nil {
			return 0, err
		}
		return span(b, off, n)
	case 0xc6, 0xdb:
		n, off, err := length(b, off, 4)
		if err != nil {
			return 0, err
		}
		return span(b, off, n)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type byte, data
		n, off, err := length(b, off, 1<<(c-0xc7))
		if err != nil {
			return 0, err
		}
		return span(b, off, n+1)
	case 0xdc, 0xdd: // array16/32
		n, off, err := length(b, off, 2<<(c-0xdc))
		if err != nil {
			return 0, err
		}
		return skipContainer(b, off, n, depth)
	case 0xde, 0xdf: // map16/32
		n, off, err := length(b, off, 2<<(c-0xde))
		if err != nil {
			return 0, err
		}
		if n > math.MaxInt32 {
			return 0, errShort
		}
		return skipContainer(b, off, 2*n, depth)
	}
	return 0, fmt.Errorf("msgpack: unknown type byte 0x%02x", c)
}

func skipContainer(b []byte, off, elems, depth int) (int, error) {
	// Every element takes at least one byte: a count larger than what is
	// left is a lie, and must be refused before anyone allocates for it.
	if elems > len(b)-off {
		return 0, errShort
	}
	if depth == 0 {
		return 0, errTooDeep
	}
	var err error
	for range elems {
		if off, err = skip(b, off, depth-1); err != nil {
			return 0, err
		}
	}
	return off, nil
}

func length(b []byte, off, size int) (n, next int, err error) {
	if len(b)-off < size {
		return 0, 0, errShort
	}
	switch size {
	case 1:
		n = int(b[off])
	case 2:
		n = int(binary.BigEndian.Uint16(b[off:]))
	case 4:
		n = int(binary.BigEndian.Uint32(b[off:]))
	}
	return n, off + size, nil
}

func span(b []byte, off, n int) (int, error) {
	if n < 0 || n > len(b)-off {
		return 0, errShort
	}
	return off + n, nil
}

// The decoding helpers below check every type and every length against the
// bytes there are: Decode reads frames with them without walking the frame
// with Validate first. A declared count that sizes an allocation must be
// checked against the bytes left by the caller.

type cursor struct {
	b   []byte
	off int
}

func (c *cursor) fail(what string) error {
	if c.off < len(c.b) {
		return fmt.Errorf("msgpack: expected %s at offset %d, found type byte 0x%02x", what, c.off, c.b[c.off])
	}
	return fmt.Errorf("msgpack: expected %s at offset %d, found end of frame", what, c.off)
}

func (c *cursor) mapLen() (int, error) {
	if c.off >= len(c.b) {
		return 0, c.fail("map")
	}
	t := c.b[c.off]
	switch {
	case t&0xf0 == 0x80:
		c.off++
		return int(t & 0x0f), nil
	case t == 0xde || t == 0xdf:
		n, off, err := length(c.b, c.off+1, 2<<(t-0xde))
		if err != nil {
			return 0, err
		}
		c.off = off
		return n, nil
	}
	return 0, c.fail("map")
}

func (c *cursor) arrayLen() (int, error) {
	if c.off >= len(c.b) {
		return 0, c.fail("array")
	}
	t := c.b[c.off]
	switch {
	case t&0xf0 == 0x90:
		c.off++
		return int(t & 0x0f), nil
	case t == 0xdc || t == 0xdd:
		n, off, err := length(c.b, c.off+1, 2<<(t-0xdc))
		if err != nil {
			return 0, err
		}
		c.off = off
		return n, nil
	}
	return 0, c.fail("array")
}

// str returns the bytes of a str (or bin) value without copying.
func (c *cursor) str() ([]byte, error) {
	if c.off >= len(c.b) {
		return nil, c.fail("string")
	}
	t := c.b[c.off]
	var n, off int
	var err error
	switch {
	case t&0xe0 == 0xa0:
		n, off = int(t&0x1f), c.off+1
	case t == 0xd9 || t == 0xc4:
		n, off, err = length(c.b, c.off+1, 1)
	case t == 0xda || t == 0xc5:
		n, off, err = length(c.b, c.off+1, 2)
	case t == 0xdb || t == 0xc6:
		n, off, err = length(c.b, c.off+1, 4)
	default:
		return nil, c.fail("string")
	}
	if err != nil {
		return nil, err
	}
	end, err := span(c.b, off, n)
	if err != nil {
		return nil, err
	}
	c.off = end
	return c.b[off:end:end], nil
}

// int reads any msgpack integer that fits in an int64.
func (c *cursor) int() (int64, error) {
	if c.off >= len(c.b) {
		return 0, c.fail("integer")
	}
	t := c.b[c.off]
	if t <= 0x7f {
		c.off++
		return int64(t), nil
	}
	if t >= 0xe0 {
		c.off++
		return int64(int8(t)), nil
	}
	var size int
	switch t {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		return 0, c.fail("integer")
	}
	if len(c.b)-c.off-1 < size {
		return 0, errShort
	}
	p := c.b[c.off+1:]
	c.off += 1 + size
	switch t {
	case 0xcc:
		return int64(p[0]), nil
	case 0xcd:
		return int64(binary.BigEndian.Uint16(p)), nil
	case 0xce:
		return int64(binary.BigEndian.Uint32(p)), nil
	case 0xcf:
		u := binary.BigEndian.Uint64(p)
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("msgpack: integer %d out of range", u)
		}
		return int64(u), nil
	case 0xd0:
		return int64(int8(p[0])), nil
	case 0xd1:
		return int64(int16(binary.BigEndian.Uint16(p))), nil
	case 0xd2:
		return int64(int32(binary.BigEndian.Uint32(p))), nil
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

func (c *cursor) uint() (uint64, error) {
	v, err := c.int()
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("msgpack: negative value %d where an unsigned integer was expected", v)
	}
	return uint64(v), nil
}

func (c *cursor) bool() (bool, error) {
	if c.off < len(c.b) {
		switch c.b[c.off] {
		case 0xc2:
			c.off++
			return false, nil
		case 0xc3:
			c.off++
			return true, nil
		}
	}
	return false, c.fail("bool")
}

func (c *cursor) isNil() bool {
	return c.off < len(c.b) && c.b[c.off] == 0xc0
}

// raw returns the encoded bytes of the next value, whatever it is, without
// copying. The value may nest MaxDepth levels: raw serves values of the
// message map.
func (c *cursor) raw() ([]byte, error) { return c.rawWithin(MaxDepth) }

// rawWithin is raw for a value inside a value of the message map, with
// limit the levels of MaxDepth left to it.
func (c *cursor) rawWithin(limit int) ([]byte, error) {
	end, err := skip(c.b, c.off, limit)
	if err == errTooDeep {
		return nil, fmt.Errorf("msgpack: nesting deeper than %d", MaxDepth)
	}
	if err != nil {
		return nil, err
	}
	v := c.b[c.off:end:end]
	c.off = end
	return v, nil
}

// Appending encoders. They produce the shortest msgpack form.

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendNil appends the msgpack nil value.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendArrayHeader appends the header of a msgpack array of n elements; the
// caller appends the n encoded elements after it.
func AppendArrayHeader(b []byte, n int) []byte { return appendArrayLen(b, n) }

// SplitArray returns the encoded elements of the msgpack array in b, without
// copying. b must have passed Validate (it has, if it came out of a frame).
func SplitArray(b []byte) ([][]byte, error) {
	it, err := NewArrayReader(b)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, it.Len())
	for i := range out {
		if out[i], err = it.Next(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ArrayReader walks the elements of a msgpack array one at a time, each as
// raw msgpack aliasing the array: SplitArray without a slice of them all,
// which for a batch of a hundred thousand items is megabytes.
type ArrayReader struct{ array }

// array is a msgpack array being read element by element.
type array struct {
	c    cursor
	n, i int
}

// open reads b's array header. The length it declares is checked against
// the bytes there are, so Len can be trusted for an allocation.
func (a *array) open(b []byte) error {
	a.c = cursor{b: b}
	n, err := a.c.arrayLen()
	if err != nil {
		return err
	}
	if n > len(b) {
		return errShort
	}
	a.n = n
	return nil
}

// Len is the number of elements.
func (a *array) Len() int { return a.n }

// NewArrayReader reads b's array header.
func NewArrayReader(b []byte) (*ArrayReader, error) {
	r := new(ArrayReader)
	if err := r.open(b); err != nil {
		return nil, err
	}
	return r, nil
}

// Next returns the next element; after the last, it returns io.EOF.
func (r *ArrayReader) Next() ([]byte, error) {
	if r.i >= r.n {
		return nil, io.EOF
	}
	r.i++
	return r.c.raw()
}

// AppendString appends s as a msgpack str, in its shortest form.
func AppendString(b []byte, s string) []byte { return appendStr(b, s) }

// AppendBin appends p as a msgpack bin, in its shortest form; a nil p is
// msgpack nil.
func AppendBin(b, p []byte) []byte {
	if p == nil {
		return append(b, 0xc0)
	}
	return append(AppendBinHeader(b, len(p)), p...)
}

// AppendBinHeader appends the header of a msgpack bin of n bytes, for a
// caller that writes the bytes themselves separately.
func AppendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xc5, byte(n>>8), byte(n))
	}
	return append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendInt appends v as a msgpack integer, in its shortest form.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(b, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(b, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xd3, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
