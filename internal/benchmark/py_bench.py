"""Python's own process pools on this machine, for `ppool bench --python`.

The logic of ../shared/bench/py_pool.py, with what a same-run comparison
needs on top: the apply round trip as a p50 (ppool reports p50s), numpy's
single-thread GFLOPS at n=1024 and Pillow's single-core GaussianBlur(2)
rate, and smaller counts with --quick. ppool embeds this file in its binary
and runs it with the system's python3 and OPENBLAS_NUM_THREADS=1.

Usage: python3 py_bench.py [--quick]
Prints one figure per line: name value. Values that are not numbers (the
versions) have no spaces.
"""
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

NPROC = os.cpu_count()
QUICK = "--quick" in sys.argv[1:]

# Counts and sizes; ppool's side uses the same ones.
N_ASYNC = 2000 if QUICK else 20000
N_APPLY = 200 if QUICK else 2000
N_MAP = 50000 if QUICK else 1000000
N_IMAP = 5000 if QUICK else 200000
N_SUBMIT = 2000 if QUICK else 20000
N_START = 2 if QUICK else 5
MATMUL_N = 256 if QUICK else 1024
JOB_MATMUL_N, JOB_MATMUL_COUNT = (128, 8) if QUICK else (512, 32)
BLUR_W, BLUR_H = (512, 384) if QUICK else (2048, 1536)
JOB_BLUR_COUNT = 4 if QUICK else 16
REPS = 2 if QUICK else 5


def out(name, value):
    print(f"{name} {value}", flush=True)


def noop(x):
    return x


def matmul_task(seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    a = rng.random((JOB_MATMUL_N, JOB_MATMUL_N))
    b = rng.random((JOB_MATMUL_N, JOB_MATMUL_N))
    return float((a @ b).sum())


def random_image(seed, w, h):
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")


def blur_task(seed):
    from PIL import ImageFilter
    img = random_image(seed, BLUR_W, BLUR_H)
    return img.filter(ImageFilter.GaussianBlur(2)).size


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def overhead():
    with mp.Pool(NPROC) as p:
        p.map(noop, range(100))  # warm
        el = timed(lambda: [r.get() for r in [p.apply_async(noop, (i,)) for i in range(N_ASYNC)]])
        out("python_apply_async_tasks_per_s", f"{N_ASYNC / el:.0f}")
        for i in range(100):
            p.apply(noop, (i,))
        lat = []
        for i in range(N_APPLY):
            t = time.perf_counter()
            p.apply(noop, (i,))
            lat.append(time.perf_counter() - t)
        out("python_apply_roundtrip_us", f"{statistics.median(lat) * 1e6:.1f}")
        out("python_apply_roundtrip_mean_us", f"{statistics.fmean(lat) * 1e6:.1f}")
        el = timed(lambda: p.map(noop, range(N_MAP)))
        out("python_map_tasks_per_s", f"{N_MAP / el:.0f}")
        el = timed(lambda: list(p.imap_unordered(noop, range(N_IMAP), chunksize=1)))
        out("python_imap_unordered_tasks_per_s", f"{N_IMAP / el:.0f}")
    with ProcessPoolExecutor(NPROC) as ex:
        list(ex.map(noop, range(100)))
        el = timed(lambda: [f.result() for f in [ex.submit(noop, i) for i in range(N_SUBMIT)]])
        out("python_executor_submit_tasks_per_s", f"{N_SUBMIT / el:.0f}")
    starts = [timed(lambda: mp.Pool(NPROC).terminate()) for _ in range(N_START)]
    out("python_start_and_stop_ms", f"{statistics.median(starts) * 1e3:.2f}")


def single_core():
    import numpy as np
    from PIL import ImageFilter
    rng = np.random.default_rng(1)
    a = rng.random((MATMUL_N, MATMUL_N))
    b = rng.random((MATMUL_N, MATMUL_N))
    a @ b  # warm
    best = min(timed(lambda: a @ b) for _ in range(REPS))
    out("python_numpy_gflops", f"{2 * MATMUL_N ** 3 / best / 1e9:.2f}")
    img = random_image(1, BLUR_W, BLUR_H)
    img.filter(ImageFilter.GaussianBlur(2))  # warm
    best = min(timed(lambda: img.filter(ImageFilter.GaussianBlur(2))) for _ in range(REPS))
    out("python_pillow_mpix_per_s", f"{BLUR_W * BLUR_H / best / 1e6:.2f}")


def speedup(fn, n, label):
    serial = timed(lambda: [fn(i) for i in range(n)])
    with mp.Pool(NPROC) as p:
        p.map(noop, range(10))
        par = timed(lambda: p.map(fn, range(n), chunksize=1))
    out(f"python_{label}_serial_s", f"{serial:.6f}")
    out(f"python_{label}_pool_s", f"{par:.6f}")
    out(f"python_{label}_speedup", f"{serial / par:.2f}")


def versions():
    import numpy as np
    import PIL
    out("python_version", sys.version.split()[0])
    out("python_numpy_version", np.__version__)
    out("python_pillow_version", PIL.__version__)
    out("python_workers", NPROC)


if __name__ == "__main__":
    versions()
    single_core()
    overhead()
    speedup(matmul_task, JOB_MATMUL_COUNT, "matmul")
    speedup(blur_task, JOB_BLUR_COUNT, "blur")
