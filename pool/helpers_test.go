package pool_test

import (
	"runtime"

	"github.com/ppool/ppool/workerproc"
)

func workerprocRemote[A, R any](name string) workerproc.Func[A, R] {
	return workerproc.Remote[A, R](name)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
