package workerproc_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/ppool/ppool/workerproc"
)

// A function is registered at package init, typed by its argument and
// result; the handle names it to a pool (pool.Apply(ctx, p, shout, "hi")).
var shout = workerproc.Register("shout", func(ctx context.Context, s string) (string, error) {
	return strings.ToUpper(s) + "!", nil
})

func ExampleRegister() {
	fmt.Println(shout.Name())
	fmt.Println(workerproc.Default.Names())
	// Output:
	// shout
	// [double oops ppool.echo ppool.fail ppool.panic ppool.sleep procs shout wait]
}
