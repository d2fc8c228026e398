package workerproc

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/ipc/codec"
)

// Handler runs one call on encoded bytes: args is the msgpack argument, and
// the msgpack result is appended to out. Register builds one from a typed
// function; most code never sees this type.
type Handler func(ctx context.Context, args []byte, out []byte) ([]byte, error)

// Registry maps function names to the handlers a worker serves.
type Registry struct {
	mu    sync.RWMutex
	funcs map[string]Handler
}

// NewRegistry returns an empty registry, for a worker binary that wants its
// own set of functions rather than the package-level default.
func NewRegistry() *Registry { return &Registry{funcs: map[string]Handler{}} }

// Default is the registry Register adds to, and the one Main serves.
var Default = NewRegistry()

// Add registers h under name. It panics if the name is empty or taken:
// registration happens at init, where a duplicate is a programming error.
func (r *Registry) Add(name string, h Handler) {
	if name == "" {
		panic("workerproc: register of a function with an empty name")
	}
	if strings.HasPrefix(name, "ppool.") {
		panic(fmt.Sprintf("workerproc: %q: names starting with \"ppool.\" are reserved for the built-ins", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.funcs[name]; dup {
		panic(fmt.Sprintf("workerproc: function %q registered twice", name))
	}
	r.funcs[name] = h
}

// Lookup returns the handler registered under name, or the built-in of
// that name.
func (r *Registry) Lookup(name string) (Handler, bool) {
	r.mu.RLock()
	h, ok := r.funcs[name]
	r.mu.RUnlock()
	if !ok {
		h, ok = builtins[name]
	}
	return h, ok
}

// Names returns the registered names and the built-ins, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.funcs)+len(builtins))
	for n := range r.funcs {
		names = append(names, n)
	}
	for n := range builtins {
		if _, dup := r.funcs[n]; !dup {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Func names a function that workers serve, typed by its argument A and
// result R. It is a handle: calling it goes through a pool (see package pool).
type Func[A, R any] struct {
	name string
}

// Name returns the name workers know the function by.
func (f Func[A, R]) Name() string { return f.name }

// Register adds fn to the Default registry under name and returns its typed
// handle. Call it at package init (a package-level var), so the function
// exists in worker processes too: they run the same init code. A function
// registered later exists in the master only, and the pool refuses calls to
// it with ErrUnknownFunction.
//
// A and R travel as msgpack: use exported fields (with `msgpack:"name"` tags
// if you like). A []byte argument or result is passed without extra copies.
func Register[A, R any](name string, fn func(context.Context, A) (R, error)) Func[A, R] {
	return RegisterIn(Default, name, fn)
}

// RegisterIn is Register into a registry of your own.
func RegisterIn[A, R any](reg *Registry, name string, fn func(context.Context, A) (R, error)) Func[A, R] {
	reg.Add(name, func(ctx context.Context, args []byte, out []byte) ([]byte, error) {
		var a A
		if err := codec.Decode(args, &a); err != nil {
			return out, &BadArgumentsError{Function: name, Err: err}
		}
		r, err := fn(ctx, a)
		if err != nil {
			return out, err
		}
		if b, ok := any(r).([]byte); ok && len(b) >= bigResult {
			if tc, ok := ctx.(*taskCtx); ok && tc.tailOK {
				tc.tail = b // written from where it is, not copied into out
				return ipc.AppendBinHeader(out, len(b)), nil
			}
		}
		return codec.AppendOf(out, r)
	})
	return Func[A, R]{name: name}
}

// Remote returns a handle for a function that a custom worker binary serves,
// possibly in another language, without registering anything locally.
func Remote[A, R any](name string) Func[A, R] { return Func[A, R]{name: name} }

// BadArgumentsError reports arguments that did not decode into the
// function's argument type.
type BadArgumentsError struct {
	Function string
	Err      error
}

func (e *BadArgumentsError) Error() string {
	return fmt.Sprintf("%s: arguments do not decode: %v", e.Function, e.Err)
}

func (e *BadArgumentsError) Unwrap() error { return e.Err }

// Call is a function with its argument already encoded, as a pool's
// initializer is given.
type Call struct {
	Function string
	Args     []byte // msgpack
}

// With binds arg to f, for use as a pool's initializer.
func (f Func[A, R]) With(arg A) Call {
	b, err := codec.Marshal(arg)
	if err != nil {
		// The argument type is the caller's own; a value that cannot be
		// encoded is a programming error, reported where it is made.
		panic(fmt.Sprintf("workerproc: %s.With: %v", f.name, err))
	}
	return Call{Function: f.name, Args: slices.Clip(b)}
}
