"""Pillow on files in multiprocessing.Pool, for `ppool bench --python`.

Usage: python3 py_files.py thumbnail|blur OUTDIR WORKERS FILE...
Runs one job over the files with Pool(WORKERS), chunksize 1, and prints
"seconds S": the wall time from the Pool's start to its end (a user's
script pays both), reading every input and writing every output.

thumbnail: img.draft("RGB", (256, 256)) (libjpeg's DCT scaling, to no less
than 1/4 here), thumbnail((256, 256)) (Lanczos, reducing_gap 2), save JPEG
quality 90. blur: GaussianBlur(2), save PNG compress_level 6.
"""
import multiprocessing as mp
import os
import sys
import time

from PIL import Image, ImageFilter


def thumbnail(args):
    src, dst = args
    with Image.open(src) as img:
        img.draft("RGB", (256, 256))
        img.thumbnail((256, 256))
        img.save(dst, "JPEG", quality=90)


def blur(args):
    src, dst = args
    with Image.open(src) as img:
        img.filter(ImageFilter.GaussianBlur(2)).save(dst, "PNG", compress_level=6)


def main():
    job, outdir, workers, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    fn, ext = {"thumbnail": (thumbnail, ".jpg"), "blur": (blur, ".png")}[job]
    os.makedirs(outdir, exist_ok=True)
    pairs = [(f, os.path.join(outdir, os.path.splitext(os.path.basename(f))[0] + ext)) for f in files]
    t0 = time.perf_counter()
    with mp.Pool(workers) as pool:
        pool.map(fn, pairs, chunksize=1)
    print("seconds", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
