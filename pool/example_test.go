package pool_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ppool/ppool/pool"
)

// square is registered at package init in main_test.go:
//
//	var square = workerproc.Register("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})

func ExampleApply() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	v, err := pool.Apply(ctx, p, square, 12)
	fmt.Println(v, err)
	// Output: 144 <nil>
}

func ExampleApplyAsync() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	done := make(chan struct{})
	r := pool.ApplyAsync(ctx, p, square, 9, pool.Callback(func(v int) {
		fmt.Println("callback:", v)
		close(done)
	}))
	v, err := r.Get(ctx)
	<-done
	fmt.Println("get:", v, err, r.Successful())
	// Output:
	// callback: 81
	// get: 81 <nil> true
}

func ExampleMap() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	squares, err := pool.Map(ctx, p, square, []int{1, 2, 3, 4, 5})
	fmt.Println(squares, err)
	// Output: [1 4 9 16 25] <nil>
}

func ExampleImap() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	for v, err := range pool.Imap(ctx, p, square, seq(100)) {
		if err != nil {
			log.Fatal(err)
		}
		if v > 20 {
			break // stops feeding; nothing is left running
		}
		fmt.Print(v, " ")
	}
	fmt.Println()
	// Output: 0 1 4 9 16
}
