"""GraphIndex: filtered top-k against a brute-force numpy oracle, filters against their numpy
evaluation, deletions, persistence, concurrency, determinism and bad input."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import latefold as lf
from latefold import _core
from reference import container
from reference import graph as ref

F = lf.Filter


def clustered(rng, n, d, clusters=40, spread=0.35):
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres[rng.integers(0, clusters, 60)] + spread * rng.standard_normal((60, d))
    return x.astype(np.float32), q.astype(np.float32)


def attributes(rng, n):
    return {
        "year": rng.integers(0, 1000, n),
        "score": rng.uniform(-1.0, 1.0, n),
        "tags": [rng.choice(50, rng.integers(0, 4), replace=False) for _ in range(n)],
    }


@pytest.fixture(scope="module")
def world():
    seed = int(os.environ.get("LATEFOLD_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"LATEFOLD_SEED={seed}")
    rng = np.random.default_rng(seed)
    n, d = 12000, 32  # large enough that the planner traverses at 50% and 100%
    x, q = clustered(rng, n, d)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)  # arbitrary, non-contiguous ids
    attrs = attributes(rng, n)
    index = {}
    for metric in ("ip", "l2"):
        g = lf.GraphIndex(d, metric=metric)
        g.add(x, ids, attrs)
        index[metric] = g
    return {"x": x, "q": q, "ids": ids, "attrs": attrs, "index": index, "rng": rng}


SELECTIVITY_FILTERS = {  # year is uniform in [0, 1000)
    "0.1%": (F.range("year", 500, 500), ("range", "year", 500, 500)),
    "1%": (F.range("year", 0, 9), ("range", "year", 0, 9)),
    "10%": (F.range("year", 100, 199), ("range", "year", 100, 199)),
    "50%": (F.range("year", None, 499), ("range", "year", None, 499)),
    "100%": (None, None),
}


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("selectivity", list(SELECTIVITY_FILTERS))
def test_recall_at_every_selectivity(world, metric, selectivity):
    g, x, q, ids = world["index"][metric], world["x"], world["q"], world["ids"]
    f, spec = SELECTIVITY_FILTERS[selectivity]
    mask = np.ones(len(x), bool) if spec is None else ref.evaluate(spec, ids, world["attrs"])
    scores, found, stats = g.search(q, 10, filter=f, explain=True)
    truth_s, truth = ref.filtered_topk(x, ids, q, 10, mask, metric)
    assert ref.recall(found, truth) >= 0.95, [s["path"] for s in stats[:5]]
    allowed = set(ids[mask].tolist())
    assert all(int(i) in allowed for i in found[found >= 0])
    # Scores are the metric's value for the returned ids (float32 products of unit vectors).
    pos = {int(v): r for r, v in enumerate(ids)}
    for qi in range(len(q)):
        for j in range(10):
            if found[qi, j] < 0:
                continue
            v = x[pos[int(found[qi, j])]].astype(np.float64)
            want = q[qi] @ v if metric == "ip" else ((q[qi] - v) ** 2).sum()
            assert abs(scores[qi, j] - want) <= 1e-4 * (1 + abs(want))
        valid = scores[qi][found[qi] >= 0]
        assert (np.diff(valid) <= 0).all() if metric == "ip" else (np.diff(valid) >= 0).all()
    assert {s["matches"] for s in stats} == {int(mask.sum())}


@pytest.mark.parametrize("ef", [64, 600])  # the sorted frontier (ef <= 512) and the heaps
@pytest.mark.parametrize("path", ["exact", "acorn", "gated"])
def test_each_path_holds_its_recall(world, path, ef):
    """Force each plan on a 10% filter: all three return only allowed ids with high recall."""
    g, x, q, ids = world["index"]["ip"], world["x"], world["q"], world["ids"]
    f, spec = F.range("year", 100, 199), ("range", "year", 100, 199)
    mask = ref.evaluate(spec, ids, world["attrs"])
    options = {"exact": dict(exact_below=10**9), "acorn": dict(exact_below=1, gated_above=1.0),
               "gated": dict(exact_below=1, gated_above=0.01)}[path]
    _, found, stats = g.search(q, 10, ef=ef, filter=f, explain=True, **options)
    assert {s["path"] for s in stats} == {path}
    _, truth = ref.filtered_topk(x, ids, q, 10, mask)
    assert ref.recall(found, truth) >= (1.0 if path == "exact" else 0.95)
    assert np.isin(found, ids[mask]).all()


def test_exact_path_equals_oracle(world, simd):
    g, x, q, ids = world["index"]["ip"], world["x"], world["q"], world["ids"]
    mask = ref.evaluate(("any", "tags", [1, 2, 3]), ids, world["attrs"])
    scores, found = g.search(q, 15, filter=F.labels("tags").any([1, 2, 3]), exact_below=10**9)
    truth_s, truth = ref.filtered_topk(x, ids, q, 15, mask)
    # Unit vectors, d = 32: float32 dot products are within 32 * 2^-24 * |q| of the exact ones.
    bound = 32 * 2.0 ** -24 * np.linalg.norm(q, axis=1, keepdims=True) * 4
    assert (np.abs(scores - truth_s) <= bound).all()
    # A rank is decided when the gaps to both neighbours exceed the rounding.
    gap = np.abs(np.diff(truth_s, axis=1)) > 2 * bound
    decided = gap & np.concatenate([np.ones((len(q), 1), bool), gap[:, :-1]], axis=1)
    assert (found[:, :-1][decided] == truth[:, :-1][decided]).all()


filter_leaf = st.one_of(
    st.builds(lambda v: (F.labels("tags").any(v), ("any", "tags", v)), st.lists(st.integers(0, 60), max_size=4)),
    st.builds(lambda v: (F.labels("tags").all(v), ("all", "tags", v)), st.lists(st.integers(0, 60), max_size=2)),
    st.builds(lambda lo, hi: (F.range("year", lo, hi), ("range", "year", lo, hi)),
              st.one_of(st.none(), st.integers(-5, 1005)), st.one_of(st.none(), st.integers(-5, 1005))),
    st.builds(lambda lo, hi: (F.range("score", lo, hi), ("range", "score", lo, hi)),
              st.one_of(st.none(), st.floats(-1.5, 1.5)), st.one_of(st.none(), st.floats(-1.5, 1.5))),
    st.builds(lambda lo: (F.range("year", lo + 0.5, lo + 30.5), ("range", "year", lo + 0.5, lo + 30.5)),
              st.integers(0, 999)),
    st.builds(lambda v: (F.eq("year", v), ("range", "year", v, v)), st.integers(0, 999)),
    st.builds(lambda v: (F.isin("year", v), ("isin", "year", v)), st.lists(st.integers(-5, 1005), max_size=6)),
    st.builds(lambda v: (F.isin("year", v), ("isin", "year", v)),
              st.lists(st.integers(0, 1998).map(lambda i: i / 2), max_size=6)),  # x.5 matches nothing
)


def _nary(op, pairs):
    f = pairs[0][0]
    for g, _ in pairs[1:]:
        f = f & g if op == "and" else f | g
    return f, (op, *(spec for _, spec in pairs))


def _combine(children):
    return st.one_of(
        st.builds(lambda a, b: (a[0] & b[0], ("and", a[1], b[1])), children, children),
        st.builds(lambda a, b: (a[0] | b[0], ("or", a[1], b[1])), children, children),
        st.builds(lambda a: (~a[0], ("not", a[1])), children),
        st.builds(_nary, st.sampled_from(["and", "or"]), st.lists(children, min_size=3, max_size=6)),
    )


filters = st.recursive(filter_leaf, _combine, max_leaves=12)


@settings(max_examples=80)
@given(filters)
def test_filters_equal_numpy(world, pair):
    g, ids = world["index"]["ip"], world["ids"]
    f, spec = pair
    mask = ref.evaluate(spec, ids, world["attrs"])
    _, found, stats = g.search(world["q"][:1], len(ids), filter=f, exact_below=10**9, explain=True)
    assert stats[0]["matches"] == int(mask.sum())
    assert set(found[0][found[0] >= 0].tolist()) == set(ids[mask].tolist())


def test_mask_and_id_filters(world):
    g, ids, q = world["index"]["ip"], world["ids"], world["q"][:3]
    mask = np.zeros(ids.max() + 1, dtype=bool)
    mask[ids[::7]] = True
    for f in (mask, F.mask(mask), ids[::7], F.ids(ids[::7]), F.mask(mask) & F.ids(ids[::7])):
        _, found = g.search(q, len(ids), filter=f, exact_below=10**9)
        assert set(found[0][found[0] >= 0].tolist()) == set(ids[::7].tolist())
    short = mask[: ids.max() // 2]  # ids beyond the mask do not pass
    _, found = g.search(q, len(ids), filter=short, exact_below=10**9)
    assert set(found[0][found[0] >= 0].tolist()) == set(i for i in ids[::7].tolist() if i < len(short))
    with pytest.raises(ValueError, match="not in the index"):
        g.search(q, 5, filter=F.ids([-12345]))


def test_filter_array_of_8_bit_integers_is_ambiguous(world):
    # A 0/1 byte array could be a mask or the ids {0, 1}: refused, as by pq.search(allowed=).
    g, ids, q = world["index"]["ip"], world["ids"], world["q"][:2]
    mask = np.zeros(ids.max() + 1, dtype=bool)
    mask[ids[::7]] = True
    for ambiguous in (mask.astype(np.uint8), mask.astype(np.int8)):
        for f in (ambiguous, [ambiguous, None]):
            with pytest.raises(TypeError, match="filter.*ambiguous"):
                g.search(q, 5, filter=f)
    for f in (mask, ids[::7].astype(np.int32), ids[::7].astype(np.uint32)):
        _, found = g.search(q, len(ids), filter=f, exact_below=10**9)
        assert set(found[0][found[0] >= 0].tolist()) == set(ids[::7].tolist())


def test_filter_per_query_and_padding(world):
    g, ids, q = world["index"]["l2"], world["ids"], world["q"][:3]
    fs = [F.ids(ids[:3]), None, F.eq("year", 10**6)]
    scores, found, stats = g.search(q, 5, filter=fs, explain=True)
    assert set(found[0][:3].tolist()) == set(ids[:3].tolist())
    assert (found[0][3:] == -1).all() and np.isinf(scores[0][3:]).all() and (scores[0][3:] > 0).all()
    assert (found[1] >= 0).all() and stats[1]["path"] == "graph" and stats[1]["matches"] == len(ids)
    assert (found[2] == -1).all() and stats[2]["matches"] == 0
    with pytest.raises(ValueError, match="one per query"):
        g.search(q, 5, filter=fs[:2])


def test_filter_errors(world):
    g, q = world["index"]["ip"], world["q"][:2]
    with pytest.raises(ValueError, match="unknown attribute 'nope'"):
        g.search(q, 5, filter=F.range("nope", 0, 1))
    with pytest.raises(ValueError, match="holds labels"):
        g.search(q, 5, filter=F.range("tags", 0, 1))
    with pytest.raises(ValueError, match="not labels"):
        g.search(q, 5, filter=F.labels("year").any([1]))
    with pytest.raises(TypeError):
        F.range("year", "a", 3)
    with pytest.raises(TypeError):
        F.labels("tags").any([1.5])
    with pytest.raises(TypeError):
        F.eq("year", 1) & "year"
    with pytest.raises(TypeError):
        g.search(q, 5, filter="year > 3")
    with pytest.raises(TypeError):
        F.mask(np.array([1, 0, 1]))


def matching(g, q, f):
    """The ids a filter keeps, from an exact search for every vector."""
    _, found = g.search(q[:1], len(g), filter=f, exact_below=10**9)
    return set(found[0][found[0] >= 0].tolist())


def test_and_or_are_n_ary(world):
    a, b, c = F.eq("year", 1), F.eq("year", 2), F.labels("tags").any([3])
    for f in (a | b | c, a | (b | c), (a | b) | (c | a)):
        assert f._expr.depth == 2 and repr(f).count("|") == f._expr.n_children - 1
    assert (a | b | c)._expr.n_children == 3
    assert repr((a | b) & c) == ("(" + "(" + repr(a) + " | " + repr(b) + ") & " + repr(c) + ")")
    assert ((a | b) & c)._expr.depth == 3
    # The core form flattens too, whoever builds it.
    from latefold import _core
    assert _core.FilterExpr.combine("or", [(a | b)._expr, c._expr]).n_children == 3
    assert ~~a is a
    # A shared subtree doubled again and again stays as wide as it was.
    f = a | b
    for _ in range(60):
        f = f | f
    assert f._expr.n_children == 2


def test_wide_or_of_eq(world):
    g, ids, q, year = world["index"]["ip"], world["ids"], world["q"], world["attrs"]["year"]
    f = F.eq("year", 0)
    for v in range(1, 5000):
        f = f | F.eq("year", 3 * v)
    assert f._expr.n_children == 5000 and f._expr.depth == 2
    assert repr(f).count(" | ") == 4999
    wanted = year % 3 == 0
    assert matching(g, q, f) == set(ids[wanted].tolist())
    assert matching(g, q, ~f) == set(ids[~wanted].tolist())


def test_deep_chains_work_or_raise_the_documented_error(world):
    g, ids, q, year = world["index"]["ip"], world["ids"], world["q"], world["attrs"]["year"]
    assert F.MAX_DEPTH == 1000
    f = F.range("year", 10, 20)
    for _ in range(100_000):
        f = ~f  # ~~f is f
    assert matching(g, q, f) == set(ids[(year >= 10) & (year <= 20)].tolist())
    f = F.range("year", None, 900)
    for v in range(100_000):
        f = f & F.range("year", None, 999 - v % 50)  # one AND of 100,001 terms
    assert f._expr.n_children == 100_001
    assert matching(g, q, f) == set(ids[year <= 900].tolist())
    # Alternating ops nest: the depth grows by two a step until the documented bound.
    f, wanted = F.eq("year", 0), year == 0
    with pytest.raises(ValueError, match="MAX_DEPTH = 1000 levels"):
        for v in range(1, 100_000):
            f = ~(f | F.eq("year", v))
            wanted = ~(wanted | (year == v))
    assert f._depth == 999
    # Exactly at the bound: compiles and evaluates.
    f, wanted = F.range("year", None, 500) & f, (year <= 500) & wanted
    assert f._expr.depth == 1000 and repr(f).startswith("(Filter.range('year', None, 500) & ~(~(")
    assert matching(g, q, f) == set(ids[wanted].tolist())
    with pytest.raises(ValueError, match="MAX_DEPTH"):
        F.eq("year", 1) | f


def test_isin_equals_numpy(world):
    g, ids, q, attrs = world["index"]["l2"], world["ids"], world["q"], world["attrs"]
    year, score = attrs["year"], attrs["score"]
    for values in ([3, 7, 7, 999, 1000, -1], np.array([5, 6], np.int32), np.array([8, 2**63 + 5], np.uint64),
                   [4.0, 4.5, 1e30, -1e30], {11, 12.0}, [], np.array([17], np.int64)):
        as_list = list(values) if not isinstance(values, np.ndarray) else values.tolist()
        wanted = np.isin(year, np.array([v for v in as_list if float(v).is_integer() and abs(v) < 2**62], np.int64))
        assert matching(g, q, F.isin("year", values)) == set(ids[wanted].tolist()), values
    chosen = score[::97]
    for values in (chosen, chosen.astype(np.float32), chosen.tolist() + [2.0, -7, 0]):
        wanted = np.isin(score, np.asarray(values, np.float64))
        assert matching(g, q, F.isin("score", values)) == set(ids[wanted].tolist())
    assert len(matching(g, q, F.isin("score", chosen))) == len(chosen)
    assert matching(g, q, F.isin("year", [3]) | F.isin("score", chosen[:4])) == \
        set(ids[(year == 3) | np.isin(score, chosen[:4])].tolist())
    assert repr(F.isin("year", [2, 1])) == "Filter.isin('year', [2, 1])"
    with pytest.raises(ValueError, match=r"Filter.labels\('tags'\).any"):
        g.search(q[:1], 5, filter=F.isin("tags", [1]))
    with pytest.raises(ValueError, match="NaN"):
        F.isin("score", [0.5, np.nan])
    with pytest.raises(TypeError):
        F.isin("year", [True, False])
    with pytest.raises(TypeError):
        F.isin("year", ["a"])
    with pytest.raises(ValueError, match="1-D"):
        F.isin("year", [[1, 2]])


@pytest.mark.parametrize("nan", [float("nan"), np.float64("nan"), np.float32("nan"), np.float16("nan")])
def test_nan_bounds_raise(nan):
    for make in (lambda: F.range("score", nan), lambda: F.range("score", 0.0, nan), lambda: F.range("year", nan, 3)):
        with pytest.raises(ValueError, match="Filter.range: (lo|hi) is NaN"):
            make()
    with pytest.raises(ValueError, match="Filter.eq: value is NaN"):
        F.eq("score", nan)


def test_filters_copy_the_callers_arrays(world):
    g, ids, q = world["index"]["ip"], world["ids"], world["q"]
    kept, labels = ids[:5].copy(), np.array([1, 2], np.int64)
    mask = np.zeros(ids.max() + 1, bool)
    mask[kept] = True
    by_ids, by_mask, by_labels = F.ids(kept), F.mask(mask), F.labels("tags").any(labels)
    text = repr(by_labels)
    kept[:], mask[:], labels[:] = ids[5:10], False, 40
    assert matching(g, q, by_ids) == matching(g, q, by_mask) == set(ids[:5].tolist())
    assert repr(by_labels) == text
    assert not np.shares_memory(by_ids._args[0], kept) and not np.shares_memory(by_mask._args[0], mask)


def test_delete_and_compact(rng):
    x, q = clustered(rng, 3000, 24)
    g = lf.GraphIndex(24)
    ids = g.add(x, attributes={"year": np.arange(3000) % 100})
    gone = rng.choice(ids, 1200, replace=False)
    g.delete(gone)
    assert len(g) == 1800 and gone[0] not in g and ids[~np.isin(ids, gone)][0] in g
    keep = ~np.isin(ids, gone)
    for step in ("deleted", "compacted"):
        for f, mask in ((None, keep), (F.range("year", 0, 49), keep & (np.arange(3000) % 100 < 50))):
            _, found = g.search(q, 10, filter=f)
            assert not np.isin(found, gone).any()
            _, truth = ref.filtered_topk(x, ids, q, 10, mask)
            assert ref.recall(found, truth) >= 0.95, step
        g.compact()
    with pytest.raises(ValueError, match="not in the index"):
        g.delete([gone[0]])
    fresh, _ = clustered(rng, 5, 24)
    g.add(fresh, ids=gone[:5], attributes={"year": np.zeros(5, np.int64)})  # ids can come back
    _, found = g.search(fresh, 1)
    assert (found[:, 0] == gone[:5]).all()


def test_incremental_adds_and_determinism(rng, tmp_path):
    x, q = clustered(rng, 2500, 16)
    states = []
    for threads in (1, 2):
        g = lf.GraphIndex(16)
        g.add(x[:1000], threads=threads)
        g.add(x[1000:], threads=threads)
        g.save(tmp_path / f"{threads}.lf")
        states.append({name.split("/")[-1]: a for name, a in container.arrays(tmp_path / f"{threads}.lf").items()})
        _, found = g.search(q, 10)
        _, truth = ref.filtered_topk(x, np.arange(2500), q, 10, np.ones(2500, bool))
        assert ref.recall(found, truth) >= 0.95
    for name in ("edges", "degrees", "pivots"):
        assert np.array_equal(states[0][name], states[1][name]), name


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(world, tmp_path, mmap):
    g, q = world["index"]["ip"], world["q"]
    path = tmp_path / "g.lf"
    g.save(path)
    h = lf.GraphIndex.load(path, mmap=mmap)
    assert len(h) == len(g) and h.columns == g.columns and h.params == g.params
    for f in (None, F.range("year", 100, 199), F.labels("tags").any([3]) | F.range("score", 0.5, None)):
        a, b = g.search(q, 10, filter=f), h.search(q, 10, filter=f)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    h.add(world["x"][:2], ids=[-1, -2], attributes={k: (v[:2] if not isinstance(v, list) else v[:2])
                                                   for k, v in world["attrs"].items()})
    assert len(h) == len(g) + 2 and len(g) == len(world["x"])


def test_load_rejects_corruption(world, tmp_path):
    path = tmp_path / "g.lf"
    world["index"]["l2"].save(path)
    blob = bytearray(path.read_bytes())
    for cut in (10, 100, len(blob) // 2, len(blob) - 1):
        (tmp_path / "cut.lf").write_bytes(blob[:cut])
        with pytest.raises(ValueError):
            lf.GraphIndex.load(tmp_path / "cut.lf")
    rng = np.random.default_rng(3)
    for _ in range(20):
        bad = bytearray(blob)
        bad[int(rng.integers(0, len(bad)))] ^= 1 << int(rng.integers(0, 8))
        (tmp_path / "bad.lf").write_bytes(bad)
        try:
            h = lf.GraphIndex.load(tmp_path / "bad.lf")
        except ValueError:
            continue
        h.search(world["q"][:2], 5)  # a flip in padding: still a working index


@pytest.mark.concurrency
def test_concurrent_searches_match_sequential(world):
    g, q = world["index"]["ip"], world["q"]
    fs = [None, F.range("year", 0, 99), F.labels("tags").any([1, 2]), F.range("year", 0, 600)]
    expected = [g.search(q, 10, filter=f, threads=1) for f in fs]
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                s, found = g.search(q, 10, filter=fs[i % 4])
                assert np.array_equal(s, expected[i % 4][0]) and np.array_equal(found, expected[i % 4][1])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.concurrency
def test_searches_during_adds_see_whole_adds():
    # An add owns the index while searches share it: each search sees the index before or after
    # a whole add (its vectors, attributes and edges), never part of one.
    rng = np.random.default_rng(11)
    d, batch = 16, 300
    x = rng.standard_normal((12 * batch, d)).astype(np.float32)
    g = lf.GraphIndex(d, degree=8, ef_construction=24)
    g.add(x[:batch], attributes={"batch": np.zeros(batch, np.int64)}, threads=2)
    done, errors = threading.Event(), []

    def add():
        try:
            for b in range(1, 12):
                g.add(x[b * batch:(b + 1) * batch], attributes={"batch": np.full(batch, b)}, threads=2)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            done.set()

    def search():
        try:
            while not done.is_set():
                _, found, stats = g.search(x[:8], 5, filter=F.range("batch", 0, 100), threads=2, explain=True)
                assert all(s["matches"] % batch == 0 for s in stats), stats
                assert ((found >= 0) & (found < len(x))).all()
                assert len(g) % batch == 0
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=add)] + [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(g) == len(x)


@pytest.mark.concurrency
def test_attribute_columns_changed_by_another_thread_during_an_add_do_not_reach_it():
    # The columns are checked (no NaN, label offsets in range) and then read without the GIL: the
    # add reads a copy of its own, so what another thread writes into the caller's arrays
    # meanwhile cannot slip past the checks (a NaN would break the column's sorted order).
    rng = np.random.default_rng(3)
    n, d = 20_000, 16
    x = rng.standard_normal((3 * n, d)).astype(np.float32)
    score, year = np.full(n, 0.5), np.arange(n)
    stop = threading.Event()

    def scribble():
        while not stop.is_set():
            score[:] = np.nan
            year[:] = -1
            score[:] = 0.5
            year[:] = np.arange(n)

    g = lf.GraphIndex(d, degree=8, ef_construction=16)
    g.add(x[:n], attributes={"score": np.full(n, 0.5), "year": np.arange(n)}, threads=2)
    thread = threading.Thread(target=scribble)
    thread.start()
    added = refused = 0
    try:
        for i in range(40):
            ids = np.arange(n + i * 1000, n + (i + 1) * 1000)
            try:  # a NaN in the copy is refused; any other values are the ones checked and stored
                g.add(x[ids], ids, {"score": score[:1000], "year": year[:1000]}, threads=2)
                added += 1
            except ValueError:
                refused += 1
    finally:
        stop.set()
        thread.join()
    print(f"{added} adds, {refused} refused")
    assert len(g) == n + 1000 * added
    q = x[:1]

    def matches(f):
        return g.search(q, 1, filter=f, explain=True)[2][0]["matches"]

    assert matches(F.range("score", None, None)) == matches(F.eq("score", 0.5)) == len(g)
    assert matches(F.eq("year", -1)) + matches(F.range("year", 0, n)) == len(g)
    h = pickle.loads(pickle.dumps(g))
    for f in (None, F.range("year", 0, 499), F.eq("score", 0.5)):
        np.testing.assert_array_equal(h.search(x[:20], 10, filter=f)[1], g.search(x[:20], 10, filter=f)[1])


@pytest.mark.concurrency
@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_vectors_changed_by_another_thread_during_an_add_do_not_reach_it(storage):
    # The rows are checked (finite) and then read without the GIL: the add checks its own copy
    # and reads only that, so a NaN another thread writes meanwhile is refused, never stored (a
    # stored NaN breaks the order of the graph's candidate lists).
    rng = np.random.default_rng(4)
    n, d = 10_000, 8  # the larger the add, the longer the time between the checks and the copy
    good = rng.standard_normal((n, d)).astype(np.float32)
    x = good.copy()
    stop = threading.Event()

    def scribble():
        while not stop.is_set():
            x[n // 2] = np.nan
            x[n // 2] = good[n // 2]

    g = lf.GraphIndex(d, storage=storage, degree=8, ef_construction=16)
    thread = threading.Thread(target=scribble)
    thread.start()
    added = refused = 0
    try:
        for i in range(40):
            if added == 5:
                break
            try:
                g.add(x, np.arange(i * n, (i + 1) * n), threads=2)
                added += 1
            except ValueError:
                refused += 1
    finally:
        stop.set()
        thread.join()
    print(f"{added} adds, {refused} refused")
    assert len(g) == n * added
    # An exact scan scores every stored vector: all finite.
    scores, found = g.search(good[:1], len(g), exact_below=10**9)
    assert np.isfinite(scores).all() and len(set(found[0].tolist())) == len(g)


def test_float16_storage(rng):
    x, q = clustered(rng, 2000, 40)
    g = lf.GraphIndex(40, storage="float16", metric="l2")
    g.add(x)
    x16 = x.astype(np.float16).astype(np.float32)
    s, found = g.search(q, 10)
    truth_s, truth = ref.filtered_topk(x16, np.arange(2000), q, 10, np.ones(2000, bool), "l2")
    assert ref.recall(found, truth) >= 0.95
    with pytest.raises(ValueError, match="overflows float16"):
        g.add(np.full((1, 40), 1e6, np.float32))


def test_bad_input_leaves_index_unchanged(world):
    rng = np.random.default_rng(0)
    d = 8
    g = lf.GraphIndex(d)
    x = rng.standard_normal((50, d)).astype(np.float32)
    g.add(x, attributes={"year": np.arange(50), "tags": [[i % 3] for i in range(50)]})
    before = g.search(x[:4], 5)
    y = rng.standard_normal((3, d)).astype(np.float32)
    good = {"year": np.arange(3), "tags": [[1], [], [2, 2]]}
    cases = [
        (ValueError, lambda: g.add(y[:, :5], attributes=good)),                        # wrong dim
        (TypeError, lambda: g.add(y.astype(np.float64), attributes=good)),             # dtype
        (ValueError, lambda: g.add(y, attributes={**good, "extra": np.arange(3)})),    # unknown attribute
        (ValueError, lambda: g.add(y, attributes={"year": np.arange(3)})),             # missing column
        (TypeError, lambda: g.add(y, attributes={**good, "year": np.ones(3)})),        # float into int64
        (TypeError, lambda: g.add(y, attributes={**good, "tags": [[1.5], [], []]})),   # float labels
        (ValueError, lambda: g.add(y, attributes={**good, "year": np.arange(4)})),     # length
        (ValueError, lambda: g.add(y, attributes={**good, "tags": [[1], []]})),        # length
        (ValueError, lambda: g.add(y, ids=[0, 100, 101], attributes=good)),            # id exists
        (ValueError, lambda: g.add(y, ids=[100, 100, 101], attributes=good)),          # duplicate
        (ValueError, lambda: g.add(np.full((3, d), np.nan, np.float32), attributes=good)),
        (ValueError, lambda: g.delete([3, 10**9])),                                    # unknown id
        (ValueError, lambda: g.delete([3, 3])),
        (ValueError, lambda: g.search(x[:2, :4], 5)),
        (ValueError, lambda: g.search(x[:2], 0)),
        (TypeError, lambda: g.search(x[:2].astype(np.int32), 5)),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
        assert len(g) == 50
        after = g.search(x[:4], 5)
        assert np.array_equal(before[1], after[1]) and np.array_equal(before[0], after[0])
    with pytest.raises(ValueError):
        lf.GraphIndex(0)
    with pytest.raises(ValueError):
        lf.GraphIndex(4, metric="cos")
    with pytest.raises(ValueError):
        lf.GraphIndex(4, degree=1)
    with pytest.raises(ValueError):
        lf.GraphIndex(4, alpha=0.5)


def test_small_and_empty_indexes():
    g = lf.GraphIndex(3)
    s, i = g.search(np.ones((2, 3), np.float32), 4)
    assert (i == -1).all() and np.isneginf(s).all()
    g.add(np.eye(3, dtype=np.float32))
    s, i = g.search(np.array([[0, 1, 0]], np.float32), 4)
    assert i[0, 0] == 1 and i[0, 3] == -1 and set(i[0, :3]) == {0, 1, 2}
    g.delete([0, 1, 2])
    g.compact()
    assert len(g) == 0 and (g.search(np.ones((1, 3), np.float32), 2)[1] == -1).all()
    g.add(np.eye(3, dtype=np.float32))
    assert g.search(np.array([[0, 0, 1]], np.float32), 1)[1][0, 0] == 5


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("nbits", [8, 4])
def test_quantized_storage(rng, tmp_path, metric, nbits):
    """PQ codes steer the traversal; re-ranked scores are exact, unranked ones the codes' ADC
    estimates; filters, deletions and persistence behave as with plain storage."""
    x, q = clustered(rng, 6000, 32)
    ids = np.arange(6000, dtype=np.int64)
    attrs = attributes(rng, 6000)
    pq = lf.ProductQuantizer(32, 16, nbits=nbits, metric=metric).train(x, iterations=8)
    g = lf.GraphIndex(32, metric=metric, quantizer=pq)
    g.add(x, ids, attrs)
    assert g.quantizer is not pq  # the index's own copy
    np.testing.assert_array_equal(np.concatenate(g.quantizer.centroids, axis=None),
                                  np.concatenate(pq.centroids, axis=None))
    for f, spec in [(None, None), (F.range("year", 0, 499), ("range", "year", 0, 499)),
                    (F.range("year", 0, 9), ("range", "year", 0, 9))]:
        mask = np.ones(6000, bool) if spec is None else ref.evaluate(spec, ids, attrs)
        scores, found = g.search(q, 10, ef=128, filter=f)
        _, truth = ref.filtered_topk(x, ids, q, 10, mask, metric)
        assert ref.recall(found, truth) >= 0.9
        assert mask[found].all()
        v = x[found].astype(np.float64)
        want = np.einsum("qkd,qd->qk", v, q) if metric == "ip" else ((v - q[:, None, :]) ** 2).sum(2)
        np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-4)  # re-ranked: exact
    # Without re-ranking the scores are the ADC estimates of the returned codes.
    scores, found, stats = g.search(q, 10, ef=64, rerank=False, explain=True)
    assert {s["path"] for s in stats} == {"graph"}
    codes = pq.encode(x)
    adc = np.stack([(pq.lut(q[i:i + 1])[0][np.arange(16), _split(codes[found[i]], nbits)]).sum(1)
                    for i in range(len(q))])
    np.testing.assert_allclose(scores, adc, rtol=1e-4, atol=1e-4)
    # Deletions, compaction and persistence keep the codes in step with the vectors.
    g.delete(ids[:3000])
    g.compact()
    path = tmp_path / "pq.lf"
    g.save(path)
    for mmap in (False, True):
        h = lf.GraphIndex.load(path, mmap=mmap)
        assert h.quantizer is not None and h.quantizer.m == 16 and h.quantizer.nbits == nbits
        for a, b in zip(g.quantizer.centroids, h.quantizer.centroids):
            np.testing.assert_array_equal(a, b)
        for rerank in (True, False):
            a, b = g.search(q, 10, rerank=rerank), h.search(q, 10, rerank=rerank)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
            assert (a[1] >= 3000).all()


def _split(codes, nbits):
    """Sub-vector indices (n, m) of row-major codes."""
    if nbits == 8:
        return codes.astype(np.intp)
    return np.stack([codes & 15, codes >> 4], axis=2).reshape(len(codes), -1).astype(np.intp)


def test_quantizer_checks(rng):
    x, _ = clustered(rng, 600, 16)
    pq = lf.ProductQuantizer(16, 4).train(x, iterations=2)
    with pytest.raises(TypeError, match="ProductQuantizer"):
        lf.GraphIndex(16, quantizer="pq")
    with pytest.raises(ValueError, match="train"):
        lf.GraphIndex(16, quantizer=lf.ProductQuantizer(16, 4))
    with pytest.raises(ValueError, match="differ"):
        lf.GraphIndex(32, quantizer=pq)
    with pytest.raises(ValueError, match="differ"):
        lf.GraphIndex(16, metric="l2", quantizer=pq)
    g = lf.GraphIndex(16, storage="float16", quantizer=pq)  # codes of the float16 rows
    g.add(x)
    _, found = g.search(x[:5], 1, ef=32)
    assert (found[:, 0] == np.arange(5)).all()


# ---------------------------------------------------------------- failures part-way

def snapshot(g, q, path):
    """What must not change after a failed add or compact: the saved bytes, the results."""
    g.save(path)
    with open(path, "rb") as f:
        data = f.read()
    plain = g.search(q, 10, threads=1)
    filtered = g.search(q, 10, filter=F.range("year", 0, 299), threads=1)
    return data, len(g), [a.tobytes() for a in plain + filtered]


_MEMORY_LIMIT_SCRIPT = textwrap.dedent("""
    import os, resource, sys, tempfile
    import numpy as np
    import latefold as lf

    def address_space():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    rng = np.random.default_rng(5)
    d = 32
    def attributes(n, year=None):
        return {"year": rng.integers(0, 1000, n) if year is None else np.full(n, year),
                "tags": [rng.choice(50, 2, replace=False) for _ in range(n)]}
    g = lf.GraphIndex(d)
    g.add(rng.standard_normal((2000, d)).astype(np.float32), attributes=attributes(2000), threads=1)
    q = rng.standard_normal((20, d)).astype(np.float32)
    big, big_attributes = rng.standard_normal((60000, d)).astype(np.float32), attributes(60000)
    big_ids = np.arange(10**6, 10**6 + 60000)
    folder = tempfile.mkdtemp()

    def state():
        path = os.path.join(folder, "g.lf")
        g.save(path)
        with open(path, "rb") as f:
            data = f.read()
        s, i = g.search(q, 10, threads=1)
        fs, fi = g.search(q, 10, filter=lf.Filter.range("year", 0, 99), threads=1)
        return data, len(g), g.columns, s.tobytes(), i.tobytes(), fs.tobytes(), fi.tobytes()

    before = state()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    failures = 0
    # More room each time, until the add fits: the failures happen at many points of the add.
    for room in range(1 << 20, 1 << 30, 1 << 20):
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + room, hard))
        try:
            g.add(big, big_ids, big_attributes, threads=1)
        except MemoryError:
            failures += 1
        else:
            break
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        assert state() == before, room
    assert failures > 5, failures
    assert len(g) == 62000
    ids = g.add(rng.standard_normal((5, d)).astype(np.float32), attributes=attributes(5, 1234), threads=1)
    _, found = g.search(q[:1], 10, filter=lf.Filter.eq("year", 1234), threads=1)
    assert sorted(found[0][:5]) == sorted(ids), (found, ids)
    path = os.path.join(folder, "h.lf")
    g.save(path)
    h = lf.GraphIndex.load(path)
    assert np.array_equal(h.search(q, 10, threads=1)[1], g.search(q, 10, threads=1)[1])
    print("ok")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/statm")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer reserves its shadow memory and aborts when RLIMIT_AS stops it")
def test_add_that_runs_out_of_memory_changes_nothing():
    out = subprocess.run([sys.executable, "-c", _MEMORY_LIMIT_SCRIPT], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def fail_at(points, call):
    """Runs call() with its points-th fault point failing; True when it failed there."""
    _core._fail_after(points)
    try:
        call()
    except MemoryError:
        return True
    finally:
        _core._fail_after(0)
    return False


@pytest.mark.parametrize("quantized", [False, True])
def test_add_failing_part_way_changes_nothing(rng, tmp_path, quantized):
    # Fault points throw where the add could run out of memory: while the new vectors search the
    # graph, while reverse edges change existing nodes, while the entry point is chosen.
    x, q = clustered(rng, 1500, 16)
    attrs = attributes(rng, 1500)
    pq = lf.ProductQuantizer(16, 4).train(x, iterations=2) if quantized else None

    def build():
        g = lf.GraphIndex(16, degree=8, ef_construction=32, quantizer=pq)
        g.add(x[:700], None, {k: v[:700] for k, v in attrs.items()}, threads=1)
        return g

    def add_rest(g):
        g.add(x[700:], None, {k: v[700:] for k, v in attrs.items()}, threads=2)

    g = build()
    before = snapshot(g, q, tmp_path / "a.lf")
    failed = 0
    for points in list(range(1, 40)) + list(range(40, 4000, 97)):
        if not fail_at(points, lambda: add_rest(g)):
            break
        failed += 1
        assert snapshot(g, q, tmp_path / "a.lf") == before, points
    assert failed > 50
    # A later add gives the index that no failure would have given.
    g = build()
    fail_at(800, lambda: add_rest(g))
    add_rest(g)
    reference = build()
    add_rest(reference)
    assert snapshot(g, q, tmp_path / "a.lf") == snapshot(reference, q, tmp_path / "b.lf")


def test_compact_failing_part_way_changes_nothing(rng, tmp_path):
    x, q = clustered(rng, 1500, 16)
    ids = np.arange(1500)

    def build():
        g = lf.GraphIndex(16, degree=8, ef_construction=32)
        g.add(x, ids, attributes(np.random.default_rng(1), 1500), threads=1)
        g.delete(ids[::3])
        return g

    g = build()
    before = snapshot(g, q, tmp_path / "a.lf")
    failed = 0
    for points in list(range(1, 20)) + list(range(20, 4000, 61)):
        if not fail_at(points, lambda: g.compact(threads=2)):
            break
        failed += 1
        assert snapshot(g, q, tmp_path / "a.lf") == before, points
    assert failed > 20
    g = build()
    fail_at(300, lambda: g.compact(threads=2))
    g.compact()
    reference = build()
    reference.compact()
    assert snapshot(g, q, tmp_path / "a.lf") == snapshot(reference, q, tmp_path / "b.lf")


def test_k_and_ef_beyond_the_index_only_pad(rng):
    x, q = clustered(rng, 500, 16)
    g = lf.GraphIndex(16)
    g.add(x)
    g.delete(np.arange(10))
    scores, ids = g.search(q, 490, ef=2**70)
    wide_scores, wide_ids = g.search(q, 10**5, ef=2**70)
    np.testing.assert_array_equal(wide_ids[:, :490], ids)
    np.testing.assert_array_equal(wide_scores[:, :490], scores)
    assert (wide_ids[:, 490:] == -1).all() and (wide_scores[:, 490:] == -np.inf).all()
    for k in (2**64, 2**62):
        with pytest.raises(ValueError, match="k = "):
            g.search(q, k)
