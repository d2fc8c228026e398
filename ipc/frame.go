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

// Reader reads frames from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
	hdr [4]byte
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
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if uint64(n) > uint64(r.max) {
		return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrFrameTooLarge, n, r.max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
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
