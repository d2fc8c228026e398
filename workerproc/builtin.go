package workerproc

import (
	"context"
	"errors"
	"time"

	"github.com/ppool/ppool/ipc/codec"
)

// Every worker serves these, whatever its registry holds, so that any worker
// can be health-checked and run through the conformance suite
// (workerproc/workerproctest, `ppool worker check`). The "ppool." prefix is
// reserved for them.
const (
	BuiltinEcho  = "ppool.echo"  // returns its argument unchanged
	BuiltinSleep = "ppool.sleep" // sleeps for its argument, in seconds (float), until cancelled; returns nil
	BuiltinFail  = "ppool.fail"  // returns an error whose message is its string argument
	BuiltinPanic = "ppool.panic" // panics with its string argument
)

var builtins = map[string]Handler{
	BuiltinEcho: func(ctx context.Context, args, out []byte) ([]byte, error) {
		return append(out, args...), nil
	},
	BuiltinSleep: func(ctx context.Context, args, out []byte) ([]byte, error) {
		var seconds float64
		if err := codec.Decode(args, &seconds); err != nil {
			return out, &BadArgumentsError{Function: BuiltinSleep, Err: err}
		}
		t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
		defer t.Stop()
		select {
		case <-t.C:
			return append(out, 0xc0), nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	},
	BuiltinFail: func(ctx context.Context, args, out []byte) ([]byte, error) {
		var msg string
		if err := codec.Decode(args, &msg); err != nil {
			return out, &BadArgumentsError{Function: BuiltinFail, Err: err}
		}
		return out, errors.New(msg)
	},
	BuiltinPanic: func(ctx context.Context, args, out []byte) ([]byte, error) {
		var msg string
		if err := codec.Decode(args, &msg); err != nil {
			return out, &BadArgumentsError{Function: BuiltinPanic, Err: err}
		}
		panic(msg)
	},
}
