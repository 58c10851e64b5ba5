"""float64 numpy oracles for k-means and product quantization."""

from __future__ import annotations

import numpy as np


def lloyd(x: np.ndarray, centroids: np.ndarray, iterations: int):
    """Plain Lloyd's k-means in float64 from the given centroids (empty clusters keep theirs)."""
    x = x.astype(np.float64)
    c = centroids.astype(np.float64).copy()
    for _ in range(iterations):
        d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        a = d.argmin(1)
        for j in range(len(c)):
            if (a == j).any():
                c[j] = x[a == j].mean(0)
    d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    return c, float(d.min(1).sum())


def objective(x: np.ndarray, c: np.ndarray) -> float:
    d = ((x.astype(np.float64)[:, None, :] - c.astype(np.float64)[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).sum())


def split_codes(codes: np.ndarray, m: int, nbits: int) -> np.ndarray:
    """(n, m) centroid indices from packed codes."""
    if nbits == 8:
        return codes.astype(np.int64)
    low, high = codes & 15, codes >> 4
    return np.stack([low, high], axis=2).reshape(len(codes), -1)[:, :m].astype(np.int64)


def decode(centroids, bounds, index: np.ndarray) -> np.ndarray:
    return np.concatenate([centroids[s][index[:, s]] for s in range(len(centroids))], axis=1)


def lut(centroids, bounds, queries: np.ndarray, metric: str) -> np.ndarray:
    q = queries.astype(np.float64)
    tables = []
    for s, c in enumerate(centroids):
        sub = q[:, bounds[s]:bounds[s + 1]]
        c64 = c.astype(np.float64)
        tables.append(sub @ c64.T if metric == "ip" else ((sub[:, None, :] - c64[None]) ** 2).sum(-1))
    return np.stack(tables, axis=1)  # (nq, m, ksub)


def adc(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(nq, n) scores: sum over s of table[q, s, index[i, s]]."""
    m = index.shape[1]
    return sum(table[:, s, :][:, index[:, s]] for s in range(m))


ROTATION_STREAM = 8 << 32  # cpp/src/pq_rotation.cc


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """The quantizer's rotation="random" in float64: numpy's QR of the latefold-rng-v1 Gaussian
    matrix (row-major), columns multiplied by the signs of R's diagonal (Mezzadri 2007)."""
    from . import random
    gaussian = random.normals(random.stream_key(seed, ROTATION_STREAM), dim * dim).reshape(dim, dim)
    q, r = np.linalg.qr(gaussian.astype(np.float64))
    return q * np.sign(np.diag(r))
