// Package bufpool keeps byte buffers for reuse across tasks of about one
// size, such as the files a worker reads one after another: a fresh
// buffer costs clearing it and, once the runtime has returned the memory
// to the system, faulting its pages back in.
package bufpool

import "sync"

// Max is the largest buffer a Pool keeps; larger ones are left to the
// garbage collector.
const Max = 64 << 20

// A Pool of byte buffers. The zero value is ready to use. Like
// sync.Pool, it holds its buffers only until the next garbage
// collections or so.
type Pool struct{ p sync.Pool }

// Get returns a buffer of length 0 and capacity n at least. Its contents
// up to its capacity are left from its last use.
func (bp *Pool) Get(n int) []byte {
	if b, ok := bp.p.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	// A quarter more, so that the next file, a little larger, fits too.
	return make([]byte, 0, min(n+n/4, max(n, Max)))
}

// Put gives b back for reuse. The caller must not use b, or any slice of
// its memory, afterwards.
func (bp *Pool) Put(b []byte) {
	if cap(b) > 0 && cap(b) <= Max {
		b = b[:0]
		bp.p.Put(&b)
	}
}
