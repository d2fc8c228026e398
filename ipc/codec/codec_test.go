package codec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestFastPaths: what the fast paths write, msgpack reads back, and what
// msgpack writes, the fast paths read; values outside them fall back.
func TestFastPaths(t *testing.T) {
	values := []any{0, 1, 127, 128, -1, -32, -33, -128, -129, 255, 256, 65535, 65536, -70000,
		math.MaxInt64, math.MinInt64, int64(5), 0.0, -2.5, math.Inf(1), "", "short", string(make([]byte, 300)), true, false, []byte("bin")}
	for _, v := range values {
		b, err := Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		dst := reflect.New(reflect.TypeOf(v))
		if err := msgpack.Unmarshal(b, dst.Interface()); err != nil || !reflect.DeepEqual(dst.Elem().Interface(), v) {
			t.Errorf("%#v: msgpack read back %#v, %v", v, dst.Elem().Interface(), err)
		}
		ref, _ := msgpack.Marshal(v)
		dst = reflect.New(reflect.TypeOf(v))
		if err := Decode(ref, dst.Interface()); err != nil || !reflect.DeepEqual(dst.Elem().Interface(), v) {
			t.Errorf("%#v: Decode of msgpack's % x gave %#v, %v", v, ref, dst.Elem().Interface(), err)
		}
	}
	var f float64
	if err := Decode([]byte{0x05}, &f); err != nil || f != 5 {
		t.Errorf("an integer into a float64: %v, %v", f, err)
	}
	var i int
	if err := Decode([]byte{0xa1, 'x'}, &i); err == nil {
		t.Error("a string decoded into an int")
	}
}

// TestAppendOfDoesNotBox: encoding an int through AppendOf allocates
// nothing; through Append it would box ints above 255.
func TestAppendOfDoesNotBox(t *testing.T) {
	buf := make([]byte, 0, 64)
	x := 100000
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendOf(buf[:0], x)
		x++
	})
	if allocs != 0 {
		t.Errorf("AppendOf(int) allocates %v times per call, want 0", allocs)
	}
}

// TestAppendOfLimit: a value that fits is encoded as AppendOf would; one
// that does not is refused, a []byte or string before anything is copied,
// and the size given for them is what they would take.
func TestAppendOfLimit(t *testing.T) {
	prefix := []byte("head")
	for _, v := range []any{[]byte(nil), []byte{}, make([]byte, 255), make([]byte, 256), make([]byte, 70000),
		"", string(make([]byte, 31)), string(make([]byte, 32)), string(make([]byte, 300)), string(make([]byte, 70000)),
		[]int{1, 1 << 20, 3}, map[string]string{"k": string(make([]byte, 1000))}, 7} {
		want, _ := AppendOf(slices.Clone(prefix), v)
		if got, err := AppendOfLimit(slices.Clone(prefix), v, len(want)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%T of %d bytes at its size: %v", v, len(want), err)
		}
		if len(want) == len(prefix)+1 {
			continue // scalars and nil: nothing to refuse
		}
		_, err := AppendOfLimit(slices.Clone(prefix), v, len(want)-1)
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Limit != len(want)-1 {
			t.Errorf("%T of %d bytes, limit one less: %v", v, len(want), err)
			continue
		}
		switch v.(type) {
		case []byte, string:
			if tl.Size != len(want) {
				t.Errorf("%T: size %d, want %d", v, tl.Size, len(want))
			}
		}
	}
	big := make([]byte, 1<<20)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := AppendOfLimit(nil, big, 1000); err == nil {
			t.Fatal("1 MiB under a limit of 1000")
		}
	})
	if allocs > 1 {
		t.Errorf("refusing a []byte allocates %v times", allocs)
	}
}
