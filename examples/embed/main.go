// Command embed shows ppool's Go API: a pool of worker processes (this same
// program, re-executed), a blocking Apply, an ApplyAsync with a callback,
// and a Map over many inputs.
package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/workerproc"
)

// Functions are registered at package init, so worker processes, which run
// the same init code, serve them too.
var (
	isPrime = workerproc.Register("isPrime", func(ctx context.Context, n int) (bool, error) {
		if n < 2 {
			return false, nil
		}
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	hostname = workerproc.Register("hostname", func(ctx context.Context, _ struct{}) (string, error) {
		h, err := os.Hostname()
		return fmt.Sprintf("%s (worker pid %d)", h, os.Getpid()), err
	})
	integrate = workerproc.Register("integrate", func(ctx context.Context, steps int) (float64, error) {
		// The midpoint rule for the integral of 4/(1+x²) over [0,1]: π.
		sum, h := 0.0, 1/float64(steps)
		for i := range steps {
			x := (float64(i) + 0.5) * h
			sum += 4 / (1 + x*x)
		}
		return sum * h, nil
	})
)

func main() {
	workerproc.Main() // in a worker process, this serves tasks and never returns
	ctx := context.Background()

	p, err := pool.New(ctx, pool.Config{}) // one worker per core
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	// Apply: run one call and wait for it.
	who, err := pool.Apply(ctx, p, hostname, struct{}{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("apply:", who)

	// ApplyAsync: queue a call; the callback runs when it completes.
	done := make(chan struct{})
	r := pool.ApplyAsync(ctx, p, integrate, 20_000_000, pool.Callback(func(pi float64) {
		fmt.Printf("apply_async callback: pi ≈ %.10f (error %.1e)\n", pi, math.Abs(pi-math.Pi))
		close(done)
	}))
	if _, err := r.Get(ctx); err != nil {
		log.Fatal(err)
	}
	<-done

	// Map: many inputs, chunked across the workers, results in order.
	inputs := make([]int, 200_000)
	for i := range inputs {
		inputs[i] = i
	}
	primes, err := pool.Map(ctx, p, isPrime, inputs)
	if err != nil {
		log.Fatal(err)
	}
	count := 0
	for _, ok := range primes {
		if ok {
			count++
		}
	}
	fmt.Printf("map: %d primes below %d\n", count, len(inputs))

	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
}
