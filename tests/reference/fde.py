"""MUVERA FDE in numpy, written from the semantics of the reference implementation
(google/graph-mining, sketching/point_cloud/fixed_dimensional_encoding.cc) with latefold's
portable generator. float64 throughout; SimHash projections are the float64 sums of exact
products in coordinate order, the value the engine reproduces bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from . import random as rng

SIMHASH, AMS, DENSE, FINAL = 1, 2, 3, 4


@dataclass
class Config:
    dimension: int
    num_repetitions: int = 1
    num_simhash_projections: int = 0
    seed: int = 1
    projection_type: str = "identity"
    projection_dimension: Optional[int] = None
    fill_empty_partitions: bool = False
    final_projection_dimension: Optional[int] = None

    @property
    def d_proj(self) -> int:
        return self.dimension if self.projection_type == "identity" else self.projection_dimension


def stream(kind: int, repetition: int) -> int:
    return (kind << 32) | repetition


def simhash_matrix(c: Config, r: int) -> np.ndarray:
    key = rng.stream_key(c.seed, stream(SIMHASH, r))
    k = c.num_simhash_projections
    return rng.normals(key, c.dimension * k).reshape(c.dimension, k)


def projection_matrix(c: Config, r: int) -> np.ndarray:
    d, p = c.dimension, c.d_proj
    if c.projection_type == "identity":
        return np.eye(d, dtype=np.float32)
    if c.projection_type == "ams_sketch":
        w = rng.words(rng.stream_key(c.seed, stream(AMS, r)), d)
        out = np.zeros((d, p), np.float32)
        out[np.arange(d), rng.below(w, p).astype(np.int64)] = rng.sign(w)
        return out
    w = rng.words(rng.stream_key(c.seed, stream(DENSE, r)), d * p)
    return (rng.sign(w) * np.float32(1.0 / np.sqrt(float(p)))).reshape(d, p)


def final_projection(c: Config, n: int):
    w = rng.words(rng.stream_key(c.seed, stream(FINAL, 0)), n)
    return rng.below(w, c.final_projection_dimension).astype(np.int64), rng.sign(w)


def sign_patterns(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """b_j = (x . g_j > 0), summed in coordinate order in float64; b_0 most significant."""
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    acc = np.zeros((x.shape[0], g.shape[1]))
    for i in range(x.shape[1]):
        acc = acc + x64[:, i : i + 1] * g64[i : i + 1, :]
    bits = (acc > 0).astype(np.int64)
    k = g.shape[1]
    weights = 1 << np.arange(k - 1, -1, -1, dtype=np.int64)
    return bits @ weights if k else np.zeros(x.shape[0], np.int64)


def gray_index(pattern: np.ndarray, k: int) -> np.ndarray:
    """The reference's AppendToGrayCode loop over the bits, most significant first."""
    idx = np.zeros_like(pattern)
    for j in range(k):
        bit = (pattern >> (k - 1 - j)) & 1
        idx = (idx << 1) + (bit ^ (idx & 1))
    return idx


def partitions(c: Config, x: np.ndarray) -> np.ndarray:
    """(L, R) partition index of each token in each repetition."""
    k = c.num_simhash_projections
    cols = [gray_index(sign_patterns(x, simhash_matrix(c, r)), k) if k else np.zeros(len(x), np.int64)
            for r in range(c.num_repetitions)]
    return np.stack(cols, axis=1)


def encode(c: Config, x: np.ndarray, documents: bool, absolute: bool = False) -> np.ndarray:
    """The encoding of one item. With `absolute`, every token value, matrix entry and sign is
    replaced by its absolute value (same partitions): the magnitude that bounds rounding."""
    k, p = c.num_simhash_projections, c.d_proj
    fix = np.abs if absolute else (lambda a: a)
    parts = 1 << k
    x64 = fix(x.astype(np.float64))
    blocks: List[np.ndarray] = []
    for r in range(c.num_repetitions):
        patterns = sign_patterns(x, simhash_matrix(c, r)) if k else np.zeros(len(x), np.int64)
        index = gray_index(patterns, k)
        projected = x64 @ fix(projection_matrix(c, r).astype(np.float64))
        block = np.zeros((parts, p))
        sizes = np.zeros(parts, np.int64)
        for t in range(len(x)):
            block[index[t]] += projected[t]
            sizes[index[t]] += 1
        if documents:
            for q in range(parts):
                if sizes[q]:
                    block[q] /= sizes[q]
                elif c.fill_empty_partitions and k > 0:
                    wanted = q ^ (q >> 1)
                    distance = [bin(int(pt) ^ wanted).count("1") for pt in patterns]
                    block[q] = projected[int(np.argmin(distance))]  # argmin: first of the ties
        blocks.append(block.reshape(-1))
    out = np.concatenate(blocks)
    if c.final_projection_dimension:
        slots, signs = final_projection(c, out.size)
        final = np.zeros(c.final_projection_dimension)
        np.add.at(final, slots, fix(signs.astype(np.float64)) * out)
        return final
    return out
