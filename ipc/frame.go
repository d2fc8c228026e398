package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the default limit on a frame's payload: 256 MiB.
const DefaultMaxFrame = 256 << 20

// ErrFrameTooLarge is returned by ReadFrame for a length prefix over the
// limit. The frame is not read, so the stream cannot be resynchronised: the
// connection is finished.
var ErrFrameTooLarge = errors.New("ipc: frame larger than the limit")

// Reader reads frames from a stream. A read that fails with a timeout (a
// deadline set on the underlying file) can simply be retried: the frame
// read so far is kept, so a reader may be interrupted between any two
// bytes without losing its place.
type Reader struct {
	r   *bufio.Reader
	max int
	hdr [4]byte
	nh  int    // header bytes read so far
	p   []byte // the payload being read, once the header is complete
	np  int    // payload bytes read so far
}

// NewReader returns a Reader with a buffer of size bytes, refusing frames
// whose payload is larger than max (DefaultMaxFrame if max <= 0).
func NewReader(r io.Reader, size, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, size), max: max}
}

// ReadFrame returns the next frame's payload in a newly allocated slice,
// which the caller may keep. It checks the length against the limit before
// allocating. At a clean end of stream it returns io.EOF; a stream that ends
// inside a frame gives io.ErrUnexpectedEOF.
func (r *Reader) ReadFrame() ([]byte, error) {
	for r.nh < len(r.hdr) {
		n, err := r.r.Read(r.hdr[r.nh:])
		r.nh += n
		if err != nil && r.nh < len(r.hdr) {
			if err == io.EOF && r.nh > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if r.p == nil {
		n := binary.BigEndian.Uint32(r.hdr[:])
		if uint64(n) > uint64(r.max) {
			return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrFrameTooLarge, n, r.max)
		}
		r.p = make([]byte, n)
	}
	for r.np < len(r.p) {
		n, err := r.r.Read(r.p[r.np:])
		r.np += n
		if err != nil && r.np < len(r.p) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	p := r.p
	r.nh, r.p, r.np = 0, nil, 0
	return p, nil
}

// Buffered reports how many bytes are already buffered: a reader that sees 0
// after a frame knows the peer has nothing more in flight right now, which
// is when a batch of replies should be flushed.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// ReadMsg reads and decodes the next frame.
func (r *Reader) ReadMsg() (Msg, error) {
	p, err := r.ReadFrame()
	if err != nil {
		return Msg{}, err
	}
	return Decode(p)
}
