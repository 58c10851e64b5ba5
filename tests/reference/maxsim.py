"""float64 numpy oracles for MaxSim, and the rounding bound the float32 kernels must meet."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

UNIT_ROUNDOFF_F32 = 2.0**-24


def maxsim_pair(query: np.ndarray, doc: np.ndarray) -> float:
    """Σ_q max_x <q, x> in float64 (float16/float32 inputs are exactly representable)."""
    return float((query.astype(np.float64) @ doc.astype(np.float64).T).max(axis=1).sum())


def maxsim_matrix(queries: Sequence[np.ndarray], docs: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([[maxsim_pair(q, d) for d in docs] for q in queries], dtype=np.float64)


def error_bound(query: np.ndarray, doc: np.ndarray) -> float:
    """A rigorous bound on |float32 MaxSim - exact MaxSim| for any summation order.

    Each inner product of d terms computed in float32 (with or without FMA) is off by at most
    γ_d · Σ_k |q_k x_k| (γ_n = n·u / (1 - n·u), u = 2^-24); a max is off by at most the largest
    error among its candidates; the sum of the m per-token maxima (the kernels add up to 15 zero
    padding lanes, which are exact) adds γ_(m+16) relative to Σ |max|. Hence
    |err| <= (γ_d + γ_(m+16) + γ_d·γ_(m+16)) · Σ_q max_x Σ_k |q_k x_k|.
    """
    q = np.abs(query.astype(np.float64))
    x = np.abs(doc.astype(np.float64))
    magnitude = float((q @ x.T).max(axis=1).sum())
    d, m = query.shape[1], query.shape[0] + 16

    def gamma(n: int) -> float:
        return n * UNIT_ROUNDOFF_F32 / (1 - n * UNIT_ROUNDOFF_F32)

    g = gamma(d) + gamma(m) + gamma(d) * gamma(m)
    return g * magnitude + 1e-30


def bound_matrix(queries: Sequence[np.ndarray], docs: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([[error_bound(q, d) for d in docs] for q in queries], dtype=np.float64)


def topk(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k per row, higher score first, ties by lower column."""
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def split(tokens: np.ndarray, offsets: np.ndarray) -> List[np.ndarray]:
    return [tokens[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
