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
                   one of 2, taking turns, mean of --rounds after one untimed
                   run each
  blur_speedup     blur_1w_s / blur_2w_s

--phases picks some of them. BenchmarkDask (dist/dask_bench_test.go) runs
each phase just before ppool's side of it.
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


def blur_job(images, out, sigma, rounds):
    """Mean seconds of the blur job on 1 worker and on 2.

    Both clusters are up at once and take turns, a round each: on a shared
    machine, load that comes and goes then falls on both figures alike.
    """
    srcs = sorted(glob.glob(os.path.join(images, "**", "*.png"), recursive=True))
    if not srcs:
        sys.exit(f"dask_bench: no PNG under {images}")
    with cluster(1) as c1, Client(c1) as one, cluster(2) as c2, Client(c2) as two:
        one.wait_for_workers(1)
        two.wait_for_workers(2)

        def once(client, workers):
            dsts = [os.path.join(out, f"{workers}w-" + os.path.basename(s)) for s in srcs]
            t0 = time.perf_counter()
            client.gather(client.map(blur, srcs, dsts, [sigma] * len(srcs), pure=False))
            return time.perf_counter() - t0

        # The workers import Pillow, the files are in the page cache.
        once(one, 1)
        once(two, 2)
        t1 = t2 = 0
        for _ in range(rounds):
            t1 += once(one, 1)
            t2 += once(two, 2)
        return t1 / rounds, t2 / rounds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", help="folder of PNGs for the blur job")
    p.add_argument("--out", help="folder the blurred PNGs go to")
    p.add_argument("--sigma", type=float, default=2)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--roundtrips", type=int, default=500)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument(
        "--phases",
        default="start,tasks,blur",
        help="which figures, comma-separated: start (start_s), tasks (tasks_per_s, rt_*), blur (blur_*)",
    )
    a = p.parse_args()
    phases = set(a.phases.split(","))
    if not phases <= {"start", "tasks", "blur"}:
        sys.exit(f"dask_bench: unknown phase in --phases {a.phases}")
    if "blur" in phases and not (a.images and a.out):
        sys.exit("dask_bench: the blur phase needs --images and --out")

    import distributed

    r = {"version": distributed.__version__}
    if "start" in phases:
        r["start_s"] = statistics.median(start_once() for _ in range(a.starts))
    if "tasks" in phases:
        with cluster(2) as c, Client(c) as client:
            client.wait_for_workers(2)
            r["tasks_per_s"] = tiny_tasks(client, a.tasks)
            r["rt_p50_ms"], r["rt_p99_ms"] = round_trips(client, a.roundtrips)
    if "blur" in phases:
        r["blur_1w_s"], r["blur_2w_s"] = blur_job(a.images, a.out, a.sigma, a.rounds)
        r["blur_speedup"] = r["blur_1w_s"] / r["blur_2w_s"]
    json.dump(r, sys.stdout)
    print()


if __name__ == "__main__":  # the worker processes are spawned: they import this file
    main()
