package benchmark

import "github.com/ppool/ppool/internal/benchmark/benchfunc"

// The functions the benchmark runs in workers are registered in package
// benchfunc, which ppool-worker links too.
var (
	echo   = benchfunc.Echo
	square = benchfunc.Square
	warm   = benchfunc.Warm
	matmul = benchfunc.Matmul
	blur   = benchfunc.Blur
)

// MatmulArgs asks a worker for matrix products: see benchfunc.MatmulArgs.
type MatmulArgs = benchfunc.MatmulArgs

// BlurArgs asks a worker for blurs: see benchfunc.BlurArgs.
type BlurArgs = benchfunc.BlurArgs
