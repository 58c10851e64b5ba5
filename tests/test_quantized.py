"""int8 and bfloat16 token storage: lf.quantize against numpy, MultiVectors of those storages
(construction, errors, slicing, pickling), and every MaxSim entry point on every SIMD path
against numpy references: int8 bit for bit (integer inner products are exact, the float steps
are the same on every path), bfloat16 within the float32 rounding of its sums."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import latefold as lf
from reference.quantized import (bfloat16_bound, from_bfloat16_bits, maxsim_float64, maxsim_int8,
                                 quantize_int8, to_bfloat16_bits)
from strategies import random_set

KINDS = ["int8", "bfloat16"]


def ragged(rng, n, dim, max_len=40, dtype=np.float32):
    return random_set(rng, rng.integers(1, max_len + 1, n), dim, dtype)


def check_scores(kind, queries, docs_mv, got):
    """got (n_queries, n_docs) against the reference for docs_mv's storage."""
    offsets = docs_mv.offsets
    if kind == "int8":
        want = maxsim_int8(queries, docs_mv.tokens, docs_mv.scales, offsets)
        np.testing.assert_array_equal(got, want)
    else:
        values = docs_mv.values()
        rounded = [from_bfloat16_bits(to_bfloat16_bits(q)) for q in queries]
        want = maxsim_float64(rounded, values, offsets)
        # Products of bfloat16 values are exact in float32; each of the dim additions of a
        # token's inner product and the m additions of the maxima rounds once (2^-24 relative).
        dim = values.shape[1]
        bound = bfloat16_bound(rounded, values, offsets) * (dim + max(len(q) for q in queries) + 2) * 2.0**-24
        assert np.all(np.abs(got - want) <= bound + 1e-30), np.abs(got - want).max()


# --- quantize -------------------------------------------------------------------------------


def test_quantize_int8_matches_numpy(rng):
    docs = ragged(rng, 30, 37)
    docs[3][-1] = 0.0  # a token of zeros: scale 0, codes 0
    mv = lf.quantize(docs, "int8")
    codes, scales = quantize_int8(np.concatenate(docs))
    np.testing.assert_array_equal(mv.tokens, codes)
    np.testing.assert_array_equal(mv.scales, scales)
    assert mv.storage == "int8" and mv.dtype == np.int8 and mv.tokens.dtype == np.int8
    assert np.abs(mv.tokens).max() <= 127
    # Each value within half a step of its original, and the float32 rounding of x / scale that
    # chose its code (at most 127 * 2^-24 of a step): checked in float64, where code * scale is exact.
    full = np.concatenate(docs).astype(np.float64)
    error = np.abs(mv.tokens.astype(np.float64) * scales.astype(np.float64)[:, None] - full)
    assert np.all(error <= scales[:, None] * (0.5 + 127 * 2.0**-23) + 1e-30)


def test_quantize_bfloat16_matches_numpy(rng):
    docs = ragged(rng, 20, 9, dtype=np.float16)
    mv = lf.quantize(lf.MultiVectors(docs), "bfloat16")
    np.testing.assert_array_equal(mv.tokens, to_bfloat16_bits(np.concatenate(docs).astype(np.float32)))
    assert mv.storage == "bfloat16" and mv.dtype == "bfloat16" and mv.scales is None
    np.testing.assert_array_equal(mv.offsets, lf.MultiVectors(docs).offsets)


def test_quantize_rounds_halfway_to_even():
    # 1 + 2^-8 lies halfway between two bfloat16 values: it rounds to the even one, 1.0.
    x = np.array([[1 + 2.0**-8, 1 + 3 * 2.0**-8, -(1 + 2.0**-8)]], np.float32)
    bits = lf.quantize(x, "bfloat16").tokens
    np.testing.assert_array_equal(from_bfloat16_bits(bits), [[1.0, 1 + 2 * 2.0**-7, -1.0]])
    q = lf.quantize(np.array([[127.0, 0.5, 1.5, -2.5]], np.float32), "int8")
    np.testing.assert_array_equal(q.tokens, [[127, 0, 2, -2]])  # x / 1.0 rounded to even


def test_quantize_round_trip_and_errors(rng):
    docs = ragged(rng, 5, 8)
    back = lf.quantize(lf.quantize(docs, "int8"), "float32")
    assert back.storage == "float32"
    np.testing.assert_allclose(back.tokens, np.concatenate(docs), atol=np.abs(np.concatenate(docs)).max() / 254 + 1e-7)
    assert lf.quantize(docs, "float16").storage == "float16"
    with pytest.raises(ValueError, match="kind"):
        lf.quantize(docs, "int4")
    with pytest.raises(ValueError, match="item 2"):
        bad = [d.copy() for d in docs]
        bad[2][0, 0] = np.nan
        lf.quantize(bad, "int8")
    with pytest.raises(ValueError, match="too large for bfloat16"):
        lf.quantize(np.array([[3.4e38]], np.float32), "bfloat16")


# --- MultiVectors of int8 / bfloat16 ----------------------------------------------------------


def test_multivectors_int8_construction_and_errors(rng):
    codes = rng.integers(-127, 128, (10, 4)).astype(np.int8)
    scales = rng.uniform(0.01, 1, 10).astype(np.float32)
    mv = lf.MultiVectors(codes, [0, 3, 10], scales=scales)
    assert len(mv) == 2 and mv.dim == 4 and mv.storage == "int8"
    np.testing.assert_allclose(mv[1], codes[3:].astype(np.float32) * scales[3:, None])
    assert mv.nbytes == codes.nbytes + scales.nbytes + 3 * 8
    with pytest.raises(ValueError, match="need scales"):
        lf.MultiVectors(codes, [0, 10])
    with pytest.raises(TypeError, match="one value per token"):
        lf.MultiVectors(codes, [0, 10], scales=scales[:5])
    with pytest.raises(TypeError, match="float32"):
        lf.MultiVectors(codes, [0, 10], scales=np.ones(10, np.int32))
    with pytest.raises(ValueError, match="item 1"):
        s = scales.copy()
        s[4] = np.inf
        lf.MultiVectors(codes, [0, 3, 10], scales=s)
    with pytest.raises(ValueError, match="scales are for int8"):
        lf.MultiVectors(codes.view(np.uint8).astype(np.uint16), [0, 10], scales=scales, dtype="bfloat16")
    with pytest.raises(ValueError, match="offsets"):
        lf.MultiVectors(codes, [0, 11], scales=scales)
    with pytest.raises(ValueError, match="int8 and bfloat16"):
        lf.MultiVectors(codes.astype(np.float32), [0, 10], dtype="float32")
    # The caller's arrays can change afterwards: the set keeps its own offsets and scales.
    offsets = np.array([0, 3, 10])
    mv = lf.MultiVectors(codes, offsets, scales=scales.copy())
    offsets[1] = 5
    assert mv.offsets[1] == 3


def test_multivectors_bfloat16_construction_and_errors(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    bits = to_bfloat16_bits(x)
    mv = lf.MultiVectors(bits, [0, 2, 6], dtype="bfloat16")
    np.testing.assert_array_equal(mv[1], from_bfloat16_bits(bits[2:]))
    bad = bits.copy()
    bad[3, 1] = 0x7FC0  # NaN
    with pytest.raises(ValueError, match="item 1"):
        lf.MultiVectors(bad, [0, 2, 6], dtype="bfloat16")
    with pytest.raises(TypeError, match="uint16"):
        lf.MultiVectors(x, [0, 6], dtype="bfloat16")


@pytest.mark.parametrize("kind", KINDS)
def test_quantized_slicing_indexing_pickling(rng, kind):
    docs = ragged(rng, 12, 16)
    mv = lf.quantize(docs, kind)
    part = mv[3:7]
    assert part.storage == kind and len(part) == 4
    np.testing.assert_array_equal(part[0], mv[3])
    picked = mv[[5, 1, -1]]
    np.testing.assert_array_equal(picked[2], mv[11])
    np.testing.assert_array_equal(picked.values(), np.concatenate([mv[5], mv[1], mv[11]]))
    for other in (pickle.loads(pickle.dumps(mv)), copy.deepcopy(mv), copy.copy(mv)):
        assert other.storage == kind
        np.testing.assert_array_equal(other.tokens, mv.tokens)
        np.testing.assert_array_equal(other.offsets, mv.offsets)
        if kind == "int8":
            np.testing.assert_array_equal(other.scales, mv.scales)
    q = ragged(rng, 2, 16)
    np.testing.assert_array_equal(lf.maxsim(q, pickle.loads(pickle.dumps(mv))), lf.maxsim(q, mv))
    again = lf.MultiVectors(mv)  # the same storage, arrays shared (read-only)
    assert again.storage == kind and again.tokens is mv.tokens
    with pytest.raises(ValueError):
        mv[0][0, 0] = 1.0  # read-only


# --- MaxSim over int8 / bfloat16 documents, every path ----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_maxsim_entry_points_every_path(rng, simd, kind):
    dim = int(rng.choice([7, 64, 96, 128, 130]))
    queries = ragged(rng, 4, dim, max_len=40)
    docs = lf.quantize(ragged(rng, 30, dim, max_len=50), kind)
    scores = lf.maxsim(queries, docs)
    check_scores(kind, queries, docs, scores)
    candidates = rng.integers(-1, len(docs), (4, 9))
    reranked = lf.maxsim_rerank(queries, docs, candidates)
    want = np.where(candidates >= 0, np.take_along_axis(scores, np.maximum(candidates, 0), 1), -np.inf)
    np.testing.assert_array_equal(reranked, want)
    top_scores, top_ids = lf.maxsim_topk(queries, docs, k=5)
    order = np.lexsort((np.arange(len(docs))[None, :].repeat(4, 0), -scores))[:, :5]
    np.testing.assert_array_equal(top_ids, order)
    np.testing.assert_array_equal(top_scores, np.take_along_axis(scores, order, 1))
    # One 2-D query, threads.
    np.testing.assert_array_equal(lf.maxsim(queries[0], docs, threads=2), scores[0])


@settings(max_examples=30)
@given(
    dim=st.sampled_from([1, 3, 4, 5, 16, 31, 32, 33, 63, 64, 65, 100, 128, 200]),
    q_lengths=st.lists(st.integers(1, 70), min_size=1, max_size=4),
    d_lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    kind=st.sampled_from(KINDS),
    query_dtype=st.sampled_from([np.float32, np.float16, "int8"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_maxsim_shapes_property(dim, q_lengths, d_lengths, kind, query_dtype, seed):
    rng = np.random.default_rng(seed)
    queries = random_set(rng, q_lengths, dim, np.float32)
    docs = lf.quantize(random_set(rng, d_lengths, dim, np.float32), kind)
    if query_dtype == "int8":  # queries in any storage: read as their float values
        q_mv = lf.quantize(queries, "int8")
        queries = [q_mv[i] for i in range(len(q_mv))]
        got = lf.maxsim(q_mv, docs)
    else:
        queries = [q.astype(query_dtype).astype(np.float32) for q in queries]
        got = lf.maxsim([q.astype(query_dtype) for q in queries], docs)
    check_scores(kind, queries, docs, got)
    previous = lf.simd_info()["active"]
    try:  # every path gives these scores (int8: the same bits)
        for path in lf.simd_info()["supported"]:
            lf.set_simd(path)
            again = lf.maxsim(queries, docs)
            if kind == "int8":
                np.testing.assert_array_equal(again, got)
            else:
                check_scores(kind, queries, docs, again)
    finally:
        lf.set_simd(previous)


@pytest.mark.parametrize("kind", KINDS)
def test_quantized_scores_close_to_float(rng, kind):
    """The storage's own error: scores on unit-norm tokens stay within a few per mille of float32."""
    queries = ragged(rng, 8, 128, max_len=32)
    floats = lf.MultiVectors(ragged(rng, 200, 128, max_len=80))
    exact = lf.maxsim(queries, floats)
    got = lf.maxsim(queries, lf.quantize(floats, kind))
    per_token = np.abs(got - exact) / np.array([[len(q)] for q in queries])
    # Unit-norm 128-d tokens: int8 rounding gives ~|x|/254 per value, bfloat16 2^-9 relative.
    assert per_token.max() < (0.02 if kind == "int8" else 0.01), per_token.max()


def test_quantized_docs_bad_input(rng):
    docs = lf.quantize(ragged(rng, 3, 8), "int8")
    with pytest.raises(ValueError, match="dimension"):
        lf.maxsim(ragged(rng, 1, 9), docs)
    with pytest.raises(ValueError, match="k = 4"):
        lf.maxsim_topk(ragged(rng, 1, 8), docs, k=4)
    with pytest.raises(ValueError, match="candidates"):
        lf.maxsim_rerank(ragged(rng, 1, 8), docs, [[3]])
    bad = ragged(rng, 2, 8)
    bad[1][0, 0] = np.inf
    with pytest.raises(ValueError, match="queries: item 1"):
        lf.maxsim(bad, docs)


def test_fde_reads_quantized_docs(rng):
    docs = ragged(rng, 10, 16)
    mv = lf.quantize(docs, "int8")
    fde = lf.FDE(16, num_repetitions=2, num_simhash_projections=2, seed=1)
    np.testing.assert_allclose(fde.encode_documents(mv), fde.encode_documents(lf.quantize(mv, "float32")),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_index_takes_quantized_sets_as_their_values(rng, kind):
    """MultiVectorIndex stores its own token storage: int8 / bfloat16 input is read as its values."""
    docs = lf.quantize(ragged(rng, 30, 16, max_len=12), kind)
    values = lf.MultiVectors([docs[i] for i in range(len(docs))])
    a, b = lf.MultiVectorIndex(16, token_storage="float32"), lf.MultiVectorIndex(16, token_storage="float32")
    a.add(docs)
    b.add(values)
    for i in range(len(docs)):
        np.testing.assert_array_equal(a.get(i), b.get(i))
    queries = lf.quantize(ragged(rng, 3, 16), kind)
    as_floats = lf.MultiVectors([queries[i] for i in range(len(queries))])
    np.testing.assert_array_equal(a.search(queries, 5, exact=True)[1], b.search(as_floats, 5, exact=True)[1])


@pytest.mark.parametrize("kind", KINDS)
def test_index_token_storage(rng, tmp_path, kind):
    """MultiVectorIndex(token_storage=int8 | bfloat16): stored as lf.quantize stores, the exact
    search is maxsim_topk over those documents bit for bit, through save / mmap load, deletes
    and compaction; pooling converts its pooled tokens the same way."""
    docs = ragged(rng, 120, 24, max_len=30)
    queries = ragged(rng, 4, 24)
    index = lf.MultiVectorIndex(24, token_storage=kind, centroids=32)
    index.add(docs)
    stored = lf.quantize(docs, kind)
    want_scores, want_ids = lf.maxsim_topk(queries, stored, k=7)
    scores, ids = index.search(queries, 7, exact=True)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    np.testing.assert_array_equal(index.get(5), stored[5])
    got_scores, got_ids = index.search(queries, 7)  # the staged search scores with the same kernel
    for q in range(len(queries)):
        for s, i in zip(got_scores[q], got_ids[q]):
            assert s == lf.maxsim(queries[q], stored[[int(i)]])[0]
    assert index.stats()["token_bytes"] == stored.tokens.nbytes + (0 if stored.scales is None else stored.scales.nbytes)
    index.save(tmp_path / "i.lf")
    for loaded in (lf.MultiVectorIndex.load(tmp_path / "i.lf", mmap=True), pickle.loads(pickle.dumps(index))):
        np.testing.assert_array_equal(loaded.search(queries, 7, exact=True)[0], scores)
    index.delete(list(range(0, 60)))
    index.compact()
    keep = np.arange(60, 120)
    sub_scores, sub_ids = lf.maxsim_topk(queries, stored[keep], k=7)
    scores, ids = index.search(queries, 7, exact=True)
    np.testing.assert_array_equal(ids, keep[sub_ids])
    np.testing.assert_array_equal(scores, sub_scores)
    index.add(docs[:3], ids=[1000, 1001, 1002])  # after compaction and alongside
    np.testing.assert_array_equal(index.get(1001), stored[1])
    pooled = lf.MultiVectorIndex(24, token_storage=kind, pool_factor=2, centroids=0)
    pooled.add(docs[:10])
    assert pooled.get(0).shape[0] == (len(docs[0]) + 1) // 2
    with pytest.raises(ValueError, match="token_storage"):
        lf.MultiVectorIndex(24, token_storage="int4")
