"""hypothesis strategies: ragged token sets of any dimension, float32 or float16."""

from __future__ import annotations

from typing import List

import numpy as np
from hypothesis import strategies as st

DIMS_AROUND_WIDTHS = [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128]


def random_set(rng: np.random.Generator, lengths, dim: int, dtype) -> List[np.ndarray]:
    """Items of the given lengths; L2-normalised like real embeddings, with a random scale."""
    items = []
    for n in lengths:
        x = rng.standard_normal((int(n), dim))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        items.append((x * rng.uniform(0.5, 2.0)).astype(dtype))
    return items


@st.composite
def ragged_pair(draw, max_items: int = 6, max_len: int = 40, dims=None):
    """(queries, docs, seed): two ragged sets of a common dimension and dtype choice each."""
    dim = draw(st.sampled_from(dims or DIMS_AROUND_WIDTHS) | st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    q_lengths = draw(st.lists(st.integers(1, max_len), min_size=1, max_size=max_items))
    d_lengths = draw(st.lists(st.integers(1, max_len), min_size=1, max_size=max_items))
    q_dtype = draw(st.sampled_from([np.float32, np.float16]))
    d_dtype = draw(st.sampled_from([np.float32, np.float16]))
    rng = np.random.default_rng(seed)
    return random_set(rng, q_lengths, dim, q_dtype), random_set(rng, d_lengths, dim, d_dtype)
