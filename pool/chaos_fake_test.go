//go:build chaos

package pool_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/workerproc"
)

// Worker functions of the chaos suite.
var (
	// chaosWork sleeps (honouring cancellation) and returns its id, so a
	// result can be matched with its task.
	chaosWork = workerproc.Register("chaos.work", func(ctx context.Context, a workArgs) (int, error) {
		t := time.NewTimer(a.D)
		defer t.Stop()
		select {
		case <-t.C:
			return a.ID, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// chaosHog allocates and touches memory, a MiB per millisecond, until
	// the pool kills it; past 2 GiB it gives up rather than take the
	// machine down, and says it was never stopped.
	chaosHog = workerproc.Register("chaos.hog", func(ctx context.Context, _ struct{}) (int, error) {
		var keep [][]byte
		for len(keep) < 2048 {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
			time.Sleep(time.Millisecond)
		}
		return 0, errors.New("allocated 2 GiB without being stopped")
	})
	// chaosHang ignores cancellation, as a stuck C call would.
	chaosHang = workerproc.Register("chaos.hang", func(ctx context.Context, _ struct{}) (int, error) {
		select {}
	})
)

type workArgs struct {
	ID int           `msgpack:"id"`
	D  time.Duration `msgpack:"d"`
}

// The fake worker: a mode of the test binary, chosen by EnvChaosFake, that
// speaks the protocol badly. Its init runs before TestMain, so the fake
// never reaches workerproc.Main or the tests.
const (
	envChaosFake = "PPOOL_CHAOS_FAKE"     // the case number
	envChaosLog  = "PPOOL_CHAOS_FAKE_LOG" // a file the fake appends one byte to per malformed frame it sends
)

func init() {
	s := os.Getenv(envChaosFake)
	if s == "" {
		return
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		os.Exit(3)
	}
	fakeWorker(n)
	os.Exit(0)
}

// fakeCase is one way of breaking the protocol.
type fakeCase struct {
	name string
	// afterHello: the fake sends a good hello first, waits for a task and
	// then misbehaves; otherwise its very first bytes are bad.
	afterHello bool
	// bytes makes what the fake sends.
	bytes func(r *rand.Rand) []byte
	// exit: the fake exits after sending (for truncated frames, whose end
	// the master would otherwise wait for); else it waits for the master
	// to close its pipe or kill it.
	exit bool
}

// withPayload frames p with its true length.
func withPayload(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

func randomBytes(r *rand.Rand, min, max int) []byte {
	b := make([]byte, min+r.IntN(max-min+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func goodHello() []byte {
	return ipc.AppendHello(nil, ipc.Versions, os.Getpid(), []string{"chaos.work"}, "fake")
}

// payloadOf strips a frame's length prefix.
func payloadOf(f []byte) []byte { return f[4:] }

var fakeCases = []fakeCase{
	{name: "random bytes, then exit", exit: true, bytes: func(r *rand.Rand) []byte { return randomBytes(r, 1, 64) }},
	{name: "a frame of random bytes", bytes: func(r *rand.Rand) []byte { return withPayload(randomBytes(r, 0, 256)) }},
	{name: "a frame of random bytes with a map header", bytes: func(r *rand.Rand) []byte {
		return withPayload(append([]byte{0x80 | byte(1+r.IntN(15))}, randomBytes(r, 0, 64)...))
	}},
	{name: "a length over the frame limit", bytes: func(r *rand.Rand) []byte {
		n := uint32(ipc.DefaultMaxFrame) + 1 + uint32(r.IntN(1<<30))
		return append(binary.BigEndian.AppendUint32(nil, n), randomBytes(r, 0, 32)...)
	}},
	{name: "length 0xFFFFFFFF", bytes: func(r *rand.Rand) []byte { return []byte{0xff, 0xff, 0xff, 0xff, 0x81} }},
	{name: "an empty frame", bytes: func(r *rand.Rand) []byte { return []byte{0, 0, 0, 0} }},
	{name: "a truncated hello, then exit", exit: true, bytes: func(r *rand.Rand) []byte {
		h := goodHello()
		return h[:4+r.IntN(len(h)-4)]
	}},
	{name: "a hello with trailing bytes", bytes: func(r *rand.Rand) []byte {
		return withPayload(append(payloadOf(goodHello()), randomBytes(r, 1, 16)...))
	}},
	{name: "a hello with a flipped byte", bytes: func(r *rand.Rand) []byte {
		p := payloadOf(goodHello())
		for {
			i := r.IntN(len(p))
			b := byte(r.Uint32())
			if b == p[i] {
				continue
			}
			p[i] = b
			// A flip that leaves a valid hello is not malformed.
			if m, err := ipc.Decode(p); err == nil && m.Kind == ipc.KindHello && len(m.Versions) > 0 {
				if _, err := ipc.Negotiate(ipc.Versions, m.Versions); err == nil {
					p = payloadOf(goodHello())
					continue
				}
			}
			return withPayload(p)
		}
	}},
	{name: "a hello whose version array claims 2^32-1 elements", bytes: func(r *rand.Rand) []byte {
		p := []byte{0x82, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa2, 'v', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}
		return withPayload(append(p, 0x01))
	}},
	{name: "a hello whose function name claims 2^32-1 bytes", bytes: func(r *rand.Rand) []byte {
		p := []byte{0x83, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa2, 'v', 's', 0x91, 0x01, 0xa3, 'f', 'n', 's', 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff}
		return withPayload(append(p, 'x'))
	}},
	{name: "a map claiming 2^32-1 pairs", bytes: func(r *rand.Rand) []byte {
		return withPayload([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 't'})
	}},
	{name: "arrays nested 100000 deep", bytes: func(r *rand.Rand) []byte {
		p := make([]byte, 100_000)
		for i := range p {
			p[i] = 0x91
		}
		return withPayload(append(p, 0xc0))
	}},
	{name: "a hello speaking only protocol 99", bytes: func(r *rand.Rand) []byte {
		return ipc.AppendHello(nil, []int{99}, os.Getpid(), []string{"chaos.work"}, "fake")
	}},
	{name: "a hello without versions", bytes: func(r *rand.Rand) []byte {
		return withPayload([]byte{0x81, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o'})
	}},
	{name: "a result before the hello", bytes: func(r *rand.Rand) []byte {
		return ipc.AppendResult(nil, uint64(r.IntN(100)), []byte{0x01}, nil, time.Millisecond, false)
	}},
	{name: "a task before the hello", bytes: func(r *rand.Rand) []byte {
		return ipc.AppendTask(nil, 1, "square", []byte{0x02}, 0, false)
	}},
	{name: "a progress before the hello", bytes: func(r *rand.Rand) []byte { return ipc.AppendProgress(nil, 1, 1, 2) }},
	{name: "a shutdown before the hello", bytes: func(r *rand.Rand) []byte { return ipc.AppendShutdown(nil) }},
	{name: "an unknown message type", bytes: func(r *rand.Rand) []byte {
		return withPayload([]byte{0x81, 0xa1, 't', 0xa4, 'h', 'a', 'c', 'k'})
	}},
	{name: "a reserved byte 0xc1", bytes: func(r *rand.Rand) []byte {
		return withPayload([]byte{0x82, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa2, 'v', 's', 0xc1})
	}},

	// After a good hello, in answer to the first task.
	{name: "after hello: a frame of random bytes", afterHello: true, bytes: func(r *rand.Rand) []byte { return withPayload(randomBytes(r, 0, 256)) }},
	{name: "after hello: a length over the limit", afterHello: true, bytes: func(r *rand.Rand) []byte {
		return binary.BigEndian.AppendUint32(nil, uint32(ipc.DefaultMaxFrame)+1+uint32(r.IntN(1<<30)))
	}},
	{name: "after hello: a truncated result, then exit", afterHello: true, exit: true, bytes: func(r *rand.Rand) []byte {
		f := ipc.AppendResult(nil, 1, []byte{0x04}, nil, time.Millisecond, false)
		return f[:4+r.IntN(len(f)-4)]
	}},
	{name: "after hello: a result for a task never sent", afterHello: true, bytes: func(r *rand.Rand) []byte {
		return ipc.AppendResult(nil, 1_000_000+uint64(r.IntN(1000)), []byte{0x04}, nil, time.Millisecond, false)
	}},
	{name: "after hello: a second hello", afterHello: true, bytes: func(r *rand.Rand) []byte { return goodHello() }},
	{name: "after hello: a task", afterHello: true, bytes: func(r *rand.Rand) []byte {
		return ipc.AppendTask(nil, 7, "square", []byte{0x02}, 0, false)
	}},
	{name: "after hello: a result whose value claims 2^32-1 bytes", afterHello: true, bytes: func(r *rand.Rand) []byte {
		f := ipc.AppendResult(nil, 1, []byte{0xc0}, nil, time.Millisecond, false)
		p := payloadOf(f)
		// Replace the nil value by a bin32 header with nothing behind it.
		for i := range p {
			if p[i] == 0xc0 && i > 0 && p[i-1] == 'v' {
				p = append(append(p[:i:i], 0xc6, 0xff, 0xff, 0xff, 0xff), p[i+1:]...)
				break
			}
		}
		return withPayload(p)
	}},
}

// fakeWorker plays case n: it sends fakeCases[n%len]'s bytes, made from a
// generator seeded with n, and logs one byte per malformed frame sent.
func fakeWorker(n int) {
	c := fakeCases[n%len(fakeCases)]
	r := rand.New(rand.NewPCG(uint64(n), 0xc4a05))
	in := bufio.NewReader(os.NewFile(ipc.FromMasterFD, "in"))
	out := os.NewFile(ipc.ToMasterFD, "out")
	if c.afterHello {
		if _, err := out.Write(goodHello()); err != nil {
			return
		}
		// Wait for the first task; anything else (EOF) ends the fake.
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(in, hdr[:]); err != nil {
				return
			}
			p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(in, p); err != nil {
				return
			}
			if m, err := ipc.Decode(p); err == nil && m.Kind == ipc.KindTask {
				break
			}
		}
	}
	if path := os.Getenv(envChaosLog); path != "" {
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			f.Write([]byte{'.'})
			f.Close()
		}
	}
	if _, err := out.Write(c.bytes(r)); err != nil {
		return
	}
	if c.exit {
		return
	}
	io.Copy(io.Discard, in) // until the master closes the pipe or kills us
}

func (c fakeCase) String() string { return fmt.Sprintf("%q", c.name) }
