"""Writes the NumPy fixtures the matrix tests read.

Run from this folder with a system NumPy (on Debian: apt-get install
python3-numpy):

    /usr/bin/python3 make_fixtures.py

It is deterministic: running it again rewrites the same bytes.
"""

import json
import os

import numpy as np

np.set_printoptions(precision=17)
os.makedirs("npy", exist_ok=True)
os.makedirs("bad", exist_ok=True)
os.makedirs("linalg", exist_ok=True)


def save(path, array, version=None):
    with open(path, "wb") as f:
        if version is None:
            np.save(f, array, allow_pickle=True)
        else:
            np.lib.format.write_array(f, array, version=version, allow_pickle=True)


# dtypes: every supported type, both byte orders, C and Fortran order.
floats = np.array([[0, -1.5, 2.25, 1024], [0.1, -7, 1e-3, 3.5], [-0.0, 65504, -2, 1 / 3]])
signed = np.array([[0, -1, 0, 0], [5, -100, 42, 7], [1, 2, 3, -3]])
unsigned = np.array([[0, 1, 0, 0], [5, 100, 42, 7], [1, 2, 3, 250]])
bools = np.array([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=bool)
for name in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"]:
    kind, size = name[0], int(name[1])
    if kind == "f":
        base = floats.astype(name)
    elif kind == "i":
        base = signed.astype(name)
        info = np.iinfo(name)
        base[0, 2], base[0, 3] = info.max, info.min
    elif kind == "u":
        base = unsigned.astype(name)
        base[0, 2] = np.iinfo(name).max
    else:
        base = bools
    save(f"npy/want_{name}.npy", base.astype("<f8"))
    orders = "<>" if size > 1 else "|"
    for order in orders:
        typed = base.astype(np.dtype(name).newbyteorder(order) if size > 1 else name)
        endian = {"<": "le", ">": "be", "|": "na"}[order]
        save(f"npy/{name}_{endian}_c.npy", np.ascontiguousarray(typed))
        save(f"npy/{name}_{endian}_f.npy", np.asfortranarray(typed))

save("npy/special_f8.npy", np.array([[np.nan, np.inf], [-np.inf, 5e-324]]))
save("npy/vector_f8.npy", np.array([1.5, -2.0, 3.25, 4.0, 1e300]))
save("npy/v2_f8.npy", floats, version=(2, 0))
save("npy/v3_f8.npy", floats, version=(3, 0))

# Arrays the reader must refuse with a clear error.
save("bad/3d.npy", np.zeros((2, 3, 4)))
save("bad/scalar.npy", np.float64(1.5))
save("bad/empty.npy", np.zeros((0, 3)))
save("bad/complex.npy", np.array([[1 + 2j, 3]]))
save("bad/object.npy", np.array([{"a": 1}, None], dtype=object))
save("bad/string.npy", np.array(["ab", "c"]))
save("bad/structured.npy", np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4")]))
save("bad/datetime.npy", np.array(["2024-01-01"], dtype="datetime64[s]"))
with open("bad/truncated.npy", "wb") as f:
    with open("npy/f8_le_c.npy", "rb") as src:
        f.write(src.read()[:-5])

# Random(rows, cols, seed) as documented, computed here independently of Go:
# PCG-DXSM (128-bit LCG state seeded hi=seed, lo=0; the multiplier and
# increment of Go's math/rand/v2 and pcg-cpp), each value float64(x>>11)/2**53.
def pcg_dxsm(seed_hi, seed_lo):
    mask64 = (1 << 64) - 1
    mul = (2549297995355413924 << 64) | 4865540595714422341
    inc = (6364136223846793005 << 64) | 1442695040888963407
    state = (seed_hi << 64) | seed_lo
    while True:
        state = (state * mul + inc) & ((1 << 128) - 1)
        hi, lo = state >> 64, state & mask64
        hi ^= hi >> 32
        hi = (hi * 0xDA942042E4DD58B5) & mask64
        hi ^= hi >> 48
        hi = (hi * (lo | 1)) & mask64
        yield hi


source = pcg_dxsm(42, 0)
save("npy/random_3x4_seed42.npy", np.array([[(next(source) >> 11) / 2**53 for _ in range(4)] for _ in range(3)]))

# Linear algebra results from NumPy (LAPACK via OpenBLAS), compared at 1e-9.
rng = np.random.default_rng(20240601)
a = rng.uniform(-1, 1, (5, 7))
b = rng.uniform(-1, 1, (7, 4))
save("linalg/mul_a.npy", a)
save("linalg/mul_b.npy", b)
save("linalg/mul_c.npy", a @ b)

square = rng.uniform(-1, 1, (6, 6)) + 3 * np.eye(6)
rhs = rng.uniform(-1, 1, (6, 3))
save("linalg/square.npy", square)
save("linalg/inverse.npy", np.linalg.inv(square))
save("linalg/rhs.npy", rhs)
save("linalg/solve.npy", np.linalg.solve(square, rhs))

# Large enough for the blocked LU (block size 64), whose updates run in the
# BLAS backend's Dgemm and Dtrsm.
big = rng.uniform(-1, 1, (96, 96)) + 10 * np.eye(96)
big_rhs = rng.uniform(-1, 1, (96, 5))
save("linalg/big_square.npy", big)
save("linalg/big_inverse.npy", np.linalg.inv(big))
save("linalg/big_rhs.npy", big_rhs)
save("linalg/big_solve.npy", np.linalg.solve(big, big_rhs))
save("linalg/big_product.npy", big @ big_rhs)

tall = rng.uniform(-1, 1, (7, 5))
u, s, vh = np.linalg.svd(tall, full_matrices=False)
save("linalg/svd_a.npy", tall)
save("linalg/svd_s.npy", s)
save("linalg/svd_u.npy", u)
save("linalg/svd_vh.npy", vh)

g = rng.uniform(-1, 1, (6, 6))
sym = (g + g.T) / 2
w, v = np.linalg.eigh(sym)
save("linalg/eigh_a.npy", sym)
save("linalg/eigh_w.npy", w)
save("linalg/eigh_v.npy", v)

general = rng.uniform(-1, 1, (6, 6))
w = np.linalg.eigvals(general)
save("linalg/eig_a.npy", general)
save("linalg/eig_w.npy", np.stack([w.real, w.imag], axis=1))

m = rng.uniform(-10, 10, (4, 5))
save("linalg/stats_a.npy", m)
with open("linalg/stats.json", "w") as f:
    json.dump(
        {
            "rows": m.shape[0],
            "cols": m.shape[1],
            "sum": m.sum(),
            "mean": m.mean(),
            "min": m.min(),
            "max": m.max(),
            "norm_frobenius": np.linalg.norm(m, "fro"),
            "norm_1": np.linalg.norm(m, 1),
            "norm_inf": np.linalg.norm(m, np.inf),
            "per_row": {
                "sum": m.sum(axis=1).tolist(),
                "mean": m.mean(axis=1).tolist(),
                "min": m.min(axis=1).tolist(),
                "max": m.max(axis=1).tolist(),
            },
            "per_col": {
                "sum": m.sum(axis=0).tolist(),
                "mean": m.mean(axis=0).tolist(),
                "min": m.min(axis=0).tolist(),
                "max": m.max(axis=0).tolist(),
            },
        },
        f,
        indent=1,
        sort_keys=True,
    )
    f.write("\n")
