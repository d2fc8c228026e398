//go:build chaos

package pool_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ppool/ppool/pool"
)

func TestChaosDebugTiming(t *testing.T) {
	self, _ := os.Executable()
	for n := 0; n < 28; n++ {
		c := fakeCases[n%len(fakeCases)]
		if c.afterHello {
			continue
		}
		cfg := pool.Config{Workers: 1, Command: []string{self}, StartTimeout: 5 * time.Second, CrashLoopLimit: 3,
			Env: append([]string{envChaosFake + "=" + strconv.Itoa(n)}, fastExit...)}
		t0 := time.Now()
		_, err := pool.New(context.Background(), cfg)
		t.Logf("%v %s: %v", time.Since(t0), c.name, err)
	}
	t0 := time.Now()
	p, err := pool.New(context.Background(), pool.Config{Workers: 1, Env: fastExit})
	t.Logf("good New %v %v", time.Since(t0), err)
	t0 = time.Now()
	p.Terminate()
	t.Logf("Terminate %v", time.Since(t0))
}
