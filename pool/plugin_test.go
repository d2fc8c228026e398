package pool_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
	"go.uber.org/goleak"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlugin(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := testCtx(t)
	var logs syncBuffer
	p, err := pool.New(ctx, pool.Config{
		Workers: 2, Command: []string{os.Args[0]}, Launcher: goplugin.Launcher{},
		Env:    []string{"PPOOL_TEST_PLUGIN=1"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := pool.Apply(ctx, p, square, 11); v != 121 || err != nil {
		t.Errorf("square(11) on a plugin worker = %d, %v", v, err)
	}
	if _, err := pool.Apply(ctx, p, say, "hello from a plugin worker"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5e9, "the worker's output never reached the logger", func() bool {
		return strings.Contains(logs.String(), "hello from a plugin worker")
	})
	// Crash recovery works the same through go-plugin.
	if _, err := pool.Apply(ctx, p, crash, struct{}{}); !errors.As(err, new(*pool.WorkerExitError)) {
		t.Errorf("crash on a plugin worker: %v", err)
	}
	fullSize(t, p, 2)
	if v, err := pool.Apply(ctx, p, square, 3); v != 9 || err != nil {
		t.Errorf("after the crash: %d, %v", v, err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}

func TestPluginRefusals(t *testing.T) {
	ctx := testCtx(t)
	cases := map[string]struct {
		cfg  pool.Config
		want []string
	}{
		"not a worker": {
			pool.Config{Workers: 1, Command: []string{"/bin/echo", "I am not a worker"}, Launcher: goplugin.Launcher{}},
			[]string{"/bin/echo", "I am not a worker"},
		},
		"newer go-plugin protocol": {
			pool.Config{Workers: 1, Command: []string{os.Args[0]}, Launcher: goplugin.Launcher{}, Env: []string{"PPOOL_TEST_PLUGIN=1", "PPOOL_TEST_PLUGIN_VERSION=2"}},
			[]string{os.Args[0], "Plugin version: 2"},
		},
		"newer worker protocol": {
			pool.Config{Workers: 1, Command: []string{os.Args[0]}, Env: []string{"PPOOL_WORKER=1", "PPOOL_TEST_PROTOCOL=2"}},
			[]string{os.Args[0], "ppool speaks 1, the worker speaks 2"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.cfg.StartTimeout = 3e9
			p, err := pool.New(ctx, c.cfg)
			if err == nil {
				p.Terminate()
				t.Fatal("New succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
