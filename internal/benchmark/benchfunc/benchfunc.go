// Package benchfunc holds the functions ppool bench runs in its workers.
// It links no pool, so that ppool's slim worker binary (cmd/ppool-worker)
// serves them as well as ppool itself does.
package benchfunc

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"time"

	ppimage "github.com/ppool/ppool/jobs/image"
	"github.com/ppool/ppool/jobs/matrix"
	"github.com/ppool/ppool/workerproc"
)

// The functions the benchmark runs in workers. They are registered at init
// so that worker processes, which run the same init code, serve them.
var (
	// Echo returns its bytes: the 16-byte round trip and the 64 MiB payload.
	Echo = workerproc.Register("bench.echo", func(ctx context.Context, b []byte) ([]byte, error) { return b, nil })
	// Square is the tiny task of the throughput figures.
	Square = workerproc.Register("bench.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	// Warm is the pools' initializer: it loads the BLAS backend once in
	// each worker, so that no timed task pays for loading OpenBLAS.
	Warm = workerproc.Register("bench.warm", func(ctx context.Context, _ struct{}) (string, error) {
		if err := matrix.CheckBackend(); err != nil {
			return "", err
		}
		a, err := matrix.Random(64, 64, 1)
		if err != nil {
			return "", err
		}
		if _, err := matrix.Multiply(a, a); err != nil {
			return "", err
		}
		return matrix.Backend(), nil
	})
	// Matmul times matrix products (MatmulArgs).
	Matmul = workerproc.Register("bench.matmul", runMatmul)
	// Blur times Gaussian blurs (BlurArgs).
	Blur = workerproc.Register("bench.blur", runBlur)
)

// MatmulArgs asks a worker for Reps products of two n×n random matrices.
type MatmulArgs struct {
	N    int    `msgpack:"n"`
	Seed uint64 `msgpack:"seed"`
	Reps int    `msgpack:"reps"`
}

// MatmulResult is what a worker measured: the fastest product alone,
// without making the operands, and the backend that ran it.
type MatmulResult struct {
	Best    time.Duration `msgpack:"best"`
	Backend string        `msgpack:"backend"`
	Sum     float64       `msgpack:"sum"` // keeps the product from being dead code, and checks it
}

func runMatmul(ctx context.Context, a MatmulArgs) (MatmulResult, error) {
	x, err := matrix.Random(a.N, a.N, a.Seed)
	if err != nil {
		return MatmulResult{}, err
	}
	y, err := matrix.Random(a.N, a.N, a.Seed+1)
	if err != nil {
		return MatmulResult{}, err
	}
	res := MatmulResult{Backend: matrix.Backend()}
	for range max(1, a.Reps) {
		if err := ctx.Err(); err != nil {
			return MatmulResult{}, err
		}
		t0 := time.Now()
		c, err := matrix.Multiply(x, y)
		d := time.Since(t0)
		if err != nil {
			return MatmulResult{}, err
		}
		if res.Best == 0 || d < res.Best {
			res.Best = d
		}
		res.Sum = 0
		for _, v := range c.RawMatrix().Data {
			res.Sum += v
		}
	}
	return res, nil
}

// BlurArgs asks a worker for Reps Gaussian blurs of a random opaque RGB
// image of W×H pixels.
type BlurArgs struct {
	W     int     `msgpack:"w"`
	H     int     `msgpack:"h"`
	Sigma float64 `msgpack:"sigma"`
	Seed  uint64  `msgpack:"seed"`
	Reps  int     `msgpack:"reps"`
}

// BlurResult is the fastest blur alone, without making the image.
type BlurResult struct {
	Best     time.Duration `msgpack:"best"`
	Checksum uint64        `msgpack:"checksum"`
}

func runBlur(ctx context.Context, a BlurArgs) (BlurResult, error) {
	if a.W <= 0 || a.H <= 0 || a.W*a.H > 1<<26 {
		return BlurResult{}, fmt.Errorf("bench.blur: image size %d×%d out of range", a.W, a.H)
	}
	src := randomRGB(a.W, a.H, a.Seed)
	var res BlurResult
	for range max(1, a.Reps) {
		if err := ctx.Err(); err != nil {
			return BlurResult{}, err
		}
		t0 := time.Now()
		out, err := ppimage.GaussianBlur{Sigma: a.Sigma}.Apply(src)
		d := time.Since(t0)
		if err != nil {
			return BlurResult{}, err
		}
		if res.Best == 0 || d < res.Best {
			res.Best = d
		}
		res.Checksum = 0
		for i := 0; i < len(out.Pix); i += 4099 {
			res.Checksum = res.Checksum*31 + uint64(out.Pix[i])
		}
	}
	return res, nil
}

// randomRGB makes an opaque image of uniformly random RGB noise, as the
// Python side makes with numpy: noise is the worst case for no filter.
func randomRGB(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	src := rand.NewPCG(seed, 0)
	pix := img.Pix
	for i := 0; i < len(pix); i += 4 {
		v := src.Uint64()
		pix[i], pix[i+1], pix[i+2], pix[i+3] = byte(v), byte(v>>8), byte(v>>16), 255
	}
	return img
}
