package pool_test

import (
	"testing"

	"github.com/ppool/ppool/pool"
)

func TestSmoke(t *testing.T) {
	ctx := testCtx(t)
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	v, err := pool.Apply(ctx, p, square, 7)
	if err != nil || v != 49 {
		t.Fatalf("square(7) = %d, %v", v, err)
	}
}

func runMaster() int { return 0 }
