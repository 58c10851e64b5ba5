"""numpy references of token pooling and query ball carving (cpp/include/latefold/pooling.h),
written from their definitions: float64, quadratic or cubic, for small inputs."""

from __future__ import annotations

import numpy as np


def pool_tokens(rows: np.ndarray, target: int) -> np.ndarray:
    """Merge the two clusters whose sums have the largest cosine (ties: lowest index pair, the
    lower index first) until `target` remain; clusters in the order of their first token, each
    the mean of its tokens."""
    x = rows.astype(np.float64)
    clusters = [[i] for i in range(len(x))]
    sums = [x[i].copy() for i in range(len(x))]
    while len(clusters) > target:
        best, pair = -np.inf, None
        order = sorted(range(len(clusters)), key=lambda c: min(clusters[c]))
        for a in order:
            for b in order:
                if a == b:
                    continue
                na, nb = np.linalg.norm(sums[a]), np.linalg.norm(sums[b])
                cos = sums[a] @ sums[b] / (na * nb) if na * nb > 0 else 0.0
                key = (min(clusters[a]), min(clusters[b]))
                if cos > best or (cos == best and pair is not None and key < pair[0]):
                    best, pair = cos, (key, a, b)
        _, a, b = pair
        a, b = (a, b) if min(clusters[a]) < min(clusters[b]) else (b, a)
        clusters[a] += clusters[b]
        sums[a] = sums[a] + sums[b]
        del clusters[b], sums[b]
    order = sorted(range(len(clusters)), key=lambda c: min(clusters[c]))
    return np.stack([sums[c] / len(clusters[c]) for c in order])


def carve_query(rows: np.ndarray, tau: float) -> np.ndarray:
    centres, balls = [], []
    for q in rows.astype(np.float64):
        for i, c in enumerate(centres):
            if q @ c >= tau:
                balls[i] = balls[i] + q
                break
        else:
            centres.append(q)
            balls.append(q.copy())
    return np.stack(balls)
