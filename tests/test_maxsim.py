"""MaxSim against the float64 oracle, on every SIMD path.

Tolerance: reference.maxsim.error_bound, a rigorous forward-error bound of float32 inner
products, maxima and sums (γ_d + γ_(m+16) times Σ_q max_x Σ_k |q_k x_k|). It holds for any
summation order, so it covers every path; an indexing or blocking bug is off by far more
(a whole term, i.e. O(1) relative to the score). float16 inputs are widened exactly, so the
oracle sees the same values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import latefold as lf
from reference import maxsim as ref
from strategies import DIMS_AROUND_WIDTHS, ragged_pair, random_set


def assert_close(actual: np.ndarray, queries, docs) -> None:
    expected = ref.maxsim_matrix(queries, docs)
    bound = ref.bound_matrix(queries, docs)
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    err = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert np.all(err <= bound), f"pair {worst}: error {err[worst]:.3g} > bound {bound[worst]:.3g}"


@pytest.mark.parametrize("dim", DIMS_AROUND_WIDTHS + [768])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dimensions_around_vector_widths(simd, rng, dim, dtype):
    # Query lengths around the 16/32-row groups, document lengths around every tile size.
    queries = random_set(rng, [1, 5, 15, 16, 17, 31, 32, 33, 48, 65], dim, np.float32)
    docs = random_set(rng, [1, 2, 3, 7, 8, 9, 12, 13, 24, 25, 57], dim, dtype)
    assert_close(lf.maxsim(queries, docs), queries, docs)


def test_long_items(simd, rng):
    queries = random_set(rng, [300], 64, np.float32)
    docs = random_set(rng, [1, 1000, 513], 64, np.float16)
    assert_close(lf.maxsim(queries, docs), queries, docs)


@given(ragged_pair())
@settings(max_examples=40)
def test_ragged_property(pair):
    queries, docs = pair
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        try:
            assert_close(lf.maxsim(queries, docs), queries, docs)
        finally:
            lf.set_simd("best")


def test_paths_agree_with_scalar_twin(rng):
    queries = random_set(rng, [3, 32, 40], 33, np.float32)
    docs = random_set(rng, rng.integers(1, 30, 50), 33, np.float16)
    bound = ref.bound_matrix(queries, docs)
    results = {}
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        results[path] = lf.maxsim(queries, docs).astype(np.float64)
    lf.set_simd("best")
    for path, scores in results.items():
        assert np.all(np.abs(scores - results["scalar"]) <= 2 * bound), path


def test_single_query_and_single_doc_shapes(rng):
    q = random_set(rng, [7], 16, np.float32)[0]
    docs = random_set(rng, [3, 4, 5], 16, np.float32)
    scores = lf.maxsim(q, docs)
    assert scores.shape == (3,)
    assert_close(scores[None, :], [q], docs)
    one_doc = lf.maxsim([q, q], docs[0])
    assert one_doc.shape == (2, 1)


def test_multivectors_and_lists_agree(rng):
    items = random_set(rng, [4, 9, 1], 12, np.float16)
    mv = lf.MultiVectors(items)
    queries = random_set(rng, [2, 3], 12, np.float32)
    np.testing.assert_array_equal(lf.maxsim(queries, mv), lf.maxsim(queries, items))
    flat = lf.MultiVectors(np.concatenate(items), np.array([0, 4, 13, 14]))
    np.testing.assert_array_equal(lf.maxsim(queries, flat), lf.maxsim(queries, items))


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_threads_give_identical_bits(rng, threads):
    # Each pair is one kernel call whatever the split, so the bits must not depend on threads.
    queries = random_set(rng, rng.integers(1, 40, 9), 24, np.float32)
    docs = random_set(rng, rng.integers(1, 60, 300), 24, np.float16)
    base = lf.maxsim(queries, docs, threads=1)
    np.testing.assert_array_equal(lf.maxsim(queries, docs, threads=threads), base)
    cands = rng.integers(-1, 300, (9, 70))
    np.testing.assert_array_equal(
        lf.maxsim_rerank(queries, docs, cands, threads=threads),
        lf.maxsim_rerank(queries, docs, cands, threads=1),
    )


def test_rerank_matches_full_matrix(simd, rng):
    queries = random_set(rng, [5, 32, 20], 40, np.float32)
    docs = random_set(rng, rng.integers(1, 50, 80), 40, np.float16)
    full = lf.maxsim(queries, docs)
    cands = rng.integers(0, 80, (3, 130))
    cands[0, 5:9] = -1
    scores = lf.maxsim_rerank(queries, docs, cands)
    assert scores.shape == (3, 130) and scores.dtype == np.float32
    expected = np.where(cands >= 0, np.take_along_axis(full, np.maximum(cands, 0), axis=1), -np.inf)
    np.testing.assert_array_equal(scores, expected.astype(np.float32))
    single = lf.maxsim_rerank(queries[1], docs, cands[1])
    np.testing.assert_array_equal(single, scores[1])


def test_rerank_empty_candidates(rng):
    queries = random_set(rng, [3, 4], 8, np.float32)
    docs = random_set(rng, [2], 8, np.float32)
    assert lf.maxsim_rerank(queries, docs, np.zeros((2, 0), np.int64)).shape == (2, 0)


@pytest.mark.parametrize("k", [1, 5, 37, 200])
def test_topk_matches_oracle(simd, rng, k):
    queries = random_set(rng, [1, 8, 32, 45], 20, np.float32)
    docs = random_set(rng, rng.integers(1, 30, 200), 20, np.float16)
    scores, ids = lf.maxsim_topk(queries, docs, k)
    assert scores.shape == ids.shape == (4, k) and ids.dtype == np.int64
    full = lf.maxsim(queries, docs)
    exp_scores, exp_ids = ref.topk(full, k)
    np.testing.assert_array_equal(ids, exp_ids)
    np.testing.assert_array_equal(scores, exp_scores)


def test_topk_ties_broken_by_lower_id(rng):
    base = random_set(rng, [5, 6, 7], 16, np.float32)
    docs = [base[1], base[0], base[1], base[2], base[1], base[0]]  # exact duplicates tie exactly
    query = random_set(rng, [4], 16, np.float32)[0]
    scores, ids = lf.maxsim_topk(query, docs, 6, threads=2)
    full = lf.maxsim(query, docs)
    order = sorted(range(6), key=lambda i: (-full[i], i))
    np.testing.assert_array_equal(ids, order)
    assert np.all(np.diff(scores) <= 0)


def test_topk_many_threads_and_tasks(rng):
    queries = random_set(rng, rng.integers(1, 33, 13), 8, np.float32)
    docs = random_set(rng, rng.integers(1, 5, 3000), 8, np.float32)
    full = lf.maxsim(queries, docs, threads=1)
    for threads in (1, 2, 5):
        s, i = lf.maxsim_topk(queries, docs, 25, threads=threads)
        es, ei = ref.topk(full, 25)
        np.testing.assert_array_equal(i, ei)
        np.testing.assert_array_equal(s, es)


def test_real_data_matches_ground_truth():
    data = lf.datasets.load_limit_small()
    scores, ids = lf.maxsim_topk(data.queries[:50], data.docs, 10)
    queries = ref.split(np.asarray(data.queries.tokens), np.asarray(data.queries.offsets))[:50]
    docs = ref.split(np.asarray(data.docs.tokens), np.asarray(data.docs.offsets))
    exact = ref.maxsim_matrix(queries, docs)
    bound = ref.bound_matrix(queries, docs)
    got = np.take_along_axis(exact, ids, axis=1)
    best = -np.sort(-exact, axis=1)[:, :10]
    # Ranks may swap only between documents whose exact scores are within rounding of each other.
    assert np.all(np.abs(got - best) <= 2 * bound.max(axis=1, keepdims=True))
    assert np.all(np.abs(scores - got) <= bound.max(axis=1, keepdims=True))


def test_extreme_magnitudes(rng):
    # Large and tiny finite values: the result stays within the rounding bound (no overflow here).
    q = (rng.standard_normal((5, 9)) * 1e15).astype(np.float32)
    d = [(rng.standard_normal((4, 9)) * 1e15).astype(np.float32),
         (rng.standard_normal((3, 9)) * 1e-20).astype(np.float32)]
    assert_close(lf.maxsim([q], d), [q], d)


@pytest.mark.concurrency
def test_concurrent_calls_from_python_threads(rng):
    # The GIL is released during compute and the pool serves several callers at once.
    from concurrent.futures import ThreadPoolExecutor

    queries = random_set(rng, rng.integers(1, 33, 6), 32, np.float32)
    docs = random_set(rng, rng.integers(1, 40, 400), 32, np.float16)
    expected = lf.maxsim(queries, docs, threads=1)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda t: lf.maxsim(queries, docs, threads=t), [1, 2, 2, 3, 2, 1, 2, 2]))
    for r in results:
        np.testing.assert_array_equal(r, expected)
