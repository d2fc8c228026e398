#!/usr/bin/python3
"""Dask's distributed scheduler on the figures dist's benchmarks give ppool.

A LocalCluster of worker processes, defaults otherwise (the dashboard off:
it is not started without bokeh anyway, and elsewhere it would listen on
every interface). Prints one JSON object:

  start_s          LocalCluster(n_workers=2) + Client until both workers are
                   ready, median of --starts, each cluster closed after
  tasks_per_s      --tasks no-op tasks: client.map, then gather
  rt_p50_ms/p99    one no-op at a time, submit().result(), --roundtrips
  blur_1w_s/2w_s   the blur job (Pillow GaussianBlur of radius --sigma, the
                   Gaussian's standard deviation) on every PNG in --images,
                   written as PNG into --out: on a cluster of 1 worker and on
                   one of 2, mean of --rounds after one untimed run each
  blur_speedup     blur_1w_s / blur_2w_s

BenchmarkDask (dist/dask_bench_test.go) runs it beside ppool's figures.
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time

from distributed import Client, LocalCluster, wait


def noop(x):
    return x


def blur(src, dst, sigma):
    # Imported in the worker: the task carries a function, not Pillow.
    from PIL import Image, ImageFilter

    with Image.open(src) as im:
        im.filter(ImageFilter.GaussianBlur(sigma)).save(dst)
    return dst


def cluster(workers):
    return LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )


def start_once():
    t0 = time.perf_counter()
    c = cluster(2)
    client = Client(c)
    client.wait_for_workers(2)
    took = time.perf_counter() - t0
    client.close()
    c.close()
    return took


def tiny_tasks(client, n):
    wait(client.map(noop, range(100), pure=False))  # workers warm
    t0 = time.perf_counter()
    futures = client.map(noop, range(n), pure=False)
    client.gather(futures)
    took = time.perf_counter() - t0
    del futures
    return n / took


def round_trips(client, n):
    for i in range(20):  # warm
        client.submit(noop, i, pure=False).result()
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        client.submit(noop, i, pure=False).result()
        lat.append(time.perf_counter() - t0)
    lat.sort()

    def q(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3

    return q(0.5), q(0.99)


def blur_job(workers, images, out, sigma, rounds):
    srcs = sorted(glob.glob(os.path.join(images, "**", "*.png"), recursive=True))
    if not srcs:
        sys.exit(f"dask_bench: no PNG under {images}")
    dsts = [os.path.join(out, f"{workers}w-" + os.path.basename(s)) for s in srcs]
    with cluster(workers) as c, Client(c) as client:
        client.wait_for_workers(workers)

        def once():
            t0 = time.perf_counter()
            client.gather(client.map(blur, srcs, dsts, [sigma] * len(srcs), pure=False))
            return time.perf_counter() - t0

        once()  # the workers import Pillow, the files are in the page cache
        return statistics.mean(once() for _ in range(rounds))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True, help="folder of PNGs for the blur job")
    p.add_argument("--out", required=True, help="folder the blurred PNGs go to")
    p.add_argument("--sigma", type=float, default=2)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--roundtrips", type=int, default=500)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()

    r = {}
    r["start_s"] = statistics.median(start_once() for _ in range(a.starts))
    with cluster(2) as c, Client(c) as client:
        client.wait_for_workers(2)
        r["tasks_per_s"] = tiny_tasks(client, a.tasks)
        r["rt_p50_ms"], r["rt_p99_ms"] = round_trips(client, a.roundtrips)
    r["blur_1w_s"] = blur_job(1, a.images, a.out, a.sigma, a.rounds)
    r["blur_2w_s"] = blur_job(2, a.images, a.out, a.sigma, a.rounds)
    r["blur_speedup"] = r["blur_1w_s"] / r["blur_2w_s"]
    import distributed

    r["version"] = distributed.__version__
    json.dump(r, sys.stdout)
    print()


if __name__ == "__main__":  # the worker processes are spawned: they import this file
    main()
