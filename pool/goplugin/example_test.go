package goplugin_test

import (
	"context"
	"log"

	"github.com/ppool/ppool/pool"
	"github.com/ppool/ppool/pool/goplugin"
)

// A pool of workers built with workerproc/plugin.Main, launched through
// go-plugin.
func Example() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Config{
		Command:  []string{"./myworker"},
		Launcher: goplugin.Launcher{},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
}
