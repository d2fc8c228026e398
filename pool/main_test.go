package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/ipc"
	"github.com/ppool/ppool/workerproc"
	"github.com/ppool/ppool/workerproc/plugin"
)

// The test binary is its own worker: TestMain hands control to workerproc
// when the pool re-executes it.
func TestMain(m *testing.M) {
	if os.Getenv("PPOOL_TEST_DIE_AT_START") != "" {
		if _, err := os.Stat(os.Getenv("PPOOL_TEST_DIE_AT_START")); err == nil && os.Getenv(workerproc.EnvWorker) != "" {
			fmt.Fprintln(os.Stderr, "dying at start as the test asked")
			os.Exit(2)
		}
	}
	// Workers speaking only a newer protocol, for TestPluginRefusals.
	if v, err := strconv.Atoi(os.Getenv("PPOOL_TEST_PROTOCOL")); err == nil {
		ipc.Versions = []int{v}
	}
	if v, err := strconv.Atoi(os.Getenv("PPOOL_TEST_PLUGIN_VERSION")); err == nil {
		plugin.Handshake.ProtocolVersion = uint(v)
	}
	if os.Getenv("PPOOL_TEST_PLUGIN") != "" {
		plugin.Main(nil) // a go-plugin worker, for TestPlugin
	}
	workerproc.Main()
	// Workers are this test binary; under -race it would sleep a second at
	// every exit, which only slows the tests down.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	if os.Getenv("PPOOL_TEST_MASTER") != "" {
		os.Exit(runMaster())
	}
	os.Exit(m.Run())
}

// Functions the test workers serve.
var (
	square = workerproc.Register("square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	echo   = workerproc.Register("echo", func(ctx context.Context, b []byte) ([]byte, error) { return b, nil })
	pid    = workerproc.Register("pid", func(ctx context.Context, _ struct{}) (int, error) { return os.Getpid(), nil })
	say    = workerproc.Register("say", func(ctx context.Context, msg string) (int, error) {
		fmt.Fprintln(os.Stderr, msg)
		return len(msg), nil
	})
	// sleep honours cancellation.
	sleep = workerproc.Register("sleep", func(ctx context.Context, d time.Duration) (int, error) {
		select {
		case <-time.After(d):
			return os.Getpid(), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// hang ignores cancellation, as a stuck C call or a busy loop would.
	// If given a path, it writes its pid there once running.
	hang = workerproc.Register("hang", func(ctx context.Context, marker string) (int, error) {
		if marker != "" {
			if err := writeAtomic(marker, strconv.Itoa(os.Getpid())); err != nil {
				return 0, err
			}
		}
		time.Sleep(time.Hour)
		return 0, nil
	})
	fail = workerproc.Register("fail", func(ctx context.Context, msg string) (int, error) { return 0, errors.New(msg) })
	boom = workerproc.Register("boom", func(ctx context.Context, _ struct{}) (int, error) { panic("boom at the worker") })
	// crash kills its own worker.
	crash = workerproc.Register("crash", func(ctx context.Context, _ struct{}) (int, error) {
		fmt.Fprintln(os.Stderr, "about to crash")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})
	// parkOnce, the first time it runs for a marker path, writes its pid
	// there and waits to be killed; later runs return at once.
	parkOnce = workerproc.Register("parkOnce", func(ctx context.Context, marker string) (int, error) {
		if _, err := os.Stat(marker); err == nil {
			return os.Getpid(), nil
		}
		if err := writeAtomic(marker, strconv.Itoa(os.Getpid())); err != nil {
			return 0, err
		}
		select {}
	})
	// grow allocates memory, touching every page, until stopped.
	grow = workerproc.Register("grow", func(ctx context.Context, mib int) (int, error) {
		var keep [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
			time.Sleep(time.Millisecond)
		}
		return len(keep), nil
	})
	// spawnChild starts a long sleep and returns its pid.
	spawnChild = workerproc.Register("spawnChild", func(ctx context.Context, _ struct{}) (int, error) {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	// mixed is one function that does any of the above, for tests of
	// packs, which carry tasks of one function only.
	mixed = workerproc.Register("mixed", func(ctx context.Context, c mixedCall) (int, error) {
		switch c.Op {
		case "square":
			return c.X * c.X, nil
		case "fail":
			return 0, fmt.Errorf("fail %d", c.X)
		case "panic":
			panic(fmt.Sprintf("panic %d", c.X))
		case "crash":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		case "sleep": // honours its context
			<-ctx.Done()
			return 0, ctx.Err()
		case "hang": // ignores its context
			if err := writeAtomic(c.Marker, strconv.Itoa(os.Getpid())); err != nil {
				return 0, err
			}
			time.Sleep(time.Hour)
			return 0, nil
		case "gate":
			// Runs until the file Marker exists, then fails, so that its
			// long run does not count in the pool's average run time.
			for {
				if _, err := os.Stat(c.Marker); err == nil {
					return 0, errors.New("gate opened")
				}
				time.Sleep(time.Millisecond)
			}
		}
		return 0, fmt.Errorf("mixed: no op %q", c.Op)
	})
	initCount = 0
	initOnce  = workerproc.Register("initOnce", func(ctx context.Context, v int) (int, error) {
		if v < 0 {
			return 0, errors.New("initializer refused a negative value")
		}
		initCount += v
		return initCount, nil
	})
	initialized = workerproc.Register("initialized", func(ctx context.Context, _ struct{}) (int, error) { return initCount, nil })
)

type mixedCall struct {
	Op     string
	X      int
	Marker string
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func writeAtomic(path, content string) error {
	if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
