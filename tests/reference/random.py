"""latefold-rng-v1 in numpy (the specification is in cpp/include/latefold/random.h)."""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def mix64(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int) -> np.uint64:
    with np.errstate(over="ignore"):
        first = mix64(np.uint64(seed % 2**64) + GOLDEN)
    return np.uint64(mix64(first ^ np.uint64(stream)))


def words(key, count: int, start: int = 0) -> np.ndarray:
    index = np.arange(start, start + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(np.uint64(key) + (index + np.uint64(1)) * GOLDEN)


def unit(w: np.ndarray) -> np.ndarray:
    return (w >> np.uint64(11)).astype(np.float64) * 2.0**-53


def below(w: np.ndarray, n: int) -> np.ndarray:
    return ((w >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)


def sign(w: np.ndarray) -> np.ndarray:
    return np.where((w & np.uint64(1)) == 1, np.float32(1.0), np.float32(-1.0))


def log_v1(s: np.ndarray) -> np.ndarray:
    """The same sequence of IEEE operations as random::log_v1."""
    m, e = np.frexp(s)
    low = m < 0.70710678118654752440
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e)
    f = (m - 1.0) / (m + 1.0)
    f2 = f * f
    series = np.full_like(f, 1.0 / 23.0)
    for n in range(21, 0, -2):
        series = series * f2 + 1.0 / n
    return e.astype(np.float64) * 0.69314718055994530942 + 2.0 * f * series


def normals(key, count: int) -> np.ndarray:
    out = []
    have, start = 0, 0
    while have < count:
        batch = max(64, count)  # pairs
        w = words(key, 2 * batch, 2 * start)
        u = 2.0 * unit(w[0::2]) - 1.0
        v = 2.0 * unit(w[1::2]) - 1.0
        s = u * u + v * v
        ok = (s != 0.0) & (s < 1.0)
        u, v, s = u[ok], v[ok], s[ok]
        f = np.sqrt(-2.0 * log_v1(s) / s)
        pairs = np.stack([u * f, v * f], axis=1).reshape(-1).astype(np.float32)
        out.append(pairs)
        have += pairs.size
        start += batch
    return np.concatenate(out)[:count]
