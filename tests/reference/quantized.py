"""numpy references for int8 and bfloat16 token storage and MaxSim over it.

The int8 kernels promise the same bits on every path (integer inner products are exact), so the
reference follows their float32 steps exactly: per token v_r = scale_r * float32(<q, x_r>), the
query token's best = max_r v_r times its scale, summed over query tokens in order.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np


def quantize_int8(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(codes, scales): scale = max |x| / 127 per row (0 for a zero row), codes = x / scale
    rounded to nearest even, all in float32 as the core computes them."""
    x = np.asarray(x, np.float32)
    top = np.abs(x).max(axis=1)
    scales = (top / np.float32(127)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))
    codes = np.rint(x / safe[:, None]).clip(-127, 127).astype(np.int8)
    codes[scales == 0] = 0
    return codes, scales


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounded to nearest even."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def maxsim_int8(queries: List[np.ndarray], codes: np.ndarray, scales: np.ndarray,
                offsets: np.ndarray) -> np.ndarray:
    """The int8 kernels' scores, bit for bit: queries (float) quantized per token."""
    out = np.zeros((len(queries), len(offsets) - 1), np.float32)
    wide = codes.astype(np.int64)
    for qi, q in enumerate(queries):
        q_codes, q_scales = quantize_int8(q)
        dots = (q_codes.astype(np.int64) @ wide.T).astype(np.float32)  # exact, then float32
        values = dots * scales[None, :]                                    # float32 products
        for d in range(len(offsets) - 1):
            best = values[:, offsets[d] : offsets[d + 1]].max(axis=1) * q_scales
            total = np.float32(0)
            for v in best:  # in token order, as every path adds
                total = np.float32(total + v)
            out[qi, d] = total
    return out


def maxsim_float64(queries: List[np.ndarray], values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """MaxSim in float64 over the given (dequantized) document values."""
    out = np.zeros((len(queries), len(offsets) - 1))
    for qi, q in enumerate(queries):
        sims = np.asarray(q, np.float64) @ values.astype(np.float64).T
        for d in range(len(offsets) - 1):
            out[qi, d] = sims[:, offsets[d] : offsets[d + 1]].max(axis=1).sum()
    return out


def bfloat16_bound(queries: List[np.ndarray], values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per (query, document): the sum over query tokens of the largest sum of |products| with a
    document token: float32 sums of `dim` products err by at most dim * 2^-24 times it."""
    out = np.zeros((len(queries), len(offsets) - 1))
    for qi, q in enumerate(queries):
        mass = np.abs(np.asarray(q, np.float64)) @ np.abs(values.astype(np.float64)).T
        for d in range(len(offsets) - 1):
            out[qi, d] = mass[:, offsets[d] : offsets[d + 1]].max(axis=1).sum()
    return out
