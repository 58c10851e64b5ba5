"""Lists of token arrays, read where they lie through a table of addresses (no copy of the corpus):
the bits of the equivalent MultiVectors from every entry point that takes them, items the core
cannot read in place copied alone, errors that name the item, a list changed by another thread
during a call, and the memory a call takes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import latefold as lf
from latefold import _core, _validate
from strategies import random_set


class ArrayLike:
    """Not an ndarray: converted by np.asarray (the item is copied alone)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array


def misaligned(x: np.ndarray) -> np.ndarray:
    raw = np.zeros(x.nbytes + 1, np.uint8)
    y = raw[1:].view(x.dtype).reshape(x.shape)
    y[...] = x
    return y


def read_only(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y.flags.writeable = False
    return y


def padded_columns(x: np.ndarray) -> np.ndarray:
    wide = np.zeros((x.shape[0], x.shape[1] + 3), x.dtype)
    wide[:, : x.shape[1]] = x
    return wide[:, : x.shape[1]]


# Layouts that keep the values: read in place (the first three) or copied alone.
LAYOUTS = {
    "contiguous": lambda x: x,
    "read-only": read_only,
    "view": lambda x: np.concatenate([x, x])[: len(x)],
    "strided rows": lambda x: np.repeat(x, 2, axis=0)[::2],
    "padded columns": padded_columns,
    "fortran": np.asfortranarray,
    "negative stride": lambda x: x[::-1].copy()[::-1],
    "misaligned": misaligned,
    "array-like": ArrayLike,
}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@st.composite
def ragged_lists(draw):
    """(queries, docs): lists of a common dimension, each item of its own dtype and layout."""
    dim = draw(st.sampled_from([1, 3, 8, 16, 17, 33, 64]) | st.integers(1, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def items(max_items):
        lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=max_items))
        dtypes = draw(st.lists(st.sampled_from([np.float32, np.float16]), min_size=len(lengths),
                               max_size=len(lengths)))
        layouts = draw(st.lists(st.sampled_from(sorted(LAYOUTS)), min_size=len(lengths), max_size=len(lengths)))
        values = [random_set(rng, [n], dim, t)[0] for n, t in zip(lengths, dtypes)]
        return values, [LAYOUTS[name](x) for name, x in zip(layouts, values)]

    return items(5), items(12)


def every_result(queries, docs, k, candidates, fde):
    return {
        "maxsim": lf.maxsim(queries, docs),
        "maxsim_topk": lf.maxsim_topk(queries, docs, k),
        "maxsim_rerank": lf.maxsim_rerank(queries, docs, candidates),
        "encode_queries": fde.encode_queries(queries),
        "encode_documents": fde.encode_documents(docs),
        "partition_indices": fde.partition_indices(docs),
    }


@given(ragged_lists())
@settings(max_examples=30)
def test_lists_give_the_bits_of_multivectors(sets):
    (q_values, q_items), (d_values, d_items) = sets
    dim = q_values[0].shape[1]
    rng = np.random.default_rng(len(d_values))
    candidates = rng.integers(-1, len(d_values), (len(q_values), 3))
    fde = lf.FDE(dim, 3, 3, projection_dimension=8)
    q_mv, d_mv = lf.MultiVectors(q_values), lf.MultiVectors(d_values)
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        try:
            k = min(3, len(d_values))
            expected = every_result(q_mv, d_mv, k, candidates, fde)
            for q, d in ((q_items, d_items), (q_mv, d_items), (q_items, d_mv), (tuple(q_items), tuple(d_items))):
                got = every_result(q, d, k, candidates, fde)
                for name, value in expected.items():
                    pairs = zip(value, got[name]) if isinstance(value, tuple) else [(value, got[name])]
                    assert all(same_bits(a, b) for a, b in pairs), (path, name)
        finally:
            lf.set_simd("best")


def test_single_items_and_multivectors_are_taken_as_before(rng):
    q = random_set(rng, [5], 16, np.float32)[0]
    docs = random_set(rng, [3, 9, 1], 16, np.float16)
    assert same_bits(lf.maxsim(q, docs), lf.maxsim(q, lf.MultiVectors(docs)))
    assert lf.maxsim(q, docs).shape == (3,)
    fde = lf.FDE(16, 2, 2)
    assert same_bits(fde.encode_queries(q), fde.encode_queries([q])[0])
    assert same_bits(fde.encode_documents(docs), fde.encode_documents(lf.MultiVectors(docs)))


def test_mixed_dtypes_are_read_as_float32(rng):
    # float16 items among float32 ones are widened (exactly), as MultiVectors(list) stores them.
    docs = random_set(rng, [4, 7], 24, np.float16) + random_set(rng, [2, 30], 24, np.float32)
    queries = random_set(rng, [6, 3], 24, np.float16)
    widened = [x.astype(np.float32) for x in docs]
    assert same_bits(lf.maxsim(queries, docs), lf.maxsim(queries, widened))
    fde = lf.FDE(24, 4, 3)
    assert same_bits(fde.encode_documents(docs), fde.encode_documents(widened))


BAD_ITEMS = [  # (bad item at index 2, error, words of the message after the argument's name)
    (lambda x: x[:, :5], ValueError, "item 2 has dimension 5, item 0 has 8"),
    (lambda x: x[:0], ValueError, "item 2 is empty"),
    (lambda x: np.where(np.arange(8) == 3, np.nan, x).astype(x.dtype), ValueError,
     r"item 2 \(token 0\) holds a NaN or infinite value"),
    (lambda x: np.vstack([x, np.full((1, 8), -np.inf, x.dtype)]), ValueError,
     rf"item 2 \(token 3\) holds a NaN or infinite value"),
    (lambda x: x.ravel(), ValueError, r"item 2 must be a 2-D array \(tokens x dim\), got shape \(24,\)"),
    (lambda x: x[None], ValueError, r"item 2 must be a 2-D array \(tokens x dim\), got shape \(1, 3, 8\)"),
    (lambda x: x.astype(np.float64), TypeError, "item 2 must be float32 or float16, got float64"),
    (lambda x: x.astype(np.int32), TypeError, "item 2 must be float32 or float16, got int32"),
    (lambda x: x.astype(">f4"), TypeError, "item 2 must be float32 or float16, got >f4"),
    (lambda x: "tokens", TypeError, "item 2 must be a 2-D numpy array, got str"),
    (lambda x: None, TypeError, "item 2 must be a 2-D numpy array, got NoneType"),
    (lambda x: x[:, :0], ValueError, "item 2 has token dimension 0"),
]

ENTRY_POINTS = {  # name: (call(queries, docs), which argument takes the bad list)
    "maxsim queries": (lambda q, d: lf.maxsim(q, d), "queries"),
    "maxsim docs": (lambda q, d: lf.maxsim(q, d), "docs"),
    "maxsim_topk queries": (lambda q, d: lf.maxsim_topk(q, d, 1), "queries"),
    "maxsim_topk docs": (lambda q, d: lf.maxsim_topk(q, d, 1), "docs"),
    "maxsim_rerank queries": (lambda q, d: lf.maxsim_rerank(q, d, np.zeros((len(q), 1), np.int64)), "queries"),
    # Every document a candidate (the values of the others are not read: see the test below).
    "maxsim_rerank docs": (lambda q, d: lf.maxsim_rerank(q, d, np.tile(np.arange(len(d))[::-1], (len(q), 1))), "docs"),
    "encode_queries": (lambda q, d: lf.FDE(8, 2, 2).encode_queries(q), "queries"),
    "encode_documents": (lambda q, d: lf.FDE(8, 2, 2).encode_documents(d), "docs"),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("spoil, error, words", BAD_ITEMS)
def test_bad_items_are_named(rng, entry, dtype, spoil, error, words):
    call, side = ENTRY_POINTS[entry]
    good = random_set(rng, [2, 5, 3, 4], 8, dtype)
    items = good[:2] + [spoil(good[2])] + good[3:]
    before = [x.copy() for x in good]
    q, d = (items, good) if side == "queries" else (good, items)
    with pytest.raises(error, match=f"^{side}: {words}"):
        call(q, d)
    assert all(np.array_equal(a, b) for a, b in zip(before, good))


@pytest.mark.parametrize("side", ["queries", "docs"])
def test_the_first_bad_item_is_named_whatever_the_threads(rng, side):
    items = random_set(rng, rng.integers(1, 30, 3000), 16, np.float32)
    for i in (2999, 1700, 40):
        items[i] = items[i].copy()
        items[i][-1, 5] = np.inf
        for threads in (1, 2, 5):
            q, d = (items, items[:7]) if side == "queries" else (items[:7], items)
            with pytest.raises(ValueError, match=rf"^{side}: item {i} \(token {len(items[i]) - 1}\)"):
                lf.maxsim(q, d, threads=threads)
            with pytest.raises(ValueError, match=rf"^{side}: item {i} \("):
                lf.maxsim_topk(q, d, 3, threads=threads)
            # Docs: every one a candidate, each query's in its own order.
            candidates = (np.zeros((len(q), 2), np.int64) if side == "queries"
                          else np.stack([rng.permutation(len(d)) for _ in q]))
            with pytest.raises(ValueError, match=rf"^{side}: item {i} \("):
                lf.maxsim_rerank(q, d, candidates, threads=threads)
            fde = lf.FDE(16, 2, 2)
            encode = fde.encode_queries if side == "queries" else fde.encode_documents
            for out in (None, np.zeros((len(items), fde.output_dim), np.float32)):  # out=: scanned first
                with pytest.raises(ValueError, match=rf"^{side}: item {i} \("):
                    encode(items, threads=threads, out=out)


@pytest.mark.parametrize("threads", [1, 2])
def test_rerank_checks_the_values_of_the_candidates_only(rng, threads):
    queries = random_set(rng, [4, 6, 3], 8, np.float32)
    docs = random_set(rng, rng.integers(1, 9, 300), 8, np.float32)
    for i in (250, 17, 120):
        docs[i] = docs[i].copy()
        docs[i][0, 1] = np.nan
    candidates = np.array([[5, 250, -1, 9], [120, 3, 250, 120], [9, 8, 7, 6]])
    # Bad candidates 120 and 250: the lower is named, however the threads run.
    with pytest.raises(ValueError, match=r"^docs: item 120 \(token 0\) holds a NaN"):
        lf.maxsim_rerank(queries, docs, candidates, threads=threads)
    # Document 17 is bad but no candidate: not reported, and the scores are those of a clean set.
    candidates = np.array([[5, 0, -1, 9], [299, 3, 2, 1], [9, 8, 7, 6]])
    clean = [x if np.isfinite(x).all() else np.zeros_like(x) for x in docs]
    scores = lf.maxsim_rerank(queries, docs, candidates, threads=threads)
    assert same_bits(scores, lf.maxsim_rerank(queries, lf.MultiVectors(clean), candidates, threads=threads))
    # The shape of every document is checked all the same, and every query's values.
    with pytest.raises(ValueError, match="^docs: item 17 has dimension 5, item 0 has 8"):
        lf.maxsim_rerank(queries, docs[:17] + [docs[17][:, :5]] + docs[18:], candidates, threads=threads)
    bad_query = queries[2].copy()
    bad_query[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"^queries: item 2 \(token 1\)"):
        lf.maxsim_rerank(queries[:2] + [bad_query], docs, np.zeros((3, 1), np.int64), threads=threads)



@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_list_is_checked_as_it_is_read(rng, dtype):
    # Values past the SIMD registers (dim 40) and in a last partial tile are found; finite values
    # whose inner products overflow are a result (NaN, +inf - inf), not an error.
    docs = random_set(rng, [13, 30, 7], 40, dtype)
    queries = random_set(rng, [5, 33], 40, np.float32)
    for token, column in ((12, 39), (0, 33), (5, 0)):
        bad = [x.copy() for x in docs]
        bad[0][token, column] = np.inf
        for threads in (1, 2):
            with pytest.raises(ValueError, match=rf"^docs: item 0 \(token {token}\) holds a NaN"):
                lf.maxsim(queries, bad, threads=threads)
            with pytest.raises(ValueError, match=rf"^docs: item 0 \(token {token}\) holds a NaN"):
                lf.maxsim_rerank(queries, bad, np.array([[2, 0], [0, 1]]), threads=threads)
    big = np.full((3, 40), 6e4 if dtype == np.float16 else 1e20, dtype)
    opposite = [np.full((2, 40), 3e34, np.float32) * np.array([[1.0], [-1.0]], np.float32)]
    for path in lf.simd_info()["supported"]:  # each float kernel flags what it reads its own way
        lf.set_simd(path)
        try:
            got = lf.maxsim(opposite, [big, docs[1]])
            assert np.isnan(got[0, 0])
            assert same_bits(got, lf.maxsim(opposite, lf.MultiVectors([big, docs[1]])))
            assert same_bits(lf.maxsim_rerank(opposite, [big, docs[1]], np.array([[1, 0]])),
                             np.ascontiguousarray(got[:, ::-1]))
        finally:
            lf.set_simd("best")


@pytest.mark.parametrize("dim", [15, 16, 70, 130])
def test_rerank_finds_a_bad_value_in_any_column_on_every_path(rng, dim):
    # The kernels flag a candidate's float32 rows through the sums they compute from them (each
    # kernel its own register widths and tails): a value in any column must be found.
    queries = random_set(rng, [5], dim, np.float32)
    docs = random_set(rng, [3, 9, 4], dim, np.float32)
    candidates = np.array([[2, 0, 1]])
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        try:
            for column in range(dim):
                bad = [x.copy() for x in docs]
                bad[1][rng.integers(0, 9), column] = (np.nan, np.inf, -np.inf)[column % 3]
                with pytest.raises(ValueError, match=r"^docs: item 1 \(token \d+\) holds a NaN"):
                    lf.maxsim_rerank(queries, bad, candidates)
        finally:
            lf.set_simd("best")


def test_fde_out_is_untouched_when_an_item_is_bad(rng):
    fde = lf.FDE(8, 2, 2)
    docs = random_set(rng, [3, 5, 2], 8, np.float32)
    docs[2] = docs[2].copy()
    docs[2][1, 0] = np.nan
    out = np.full((3, fde.output_dim), 7.0, np.float32)
    with pytest.raises(ValueError, match=r"docs: item 2 \(token 1\)"):
        fde.encode_documents(docs, out=out)
    assert np.all(out == 7.0)


def test_empty_and_wrong_containers(rng):
    docs = random_set(rng, [3], 8, np.float32)
    with pytest.raises(ValueError, match="^docs: an empty list has no token dimension"):
        lf.maxsim(docs, [])
    with pytest.raises(ValueError, match="^queries: an empty list"):
        lf.FDE(8).encode_queries(())
    # The core's own guards (the package never calls it so).
    ragged = _core.RaggedItems(docs, "docs", _validate.token_matrix)
    assert (len(ragged), ragged.dim, ragged.dtype, ragged.rows) == (1, 8, np.float32, 3)
    with pytest.raises(TypeError, match="docs: offsets must be None"):
        _core.maxsim(ragged, None, ragged, np.array([0, 3]), 1)
    with pytest.raises(TypeError, match="docs: expected a list of 2-D arrays, got dict"):
        _core.RaggedItems({}, "docs", _validate.token_matrix)
    with pytest.raises(TypeError, match="docs: item 0 could not be made"):
        _core.RaggedItems([docs[0][:, ::2]], "docs", lambda item, name: item)


def test_a_list_changed_by_another_thread_during_calls():
    # The list is read once per call (the items referenced, not copied): another thread that
    # replaces, spoils or empties it meanwhile gets each call either the list as it was when the
    # call began, or a clear error, never a crash. The replaced arrays lose every reference but
    # the call's own, so a call that read them without holding them would read freed memory.
    rng = np.random.default_rng(3)
    originals = random_set(rng, rng.integers(5, 40, 3000), 32, np.float32)
    queries = random_set(rng, [16, 9, 30], 32, np.float32)
    candidates = rng.integers(0, 3000, (3, 200))
    fde = lf.FDE(32, 4, 3)
    calls = {
        "maxsim": lambda d: lf.maxsim(queries, d),
        "topk": lambda d: lf.maxsim_topk(queries, d, 5)[1],
        "rerank": lambda d: lf.maxsim_rerank(queries, d, candidates),
        "fde": lambda d: fde.encode_documents(d),
    }
    expected = {name: call(originals) for name, call in calls.items()}

    def fresh():  # every 50th item strided: copied alone, by Python code the other thread may interrupt
        return [np.repeat(x, 2, axis=0)[::2] if i % 50 == 0 else x.copy() for i, x in enumerate(originals)]

    docs = fresh()
    stop = threading.Event()

    def scribble():  # the list is valid most of the time (while the next copies are made)
        i = 0
        while not stop.is_set():
            replacement = fresh()
            docs[i % len(originals)] = np.zeros((3, 31), np.float32)  # a wrong dimension
            time.sleep(0.0005)
            docs[:] = replacement
            replacement = fresh()
            docs.clear()
            time.sleep(0.0005)
            docs[:] = replacement
            i += 7

    thread = threading.Thread(target=scribble)
    thread.start()
    outcomes = {"same": 0, "refused": 0}
    try:
        for _ in range(15):
            for name, call in calls.items():
                try:
                    result = call(docs)
                except ValueError as error:
                    assert "dimension" in str(error) or "empty list" in str(error), str(error)
                    outcomes["refused"] += 1
                else:
                    assert same_bits(result, expected[name]), name
                    outcomes["same"] += 1
    finally:
        stop.set()
        thread.join()
    print(outcomes)


def test_a_call_does_not_copy_the_corpus():
    # tracemalloc sees numpy's buffers (not the core's few small ones): a list of 32 MiB is read
    # without an allocation near its size, where MultiVectors(list) concatenates it.
    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((32, 128), dtype=np.float32) for _ in range(2048)]
    corpus = sum(x.nbytes for x in docs)
    queries = [rng.standard_normal((16, 128), dtype=np.float32) for _ in range(4)]
    fde = lf.FDE(128, 2, 2, projection_dimension=8)
    calls = {
        "maxsim": lambda: lf.maxsim(queries, docs),
        "maxsim_topk": lambda: lf.maxsim_topk(queries, docs, 10),
        "maxsim_rerank": lambda: lf.maxsim_rerank(queries, docs, np.arange(40).reshape(4, 10)),
        "encode_documents": lambda: fde.encode_documents(docs),
        "encode_queries": lambda: fde.encode_queries(docs),
        "MultiVectors": lambda: lf.MultiVectors(docs),
    }
    peaks = {}
    tracemalloc.start()
    try:
        for name, call in calls.items():
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            call()
            peaks[name] = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peaks.pop("MultiVectors") >= corpus  # the measure sees a copy
    for name, peak in peaks.items():
        assert peak < corpus / 16, (name, peak, corpus)


RSS_SCRIPT = textwrap.dedent("""
    import numpy as np
    import latefold as lf

    def status(key):  # MiB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))

    def growth(call):  # how far the resident high-water mark rises above the resident size
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the high-water mark
        start = status("VmRSS")
        result = call()
        return status("VmHWM") - start, result

    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((64, 128), dtype=np.float32) for _ in range(2048)]  # 64 MiB
    queries = [rng.standard_normal((32, 128), dtype=np.float32) for _ in range(4)]
    fde = lf.FDE(128, 2, 2, projection_dimension=8)
    lf.maxsim(queries, docs[:16]), fde.encode_documents(docs[:16])  # threads and code paged in
    calls, _ = growth(lambda: (lf.maxsim(queries, docs), lf.maxsim_topk(queries, docs, 10),
                               lf.maxsim_rerank(queries, docs, np.arange(40).reshape(4, 10)),
                               fde.encode_documents(docs)))
    concatenated, _ = growth(lambda: lf.MultiVectors(docs))
    print(calls, concatenated)
""")


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="Linux's resettable VmHWM")
def test_peak_memory_stays_below_the_corpus_size():
    # The resident high-water mark also sees the core's allocations: calls over a 64 MiB list
    # raise it by far less than the list, MultiVectors(list) by about the list.
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr[-2000:]
    calls, concatenated = map(float, out.stdout.split())
    print(f"peak MiB above the resident size: calls {calls:.1f}, MultiVectors(list) {concatenated:.1f}")
    assert calls < 8
    assert concatenated > 60
