"""latefold.ray on a local Ray cluster: a ShardedIndex answers as one MultiVectorIndex over the
union of its shards (exact searches identically, approximate ones as well), routes by id, merges
ties by id, saves and loads, survives or reports lost shards, rejects bad input before anything
changes; FDE encoding of a Ray Dataset equals FDE.encode_documents."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="latefold.ray needs the optional extra: pip install 'latefold[ray]'")

import latefold as lf  # noqa: E402
from latefold.ray import ShardedIndex, ShardError, _merge, encode_fde, shard_of  # noqa: E402
from test_index import clustered_docs, queries_from  # noqa: E402

# Ray Data's own configuration warns about its deprecated settings on first use.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

DIM = 16
PARAMS = {"centroids": 64, "degree": 16, "ef_construction": 64}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus():
    """300 documents with spread-out ids (negative ones too), a year and labels; 12 queries."""
    seed = int(os.environ.get("LATEFOLD_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"LATEFOLD_SEED={seed}")
    rng = np.random.default_rng(seed)
    docs, centres = clustered_docs(rng, 300, DIM, lengths=(3, 24))
    ids = rng.choice(np.arange(-10**6, 10**6, 13), size=300, replace=False).astype(np.int64)
    attributes = {"year": rng.integers(1990, 2000, 300),
                  "tags": [rng.choice(6, size=rng.integers(0, 3), replace=False) for _ in range(300)]}
    return docs, ids, attributes, queries_from(rng, centres, 12, DIM)


def both(num_shards, corpus, **params):
    """A ShardedIndex and one MultiVectorIndex with the same parameters and documents."""
    docs, ids, attributes, _ = corpus
    params = {**PARAMS, **params}
    sharded = ShardedIndex(num_shards, DIM, **params)
    one = lf.MultiVectorIndex(DIM, **params)
    assert sharded.add(docs, ids, attributes).tolist() == ids.tolist()
    one.add(docs, ids, attributes)
    return sharded, one


def assert_same(a, b):
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].dtype == b[0].dtype == np.float32 and a[1].dtype == b[1].dtype == np.int64


def recall(found, truth):
    return np.mean([len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth)])


def generations(index):
    return [ray.get(a.state.remote())[0] for a in index.actors]


# ------------------------------------------------------------------------------ one index, sharded

@pytest.mark.parametrize("num_shards, candidates", [(2, "mean"), (3, "fde")])
def test_equals_one_index_on_the_union(corpus, num_shards, candidates):
    docs, ids, attributes, queries = corpus
    fde = lf.FDE(DIM, 4, 3, projection_dimension=8, final_projection_dimension=128) if candidates == "fde" else None
    sharded, one = both(num_shards, corpus, candidates=candidates, fde=fde)
    assert len(sharded) == len(one) == 300 and sharded.params == one.params
    assert sorted(sharded.stats()["shards"][s]["documents"] for s in range(num_shards)) == \
        sorted(np.bincount(shard_of(ids, num_shards), minlength=num_shards).tolist())
    year, tags = attributes["year"], attributes["tags"]
    filters = [None, lf.Filter.range("year", 1992, 1994), lf.Filter.labels("tags").any([2]) & ~lf.Filter.eq("year", 1995),
               ids[::9], lf.Filter.ids(ids[:3]) | lf.Filter.eq("year", 1997),
               [lf.Filter.ids(ids[5:6]), None] * 6, lf.Filter.ids(ids[:2])]  # the last: fewer than k match
    for f in filters:
        for k in (1, 7):
            assert_same(sharded.search(queries, k, exact=True, filter=f), one.search(queries, k, exact=True, filter=f))
    assert_same(sharded.search(queries[0], 400, exact=True), one.search(queries[0], 400, exact=True))  # 1-D, capped
    # Approximate: each shard searches `candidates` of its own, so at least as well as one index.
    truth = one.search(queries, 10, exact=True)[1]
    for params in ({}, {"candidates": 32, "rerank": 16}):
        assert recall(sharded.search(queries, 10, **params)[1], truth) >= \
            recall(one.search(queries, 10, **params)[1], truth) - 0.05
    in_range = sharded.search(queries, 10, filter=lf.Filter.range("year", 1992, 1994))[1]
    allowed = set(ids[(year >= 1992) & (year <= 1994)].tolist())
    assert set(in_range[in_range >= 0].tolist()) <= allowed
    # Deletes and updates, routed by id, honoured by every shard.
    gone, changed = ids[::7], ids[1::7][:10]
    sharded.delete(gone)
    one.delete(gone)
    new = [d[::-1] * 0.5 for d in docs[1::7][:10]]
    new_attributes = {"year": np.full(10, 1991), "tags": [np.array([5])] * 10}
    sharded.update(changed, new, new_attributes)
    one.update(changed, new, new_attributes)
    assert len(sharded) == len(one)
    for f in (None, lf.Filter.eq("year", 1991), lf.Filter.labels("tags").all([5])):
        assert_same(sharded.search(queries, 7, exact=True, filter=f), one.search(queries, 7, exact=True, filter=f))
    found = sharded.search(queries, 10)[1]
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert sharded.stats()["documents"] == len(one)
    sharded.close()


def test_routing_is_splitmix64_mod_shards():
    def splitmix64(x):  # the rule, one id at a time in Python integers
        z = (x + 0x9E3779B97F4A7C15) % 2**64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return z ^ (z >> 31)

    # Vigna's splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF, then 0x6E789E6AA1B965F4.
    assert [splitmix64(0), splitmix64(0x9E3779B97F4A7C15)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]
    ids = np.array([0, 1, 2, -1, -(2**63), 2**63 - 1, 123456789], dtype=np.int64)
    for n in (1, 2, 3, 7, 100):
        assert shard_of(ids, n).tolist() == [splitmix64(int(i) % 2**64) % n for i in ids]
    assert shard_of(ids, 7).tolist() == [2, 2, 4, 0, 6, 2, 5]  # pinned: files depend on it
    # Consecutive ids spread evenly.
    counts = np.bincount(shard_of(np.arange(30000), 3))
    assert counts.min() > 9700
    with pytest.raises(TypeError):
        shard_of([0.5], 2)


def test_default_ids_are_consecutive_and_never_reused(corpus):
    docs = corpus[0]
    index = ShardedIndex(2, DIM, **PARAMS)
    assert index.add(docs[:5]).tolist() == [0, 1, 2, 3, 4]
    index.delete([3, 4])
    assert index.add(docs[5:7]).tolist() == [5, 6]
    index.add(docs[7:8], ids=[100])
    assert index.add(docs[8:10]).tolist() == [101, 102]  # past every id ever added
    assert len(index) == 8
    index.close()


def test_merge_breaks_ties_by_id(corpus):
    docs, _, _, queries = corpus
    twins = [docs[0]] * 8 + [docs[1]] * 4  # equal tokens: equal scores
    ids = np.array([40, 7, 99, -3, 12, 5, 64, 8, 1, 2, 3, 4])
    sharded = ShardedIndex(3, DIM, **PARAMS)
    sharded.add(twins, ids)
    assert len(set(shard_of(ids, 3).tolist())) == 3
    one = lf.MultiVectorIndex(DIM, **PARAMS)
    one.add(twins, ids)
    for k in (3, 5, 12):
        s, i = sharded.search(queries, k, exact=True)
        assert_same((s, i), one.search(queries, k, exact=True))
        ties = s[:, :-1] == s[:, 1:]
        assert (i[:, :-1][ties] < i[:, 1:][ties]).all()
    # The merge itself does not depend on the order of the shards' answers.
    parts = [(np.array([[3.0, 1.0]], np.float32), np.array([[9, 2]])), (np.array([[3.0, 3.0]], np.float32), np.array([[5, 1]])),
             (np.array([[1.0, -np.inf]], np.float32), np.array([[0, -1]]))]
    want = (np.array([[3.0, 3.0, 3.0, 1.0, 1.0]], np.float32), np.array([[1, 5, 9, 0, 2]]))
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        assert_same(_merge([parts[j] for j in order], 1, 5), want)
    s, i = _merge([parts[2]], 1, 3)
    assert i.tolist() == [[0, -1, -1]] and np.isneginf(s[0, 1:]).all()
    sharded.close()


# ------------------------------------------------------------------------------------- bad input

def test_bad_input_is_rejected_before_anything_changes(corpus):
    docs, ids, attributes, queries = corpus
    index = ShardedIndex(2, DIM, **PARAMS)
    index.add(docs[:40], ids[:40], {name: column[:40] for name, column in attributes.items()})
    before = (len(index), generations(index), index.search(queries, 5, exact=True)[1].tolist())
    wrong_dim = [np.ones((3, DIM + 1), np.float32)]
    good = {name: column[40:42] for name, column in attributes.items()}
    cases = [
        (ValueError, "dimension", lambda: index.add(wrong_dim)),
        (ValueError, "dimension", lambda: index.search(wrong_dim, 5)),
        (ValueError, "dimension", lambda: index.update(ids[:1], wrong_dim, good)),
        (ValueError, "k must be at least 1", lambda: index.search(queries, 0)),
        (TypeError, "k must be an int", lambda: index.search(queries, 2.5)),
        (ValueError, "candidates", lambda: index.search(queries, 5, candidates=-1)),
        (ValueError, f"ids: {ids[40]} repeated", lambda: index.add(docs[40:42], [ids[40]] * 2, good)),
        (ValueError, f"ids: {ids[3]} is already in the index", lambda: index.add(docs[40:42], [ids[41], ids[3]], good)),
        (ValueError, "is not in the index", lambda: index.delete([ids[0], 10**15])),
        (ValueError, "repeated", lambda: index.delete([ids[0], ids[0]])),
        (ValueError, "not in the index", lambda: index.update([10**15], docs[:1], {n: c[:1] for n, c in good.items()})),
        (ValueError, "missing", lambda: index.add(docs[40:42], ids[40:42])),
        (ValueError, "unknown attribute", lambda: index.search(queries, 5, filter=lf.Filter.eq("nope", 1))),
        (ValueError, "not in the index", lambda: index.search(queries, 5, filter=lf.Filter.ids([10**15]))),
        (ValueError, "non-finite|finite", lambda: index.add([np.full((2, DIM), np.nan, np.float32)], [10**15], good and
                                                          {n: c[:1] for n, c in good.items()})),
        (ValueError, "one per query", lambda: index.search(queries, 5, filter=[None])),
        (TypeError, "filter must be", lambda: index.search(queries, 5, filter="year")),
    ]
    for error, match, call in cases:
        with pytest.raises(error, match=match):
            call()
        assert (len(index), generations(index), index.search(queries, 5, exact=True)[1].tolist()) == before
    with pytest.raises(ValueError, match="num_shards"):
        ShardedIndex(0, DIM)
    with pytest.raises(ValueError, match="token_storage"):
        ShardedIndex(2, DIM, token_storage="int4")
    index.close()


# ----------------------------------------------------------------------------------- persistence

def test_save_and_load_on_fresh_actors(corpus, tmp_path):
    docs, ids, attributes, queries = corpus
    index = ShardedIndex(3, DIM, token_storage="int8", **PARAMS)
    index.add(docs, None, attributes)
    index.delete([4, 5])
    index.save(tmp_path / "sharded")
    manifest = json.loads((tmp_path / "sharded" / "manifest.json").read_text())
    assert manifest["num_shards"] == 3 and manifest["routing"] == "splitmix64(id) mod num_shards"
    assert manifest["next_id"] == 300 and manifest["params"] == index.params and manifest["version"] == 1
    assert [e["documents"] for e in manifest["shards"]] == [s["documents"] for s in index.stats()["shards"]]
    back = ShardedIndex.load(tmp_path / "sharded")
    assert not set(map(id, back.actors)) & set(map(id, index.actors)) and len(back) == 298
    for kwargs in ({"exact": True}, {}, {"filter": lf.Filter.range("year", 1990, 1993)}):
        assert_same(back.search(queries, 10, **kwargs), index.search(queries, 10, **kwargs))
    two = {name: column[:2] for name, column in attributes.items()}
    assert back.add(docs[:2], None, two).tolist() == [300, 301] and back.columns == index.columns
    index.close()
    back.close()


# ---------------------------------------------------------------------------------------- faults

def kill(index, shard):
    """Kills a shard's actor (Ray restarts it while max_restarts allows) and waits until the old
    instance is gone: ray.kill returns before the actor dies, and a call made at once could still
    be answered by the old instance. Gone: its state reads otherwise (a restart sets `restarted`),
    or the call fails (dead, or restarting)."""
    actor = index.actors[shard]
    before = ray.get(actor.state.remote())
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if ray.get(actor.state.remote(), timeout=10) != before:
                return
        except Exception:
            return
        time.sleep(0.05)


def test_a_killed_shard_restarts_from_its_file(corpus, tmp_path):
    docs, ids, attributes, queries = corpus
    index = ShardedIndex(2, DIM, **PARAMS)
    index.add(docs[:200], ids[:200], {n: c[:200] for n, c in attributes.items()})
    index.save(tmp_path / "a")
    want = index.search(queries, 10)
    kill(index, 1)
    assert_same(index.search(queries, 10), want)  # reloaded from shard-00001.lf
    kill(index, 0)
    index.add(docs[200:], ids[200:], {n: c[200:] for n, c in attributes.items()})  # after a reload, on top of it
    one = lf.MultiVectorIndex(DIM, **PARAMS)
    one.add(docs, ids, attributes)
    assert_same(index.search(queries, 10, exact=True), one.search(queries, 10, exact=True))
    # Loaded shards restart from the file they were loaded from.
    index.save(tmp_path / "b")
    loaded = ShardedIndex.load(tmp_path / "b")
    kill(loaded, 0)
    assert_same(loaded.search(queries, 10, exact=True), one.search(queries, 10, exact=True))
    index.close()
    loaded.close()


def test_a_lost_shard_is_an_error_or_a_flagged_partial_answer(corpus, tmp_path):
    docs, ids, attributes, queries = corpus
    index = ShardedIndex(2, DIM, **PARAMS)
    index.add(docs[:100], ids[:100])
    kill(index, 1)  # never saved: its documents are gone
    with pytest.raises(ShardError, match="shard 1: .*never saved") as error:
        index.search(queries, 10)
    assert error.value.shard == 1
    scores, found, missing = index.search(queries, 10, exact=True, partial=True)
    assert missing == [1]
    live = ids[:100][shard_of(ids[:100], 2) == 0]
    one = lf.MultiVectorIndex(DIM, **PARAMS)
    one.add([docs[i] for i in np.flatnonzero(shard_of(ids[:100], 2) == 0)], live)
    assert_same((scores, found), one.search(queries, 10, exact=True))
    assert index.search(queries, 10, partial=True)[2] == [1]
    # Saved, then changed, then killed: the file is older than the shard was, so it must not answer.
    index = ShardedIndex(2, DIM, **PARAMS)
    index.add(docs[:100], ids[:100])
    index.save(tmp_path / "c")
    index.add(docs[100:200], ids[100:200])
    kill(index, 0)
    with pytest.raises(ShardError, match="shard 0: restarted holding 0 documents at generation 0, but it had .* at generation 2 .* holds generation 1"):
        index.search(queries, 10)
    with pytest.raises(ShardError, match="shard 0"):  # nor take changes on top of the old file
        index.add(docs[200:], ids[200:])
    # A shard that has used up its restarts is dead.
    index = ShardedIndex(2, DIM, max_restarts=0, **PARAMS)
    index.add(docs[:50], ids[:50])
    kill(index, 0)
    with pytest.raises(ShardError, match="shard 0: its actor is dead"):
        index.search(queries, 10)
    assert index.search(queries, 10, partial=True)[2] == [0]


# ------------------------------------------------------------------------- batches and datasets

def test_add_from_batches_and_a_ray_dataset(corpus):
    docs, ids, attributes, queries = corpus
    one = lf.MultiVectorIndex(DIM, **PARAMS)
    one.add(docs, ids, {"year": attributes["year"]})
    streamed = ShardedIndex(3, DIM, **PARAMS)
    batches = ((docs[i:i + 40], ids[i:i + 40], {"year": attributes["year"][i:i + 40]}) for i in range(0, 300, 40))
    assert streamed.add(batches, in_flight=3).tolist() == ids.tolist()
    assert_same(streamed.search(queries, 10, exact=True), one.search(queries, 10, exact=True))
    rows = [{"id": int(i), "tokens": d, "year": int(y)} for i, d, y in zip(ids, docs, attributes["year"])]
    from_dataset = ShardedIndex(2, DIM, **PARAMS)
    assert sorted(from_dataset.add(ray.data.from_items(rows), batch_size=64).tolist()) == sorted(ids.tolist())
    assert_same(from_dataset.search(queries, 10, exact=True), one.search(queries, 10, exact=True))
    f = lf.Filter.range("year", 1995, None)
    assert_same(from_dataset.search(queries, 10, exact=True, filter=f), one.search(queries, 10, exact=True, filter=f))
    streamed.close()
    from_dataset.close()


def test_encode_fde_of_a_dataset_equals_encode_documents(corpus):
    docs, ids, _, queries = corpus
    fde = lf.FDE(DIM, 4, 3, projection_dimension=8)
    ds = ray.data.from_items([{"id": int(i), "tokens": d} for i, d in zip(ids[:60], docs[:60])])
    rows = sorted(encode_fde(ds, fde, batch_size=16).take_all(), key=lambda r: r["id"])
    order = np.argsort(ids[:60])
    np.testing.assert_array_equal(np.stack([r["fde"] for r in rows]), fde.encode_documents(docs[:60])[order])
    ds = ray.data.from_items([{"q": q} for q in queries])
    got = np.stack([r["out"] for r in encode_fde(ds, fde, column="q", output_column="out", kind="queries").take_all()])
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(fde.encode_queries(queries), axis=0))
    with pytest.raises(TypeError, match="fde must be"):
        encode_fde(ds, fde.params)
    with pytest.raises(ValueError, match="kind"):
        encode_fde(ds, fde, kind="docs")


# ------------------------------------------------------------------- shard-side (parallel) builds

def dataset_of(docs, ids, attributes=None, blocks=4, **columns):
    """A Ray Dataset of rows "id", "tokens" and attribute columns, in a few blocks (every block
    is one selection task per shard)."""
    rows = [{"id": int(i), "tokens": d} for i, d in zip(ids, docs)]
    for name, column in {**(attributes or {}), **columns}.items():
        for row, value in zip(rows, column):
            row[name] = value
    return ray.data.from_items(rows, override_num_blocks=blocks)


def test_parallel_build_equals_the_driver_routed_one_and_one_index(corpus, tmp_path):
    docs, ids, attributes, queries = corpus
    sharded, one = both(3, corpus)  # routed by the driver
    built = ShardedIndex(3, DIM, **PARAMS)
    added = built.add(dataset_of(docs, ids, attributes), parallel=True, batch_size=32)
    assert added.tolist() == sorted(ids.tolist()) and len(built) == 300 and built.columns == one.columns
    assert built._generation == generations(built) and built._sent == built._generation
    assert [s["documents"] for s in built.stats()["shards"]] == np.bincount(shard_of(ids, 3), minlength=3).tolist()
    for f in (None, lf.Filter.range("year", 1992, 1994), lf.Filter.labels("tags").any([2]), ids[::9]):
        want = one.search(queries, 7, exact=True, filter=f)
        assert_same(built.search(queries, 7, exact=True, filter=f), want)
        assert_same(sharded.search(queries, 7, exact=True, filter=f), want)
    # Default ids continue past the largest id built; a later parallel add checks ids are new.
    two = {name: column[:2] for name, column in attributes.items()}
    assert built.add(docs[:2], None, two).tolist() == [ids.max() + 1, ids.max() + 2]
    with pytest.raises(ValueError, match=f"ids: {ids[5]} is already in the index"):
        built.add(dataset_of(docs[5:6], ids[5:6], {n: c[5:6] for n, c in attributes.items()}, blocks=1), parallel=True)
    assert built._generation == generations(built) and len(built) == 302
    # Its generations are those of a saved file: a killed shard reloads it.
    built.save(tmp_path / "built")
    want = built.search(queries, 7, exact=True)
    kill(built, 0)
    assert_same(built.search(queries, 7, exact=True), want)
    sharded.close()
    built.close()


def test_parallel_build_rejects_what_the_driver_cannot_route(corpus):
    docs, ids, _, _ = corpus
    index = ShardedIndex(2, DIM, **PARAMS)
    for batch_size, shift in ((64, 0), (4, 1)):  # the repeat in the same batch, or in a later one; new ids
        repeated = np.concatenate([ids[:30], ids[3:4]]) + shift
        with pytest.raises(ValueError, match=f"shard {shard_of(repeated[3], 2)}: ids: {repeated[3]} repeated in the Dataset"):
            index.add(dataset_of(docs[:31], repeated), parallel=True, batch_size=batch_size)
    assert index._generation == generations(index) and len(index) == sum(s["documents"] for s in index.stats()["shards"])
    tokens_only = ray.data.from_items([{"tokens": d} for d in docs[:8]], override_num_blocks=2)
    with pytest.raises(ValueError, match="needs columns 'tokens' and 'id'"):  # seen in the schema
        index.add(tokens_only, parallel=True)
    with pytest.raises(ValueError, match="needs an 'id' column"):  # schema unknown: the shards see it
        index.add(tokens_only.map_batches(lambda batch: batch), parallel=True)
    with pytest.raises(TypeError, match="parallel=True reads a Ray Dataset"):
        index.add(docs[:2], ids[:2], parallel=True)
    with pytest.raises(ValueError, match="dimension"):
        index.add(dataset_of([np.ones((2, DIM + 1), np.float32)], [10**15], blocks=1), parallel=True)
    index.close()


def test_a_shard_lost_during_a_parallel_build(corpus, tmp_path):
    docs, ids, attributes, queries = corpus

    def killer(batch, actor, marker):  # nested: travels by value to Ray's workers
        """A Dataset step that kills a shard's actor the first time any task runs it."""
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return batch
        ray.kill(actor, no_restart=False)
        time.sleep(1)  # every shard's selection waits on this step: the shard dies before it is done
        return batch

    # Restarted empty, as it was before the build: built again.
    index = ShardedIndex(2, DIM, **PARAMS)
    ds = dataset_of(docs, ids, attributes).map_batches(killer, fn_kwargs={"actor": index.actors[1],
                                                                           "marker": str(tmp_path / "a")})
    assert len(index.add(ds, parallel=True)) == 300 and os.path.exists(tmp_path / "a")
    one = lf.MultiVectorIndex(DIM, **PARAMS)
    one.add(docs, ids, attributes)
    assert_same(index.search(queries, 10, exact=True), one.search(queries, 10, exact=True))
    index.close()
    # Dead: ShardError naming it; the other shard keeps its documents.
    index = ShardedIndex(2, DIM, max_restarts=0, **PARAMS)
    ds = dataset_of(docs, ids).map_batches(killer, fn_kwargs={"actor": index.actors[1], "marker": str(tmp_path / "b")})
    with pytest.raises(ShardError, match="shard 1: its actor is dead") as error:
        index.add(ds, parallel=True)
    assert error.value.shard == 1 and len(index) == int((shard_of(ids, 2) == 0).sum())
    assert index.search(queries, 10)[1].shape == (12, 10)  # shard 1 holds nothing the driver counts
    on_1 = ids[shard_of(ids, 2) == 1][:1]
    with pytest.raises(ShardError, match="shard 1"):
        index.add(docs[:1], on_1)
    index.close()
