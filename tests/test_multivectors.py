"""lf.MultiVectors: construction paths, zero-copy, properties, validation."""

from __future__ import annotations

import numpy as np
import pytest

import latefold as lf


def test_flat_layout_is_zero_copy(rng):
    # The tokens are used in place; the offsets (n + 1 integers) are copied, so that a change
    # to the caller's array cannot reach a call that checked them.
    tokens = rng.standard_normal((10, 4)).astype(np.float16)
    offsets = np.array([0, 3, 3 + 5, 10], dtype=np.int64)
    mv = lf.MultiVectors(tokens, offsets)
    assert np.shares_memory(mv.tokens, tokens) and not np.shares_memory(mv.offsets, offsets)
    assert len(mv) == 3 and mv.dim == 4 and mv.dtype == np.float16
    np.testing.assert_array_equal(mv.lengths, [3, 5, 2])
    np.testing.assert_array_equal(mv[1], tokens[3:8])
    np.testing.assert_array_equal(mv[-1], tokens[8:])
    assert mv.nbytes == tokens.nbytes + offsets.nbytes
    assert not mv.tokens.flags.writeable and not mv[0].flags.writeable
    assert tokens.flags.writeable  # the caller's array is left as it was


def test_from_list_and_single_array(rng):
    items = [rng.standard_normal((n, 6)).astype(np.float32) for n in (2, 1, 4)]
    mv = lf.MultiVectors(items)
    assert len(mv) == 3 and mv.tokens.shape == (7, 6)
    for a, b in zip(mv, items):
        np.testing.assert_array_equal(a, b)
    single = lf.MultiVectors(items[2])
    assert len(single) == 1 and np.shares_memory(single.tokens, items[2])


def test_mixed_dtypes_widen_to_float32(rng):
    items = [rng.standard_normal((2, 3)).astype(np.float16), rng.standard_normal((1, 3)).astype(np.float32)]
    mv = lf.MultiVectors(items)
    assert mv.dtype == np.float32
    np.testing.assert_array_equal(mv[0], items[0].astype(np.float32))


def test_offsets_of_other_integer_types(rng):
    tokens = rng.standard_normal((5, 2)).astype(np.float32)
    mv = lf.MultiVectors(tokens, np.array([0, 2, 5], dtype=np.int32))
    assert mv.offsets.dtype == np.int64 and len(mv) == 2


def test_slicing_and_selection(rng):
    items = [rng.standard_normal((n, 3)).astype(np.float32) for n in (1, 2, 3, 4, 5)]
    mv = lf.MultiVectors(items)
    part = mv[1:4]
    assert len(part) == 3 and np.shares_memory(part.tokens, mv.tokens)
    np.testing.assert_array_equal(part[0], items[1])
    np.testing.assert_array_equal(part.offsets, [0, 2, 5, 9])
    picked = mv[[4, 0]]
    np.testing.assert_array_equal(picked[0], items[4])
    np.testing.assert_array_equal(mv[::2][2], items[4])
    assert len(mv[3:1]) == 0
    with pytest.raises(IndexError):
        mv[5]
    with pytest.raises(IndexError):
        mv[[0, 9]]
    with pytest.raises(TypeError):
        mv["a"]


def test_empty_set_is_allowed():
    mv = lf.MultiVectors(np.zeros((0, 5), np.float32), [0])
    assert len(mv) == 0
    scores = lf.maxsim([np.ones((2, 5), np.float32)], mv)
    assert scores.shape == (1, 0)


@pytest.mark.parametrize(
    "tokens, offsets, error, words",
    [
        (np.zeros((4, 2), np.float32), [1, 4], ValueError, r"offsets\[0\]"),
        (np.zeros((4, 2), np.float32), [0, 3, 2, 4], ValueError, "non-decreasing"),
        (np.zeros((4, 2), np.float32), [0, 2, 2, 4], ValueError, "item 1 is empty"),
        (np.zeros((4, 2), np.float32), [0, 2, 5], ValueError, "offsets"),
        (np.zeros((4, 2), np.float32), [0, 2, 3], ValueError, "offsets"),
        (np.zeros((4, 2), np.float32), [], ValueError, "offsets"),
        (np.zeros((4, 2), np.float32), [[0, 4]], ValueError, "1-D"),
        (np.zeros((4, 2), np.float32), [0.0, 4.0], TypeError, "offsets"),
        (np.zeros((4, 2), np.float64), [0, 4], TypeError, "float64"),
        (np.zeros((4, 2), np.complex64), [0, 4], TypeError, "complex"),
        (np.zeros((4, 0), np.float32), [0, 4], ValueError, "dimension"),
        (np.zeros((4, 2, 1), np.float32), [0, 4], ValueError, "2-D"),
        (np.full((4, 2), np.inf, np.float32), [0, 1, 4], ValueError, r"item 0 \(token 0\)"),
    ],
)
def test_bad_construction(tokens, offsets, error, words):
    before = tokens.copy()
    with pytest.raises(error, match=words):
        lf.MultiVectors(tokens, offsets)
    np.testing.assert_array_equal(before, tokens)


def test_nan_position_is_reported():
    tokens = np.ones((10, 3), np.float16)
    tokens[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"item 2 \(token 1\)"):
        lf.MultiVectors(tokens, [0, 3, 6, 10])


def test_bad_list_items(rng):
    with pytest.raises(ValueError, match="item 1 has dimension 3"):
        lf.MultiVectors([np.zeros((1, 2), np.float32), np.zeros((1, 3), np.float32)])
    with pytest.raises(ValueError, match="item 0"):
        lf.MultiVectors([np.zeros(3, np.float32)])
    with pytest.raises(TypeError):
        lf.MultiVectors(3.0)
    with pytest.raises(TypeError):
        lf.MultiVectors(lf.MultiVectors(np.ones((1, 1), np.float32)), [0, 1])
