package workerproctest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/ppool/ppool/ipc"
)

// Encoders for arguments in chosen wire forms: a worker must read every
// form, not only the shortest one its own encoder would produce.

func mpInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 0x7f, v < 0 && v >= -32:
		return append(b, byte(v))
	case v >= 0:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func mpFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

func mpMap(b []byte, n int) []byte {
	if n < 16 {
		return append(b, 0x80|byte(n))
	}
	return append(b, 0xde, byte(n>>8), byte(n))
}

func mpArray(b []byte, n int) []byte {
	if n < 16 {
		return append(b, 0x90|byte(n))
	}
	return append(b, 0xdc, byte(n>>8), byte(n))
}

// richValue is a map holding one value of every msgpack type, several in
// forms longer than needed, a 70 kB binary and deep nesting.
func richValue() []byte {
	var body []byte
	n := 0
	kv := func(k string, v ...byte) {
		body = append(ipc.AppendString(body, k), v...)
		n++
	}
	kv("nil", 0xc0)
	kv("true", 0xc3)
	kv("false", 0xc2)
	kv("fixint", 0x7f)
	kv("negative fixint", 0xe0)
	kv("uint8", 0xcc, 0xff)
	kv("uint16", 0xcd, 0xff, 0xfe)
	kv("uint32", 0xce, 0xff, 0xff, 0xff, 0xfd)
	kv("uint64", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc)
	kv("int8", 0xd0, 0x80)
	kv("int16", 0xd1, 0x80, 0x01)
	kv("int32", 0xd2, 0x80, 0x00, 0x00, 0x02)
	kv("int64", 0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03)
	kv("small int in a wide form", 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05)
	kv("float32", 0xca, 0x3f, 0xc0, 0x00, 0x00) // 1.5
	kv("float64", mpFloat(nil, math.Pi)...)
	kv("utf-8", ipc.AppendString(nil, "héllo, wörld ✓")...)
	kv("str8", ipc.AppendString(nil, strings.Repeat("s", 40))...)
	kv("str16", ipc.AppendString(nil, strings.Repeat("ü", 150))...)
	kv("str32 holding 3 bytes", 0xdb, 0, 0, 0, 3, 'a', 'b', 'c')
	kv("empty str", 0xa0)
	kv("bin8", ipc.AppendBin(nil, []byte{0, 1, 2, 0xff})...)
	kv("bin16", ipc.AppendBin(nil, make([]byte, 300))...)
	big := make([]byte, 70_000)
	for i := range big {
		big[i] = byte(i * 31)
	}
	kv("bin32", ipc.AppendBin(nil, big)...)
	kv("empty bin", 0xc4, 0)
	kv("array16 holding 2", 0xdc, 0, 2, 0x01, 0xa1, 'x')
	kv("array32 holding 1", 0xdd, 0, 0, 0, 1, 0xc0)
	kv("map32 holding 1", 0xdf, 0, 0, 0, 1, 0xa1, 'k', 0x2a)
	kv("integer keys", 0x82, 0x01, 0xa3, 'o', 'n', 'e', 0xff, 0xa9, 'm', 'i', 'n', 'u', 's', ' ', 'o', 'n', 'e')
	var deep []byte
	for range 30 {
		deep = append(deep, 0x91)
	}
	kv("nested 30 deep", append(deep, 0x07)...)
	kv("fixext4", 0xd6, 0x05, 1, 2, 3, 4)
	kv("ext8", 0xc7, 3, 0x07, 'a', 'b', 'c')
	return append(mpMap(nil, n), body...)
}

// value is a decoded msgpack value in a canonical Go form, so that two
// encodings of the same value compare equal with reflect.DeepEqual:
// integers are int64 (uint64 above MaxInt64), floats float64, str string,
// bin []byte, arrays []any, maps map[string]any keyed by the %#v of the
// canonical key, ext extValue.
type extValue struct {
	Type int8
	Data string
}

var errTruncated = errors.New("value runs past its end")

func decodeValue(b []byte) (any, error) {
	d := valueDecoder{b: b}
	v, err := d.value(200)
	if err != nil {
		return nil, err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-d.off)
	}
	return v, nil
}

type valueDecoder struct {
	b   []byte
	off int
}

func (d *valueDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, errTruncated
	}
	d.off += n
	return d.b[d.off-n : d.off], nil
}

func (d *valueDecoder) uint(size int) (uint64, error) {
	p, err := d.take(size)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func canonicalUint(v uint64) any {
	if v <= math.MaxInt64 {
		return int64(v)
	}
	return v
}

func (d *valueDecoder) value(depth int) (any, error) {
	if depth == 0 {
		return nil, errors.New("nested too deeply")
	}
	p, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := p[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xe0 == 0xa0:
		s, err := d.take(int(c & 0x1f))
		return string(s), err
	case c&0xf0 == 0x90:
		return d.array(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return d.mapping(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2, 0xc3:
		return c == 0xc3, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := d.uint(1 << (c - 0xcc))
		return canonicalUint(v), err
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		v, err := d.uint(size)
		shift := 64 - 8*size
		return int64(v<<shift) >> shift, err
	case 0xca:
		v, err := d.uint(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		v, err := d.uint(8)
		return math.Float64frombits(v), err
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		size := map[byte]int{0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[c]
		n, err := d.uint(size)
		if err != nil {
			return nil, err
		}
		s, err := d.take(int(min(n, math.MaxInt32)))
		if c >= 0xd9 {
			return string(s), err
		}
		return append([]byte{}, s...), err
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.array(int(min(n, math.MaxInt32)), depth)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapping(int(min(n, math.MaxInt32)), depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1 << (c - 0xd4))
	case 0xc7, 0xc8, 0xc9:
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(int(min(n, math.MaxInt32)))
	}
	return nil, fmt.Errorf("invalid type byte 0x%02x", c)
}

func (d *valueDecoder) array(n, depth int) (any, error) {
	if n > len(d.b)-d.off {
		return nil, errTruncated
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth - 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *valueDecoder) mapping(n, depth int) (any, error) {
	if 2*n > len(d.b)-d.off {
		return nil, errTruncated
	}
	out := make(map[string]any, n)
	for range n {
		k, err := d.value(depth - 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth - 1)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprintf("%#v", k)] = v
	}
	return out, nil
}

func (d *valueDecoder) ext(n int) (any, error) {
	t, err := d.take(1)
	if err != nil {
		return nil, err
	}
	data, err := d.take(n)
	return extValue{Type: int8(t[0]), Data: string(data)}, err
}

// sameValue reports whether got encodes the same value as want, and if not
// says where they differ.
func sameValue(got, want []byte) (bool, string) {
	g, err := decodeValue(got)
	if err != nil {
		return false, "the value does not decode: " + err.Error()
	}
	w, err := decodeValue(want)
	if err != nil {
		return false, "the expected value does not decode: " + err.Error()
	}
	if reflect.DeepEqual(g, w) {
		return true, ""
	}
	return false, difference(g, w, "")
}

// difference names the first place where g and w differ.
func difference(g, w any, path string) string {
	where := path
	if where == "" {
		where = "the value"
	}
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is %s, want a map", where, short(g))
		}
		for k, x := range wv {
			y, ok := gv[k]
			if !ok {
				return fmt.Sprintf("%s lacks key %s", where, k)
			}
			if !reflect.DeepEqual(x, y) {
				return difference(y, x, path+"["+k+"]")
			}
		}
		return fmt.Sprintf("%s has %d keys, want %d", where, len(gv), len(wv))
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			return fmt.Sprintf("%s is %s, want an array of %d", where, short(g), len(wv))
		}
		for i := range wv {
			if !reflect.DeepEqual(gv[i], wv[i]) {
				return difference(gv[i], wv[i], fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	return fmt.Sprintf("%s is %s, want %s", where, short(g), short(w))
}

func short(v any) string {
	s := fmt.Sprintf("%T %#v", v, v)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
