"""Every public MaxSim entry point and bad input: the exact exception type, a message that names
the argument, and no object changed."""

from __future__ import annotations

import os

import numpy as np
import pytest

import latefold as lf
from latefold import _core
from strategies import random_set


@pytest.fixture
def sets(rng):
    queries = random_set(rng, [3, 5], 8, np.float32)
    docs = random_set(rng, [2, 4, 6], 8, np.float16)
    return queries, docs


def snapshot(*objects):
    return [np.array(o, copy=True) if isinstance(o, np.ndarray) else [np.array(x, copy=True) for x in o]
            for o in objects]


def assert_unchanged(before, *objects):
    for b, o in zip(before, objects):
        if isinstance(o, np.ndarray):
            np.testing.assert_array_equal(b, o)
        else:
            for bx, ox in zip(b, o):
                np.testing.assert_array_equal(bx, ox)


CALLS = {
    "maxsim": lambda q, d: lf.maxsim(q, d),
    # Documents 0 and 1 candidates: a list's values are checked where the call reads them.
    "maxsim_rerank": lambda q, d: lf.maxsim_rerank(q, d, np.tile(np.arange(2), (len(q), 1))),
    "maxsim_topk": lambda q, d: lf.maxsim_topk(q, d, 1),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "mutate, error, words",
    [
        (lambda q, d: ([x.astype(np.float64) for x in q], d), TypeError, "float32 or float16"),
        (lambda q, d: ([x.astype(np.int32) for x in q], d), TypeError, "queries"),
        (lambda q, d: (q, [x[:, :7] for x in d]), ValueError, "dimension"),
        (lambda q, d: (q, d[:1] + [np.zeros((0, 8), np.float16)]), ValueError, "item 1"),
        (lambda q, d: ([q[0], np.where(np.arange(8) == 3, np.nan, q[1]).astype(np.float32)], d),
         ValueError, "item 1"),
        (lambda q, d: (q, [d[0], d[1] * np.float16(np.inf)]), ValueError, "docs: item 1"),
        (lambda q, d: (q, [x.ravel() for x in d]), ValueError, "2-D"),
        (lambda q, d: ("not an array", d), TypeError, "queries"),
        (lambda q, d: (q, 42), TypeError, "docs"),
        (lambda q, d: (q, []), ValueError, "docs"),
    ],
)
def test_bad_sets(sets, call, mutate, error, words):
    queries, docs = sets
    q, d = mutate(queries, docs)
    before = snapshot(queries, docs)
    with pytest.raises(error, match=words):
        CALLS[call](q, d)
    assert_unchanged(before, queries, docs)


@pytest.mark.parametrize(
    "candidates, error, words",
    [
        (np.array([[0, 3], [1, 2]]), ValueError, r"candidates\[0, 1\] = 3"),
        (np.array([[0, 1], [-2, 2]]), ValueError, r"candidates\[1, 0\] = -2"),
        (np.array([[0.0, 1.0], [1.0, 2.0]]), TypeError, "candidates"),
        (np.array([[True, False], [False, True]]), TypeError, "candidates"),
        (np.array([[0, 1]]), ValueError, "1 rows for 2 queries"),
        (np.array([0, 1]), ValueError, "2-D"),
        (np.array([[0, 2**63 - 1], [0, 0]], dtype=np.uint64), ValueError, "candidates"),
    ],
)
def test_bad_candidates(sets, candidates, error, words):
    queries, docs = sets
    before = snapshot(queries, docs, candidates)
    with pytest.raises(error, match=words):
        lf.maxsim_rerank(queries, docs, candidates)
    assert_unchanged(before, queries, docs, candidates)


@pytest.mark.parametrize("k, error", [(0, ValueError), (-3, ValueError), (4, ValueError),
                                      (1.5, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_k(sets, k, error):
    queries, docs = sets
    with pytest.raises(error, match="k"):
        lf.maxsim_topk(queries, docs, k)


@pytest.mark.parametrize("threads, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError),
                                            (False, TypeError)])
def test_bad_threads(sets, threads, error):
    queries, docs = sets
    for call in (lambda: lf.maxsim(queries, docs, threads=threads),
                 lambda: lf.maxsim_topk(queries, docs, 1, threads=threads),
                 lambda: lf.maxsim_rerank(queries, docs, [[0], [1]], threads=threads)):
        with pytest.raises(error, match="threads"):
            call()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_huge_thread_counts_are_capped(sets):
    queries, docs = sets
    before = len(os.listdir("/proc/self/task"))
    expected = lf.maxsim(queries, docs, threads=1)
    for threads in (1000, 2**64, np.int64(2**62)):
        np.testing.assert_array_equal(lf.maxsim(queries, docs, threads=threads), expected)
        np.testing.assert_array_equal(lf.maxsim_topk(queries, docs, 2, threads=threads)[1],
                                      lf.maxsim_topk(queries, docs, 2, threads=1)[1])
    # The pool keeps at most max_threads() - 1 helpers, whatever was asked for.
    assert len(os.listdir("/proc/self/task")) < before + _core.max_threads()
    assert _core.max_threads() == 4 * _core.hardware_threads()


def test_core_checks_threads_itself(sets):
    queries, docs = sets
    q, d = queries, docs
    args = (np.concatenate(q), np.cumsum([0] + [len(x) for x in q]).astype(np.int64),
            np.concatenate(d).astype(np.float32), np.cumsum([0] + [len(x) for x in d]).astype(np.int64))
    for threads, error in ((True, TypeError), (2.0, TypeError), ("2", TypeError), (0, ValueError),
                           (-(2**70), ValueError)):
        with pytest.raises(error, match="threads"):
            _core.maxsim(*args, threads)
    np.testing.assert_array_equal(_core.maxsim(*args, 2**70), _core.maxsim(*args, 1))


def test_odd_layouts_are_read_correctly(rng):
    """Fortran order, strided, negative-stride, read-only and misaligned arrays are accepted
    (copied where needed) and give the same scores as a clean copy."""
    base = rng.standard_normal((40, 24)).astype(np.float32)
    docs = random_set(rng, [5, 9], 12, np.float32)
    layouts = {
        "strided": base[::2, :12],
        "fortran": np.asfortranarray(base[::2, :12]),
        "negative": base[::-2, :12],
    }
    readonly = np.ascontiguousarray(base[::2, :12])
    readonly.flags.writeable = False
    layouts["readonly"] = readonly
    raw = np.zeros(20 * 12 * 4 + 1, np.uint8)
    misaligned = raw[1:].view(np.float32).reshape(20, 12)
    misaligned[:] = base[::2, :12]
    layouts["misaligned"] = misaligned
    for name, q in layouts.items():
        expected = lf.maxsim(np.array(q, order="C"), docs)
        np.testing.assert_array_equal(lf.maxsim(q, docs), expected, err_msg=name)
        np.testing.assert_array_equal(lf.maxsim([q], [q]), lf.maxsim([np.array(q)], [np.array(q)]))


@pytest.mark.concurrency
def test_worker_exception_reaches_caller_and_pool_survives():
    with pytest.raises(ValueError, match="task 37 failed"):
        lf._core._parallel_for_probe(1000, 2, 37)
    assert lf._core._parallel_for_probe(1000, 2, -1) == 1000
    assert lf._core._parallel_for_probe(5, 8, -1) == 5


@pytest.mark.concurrency
@pytest.mark.parametrize("nested", [False, True])
def test_a_failed_task_stops_the_others_at_their_next_check(nested):
    # The caller's Ctrl-C or any task's exception stops the tasks still running on other threads
    # (unmarked pool helpers) at their next interrupt check, not at their end: the probe's other
    # task checks in a loop that would otherwise run for the whole minute.
    assert lf._core._stop_probe(nested, 60.0)


@pytest.mark.concurrency
def test_arrays_changed_by_another_thread_during_a_call_do_not_reach_it():
    # The index arrays (offsets, candidates) are checked once, then read without the GIL: each
    # call reads a copy of its own, so another thread scribbling on the caller's arrays cannot
    # make it read outside the tokens.
    import threading

    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((40_000, 32)).astype(np.float32)
    offsets = np.arange(0, 40_001, 10, dtype=np.int64)
    docs = lf.MultiVectors(tokens, offsets)
    queries = lf.MultiVectors(rng.standard_normal((32, 32)).astype(np.float32), np.arange(0, 33, 2))
    good = np.tile(np.arange(4000, dtype=np.int64), (16, 1))
    candidates = good.copy()
    expected = lf.maxsim(queries, docs)
    expected_rerank = lf.maxsim_rerank(queries, docs, good)
    stop = threading.Event()

    def scribble():
        while not stop.is_set():
            offsets[1:] = 10**12
            candidates[:] = 10**12
            offsets[:] = np.arange(0, 40_001, 10)
            candidates[:] = good

    thread = threading.Thread(target=scribble)
    thread.start()
    try:
        for _ in range(20):
            np.testing.assert_array_equal(lf.maxsim(queries, docs), expected)
            try:  # checked values are the values used: valid ones give the right scores
                scores = lf.maxsim_rerank(queries, docs, candidates)
                np.testing.assert_array_equal(scores, expected_rerank)
            except ValueError:
                pass  # the copy caught the scribbled ids: refused
    finally:
        stop.set()
        thread.join()
