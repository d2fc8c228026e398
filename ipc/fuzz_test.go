package ipc

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

const fuzzMaxFrame = 1 << 16

// heapGrowth runs f and reports how many bytes the heap grew by, counting
// every allocation (TotalAlloc), not just what is still live.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func addSeeds(f *testing.F) {
	for _, frame := range frames(f) {
		f.Add(frame)
	}
	f.Add([]byte{0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
}

// FuzzReadFrame feeds arbitrary streams to the frame reader and decoder: no
// input may panic, and none may allocate far past the bytes it supplied.
func FuzzReadFrame(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		grew := heapGrowth(func() {
			r := NewReader(bytes.NewReader(stream), 64, fuzzMaxFrame)
			for {
				_, err := r.ReadMsg()
				if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrFrameTooLarge) {
					return
				}
			}
		})
		if limit := uint64(64*len(stream)) + 1<<20; grew > limit {
			t.Fatalf("%d input bytes made the reader allocate %d bytes", len(stream), grew)
		}
	})
}

// FuzzDecodeMessages decodes arbitrary payloads as each real message, then
// decodes the raw values they carry into typed Go values, as the pool and
// workers do. A payload that passes Decode must never make msgpack allocate
// more than a small multiple of its size.
func FuzzDecodeMessages(f *testing.F) {
	for _, frame := range frames(f) {
		f.Add(frame[4:])
	}
	f.Add([]byte{0x82, 0xa1, 't', 0xa4, 't', 'a', 's', 'k', 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff})
	// Counts Decode allocates by itself: a hello's versions and functions.
	f.Add([]byte{0x82, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa3, 'f', 'n', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x82, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa2, 'v', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		// CheckDepth at MaxDepth is Validate.
		if (CheckDepth(p, MaxDepth) == nil) != (Validate(p) == nil) {
			t.Fatalf("CheckDepth and Validate disagree on %x", p)
		}
		grew := heapGrowth(func() {
			m, err := Decode(p)
			if err != nil {
				return
			}
			for _, raw := range [][]byte{m.Args, m.Value} {
				if raw == nil {
					continue
				}
				var floats []float64
				_ = msgpack.Unmarshal(raw, &floats)
				var strs []string
				_ = msgpack.Unmarshal(raw, &strs)
				var anyv any
				_ = msgpack.Unmarshal(raw, &anyv)
				var mp map[string][]int
				_ = msgpack.Unmarshal(raw, &mp)
				if items, err := DecodeBatch(raw); err == nil {
					for _, it := range items {
						_ = msgpack.Unmarshal(it.Value, &anyv)
					}
				}
				_, _ = SplitArray(raw)
			}
		})
		// any-typed maps and interfaces cost a few hundred bytes per
		// one-byte element; gigabytes is what the check is about.
		if limit := uint64(1024*len(p)) + 1<<20; grew > limit {
			t.Fatalf("%d payload bytes made decoding allocate %d bytes", len(p), grew)
		}
	})
}
