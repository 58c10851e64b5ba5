"""Pickling and copying: every object travels as the bytes its file holds (README, "Files"), gives
the same results afterwards, copies are independent, and damaged bytes raise ValueError."""

from __future__ import annotations

import copy
import multiprocessing
import operator
import pickle

import numpy as np
import pytest

import latefold as lf

COPIES = [
    pytest.param(lambda obj: pickle.loads(pickle.dumps(obj)), id="pickle"),
    pytest.param(lambda obj: pickle.loads(pickle.dumps(obj, protocol=2)), id="pickle-2"),
    pytest.param(copy.copy, id="copy"),
    pytest.param(copy.deepcopy, id="deepcopy"),
]


@pytest.fixture
def data(rng):
    x = rng.standard_normal((300, 16)).astype(np.float32)
    return x, rng.standard_normal((5, 16)).astype(np.float32)


def graph_with_everything(x, rng, storage="float32"):
    pq = lf.ProductQuantizer(16, m=8, nbits=4, metric="l2", rotation="random").train(x, iterations=3)
    index = lf.GraphIndex(16, metric="l2", storage=storage, degree=8, ef_construction=32, quantizer=pq)
    ids = np.arange(len(x)) * 3 + 11
    index.add(x, ids, attributes={"year": rng.integers(1990, 2000, len(x)), "score": rng.random(len(x)),
                                  "tags": [[i % 4, i % 7] for i in range(len(x))]})
    index.delete(ids[::10])
    return index


def same_search(a, b, queries, **kwargs):
    sa, ia = a.search(queries, 7, **kwargs)
    sb, ib = b.search(queries, 7, **kwargs)
    return sa.tobytes() == sb.tobytes() and ia.tobytes() == ib.tobytes()


@pytest.mark.parametrize("again", COPIES)
def test_multivectors(again, rng):
    for dtype in (np.float32, np.float16):
        mv = lf.MultiVectors([rng.standard_normal((n, 6)).astype(dtype) for n in (3, 1, 5)])
        for original in (mv, mv[1:3], mv[2:2]):
            back = again(original)
            assert type(back) is lf.MultiVectors and back.dtype == original.dtype
            assert back.tokens.tobytes() == original.tokens.tobytes()
            assert back.offsets.tobytes() == original.offsets.tobytes()
            assert not back.tokens.flags.writeable


@pytest.mark.parametrize("again", COPIES)
def test_fde(again, rng):
    docs = lf.MultiVectors([rng.standard_normal((n, 8)).astype(np.float32) for n in (4, 2, 9)])
    for fde in (lf.FDE(8, 3, 2, seed=5), lf.FDE(8, 2, 3, projection_type="identity", final_projection_dimension=64)):
        back = again(fde)
        assert back == fde and back.params == fde.params
        assert back.encode_documents(docs).tobytes() == fde.encode_documents(docs).tobytes()
        assert back.encode_queries(docs).tobytes() == fde.encode_queries(docs).tobytes()


@pytest.mark.parametrize("again", COPIES)
def test_product_quantizer_and_packed_codes(again, data):
    x, queries = data
    untrained = again(lf.ProductQuantizer(16, m=4, nbits=8, metric="ip", rotation="opq"))
    assert not untrained.is_trained and untrained.rotation is None
    for nbits, rotation in ((8, None), (4, "opq")):
        pq = lf.ProductQuantizer(16, m=5, nbits=nbits, metric="ip", rotation=rotation).train(x, iterations=3)
        back = again(pq)
        codes = pq.encode(x)
        assert back.encode(x).tobytes() == codes.tobytes()
        assert back.lut(queries).tobytes() == pq.lut(queries).tobytes()
        assert back.search(codes, queries, 5)[1].tobytes() == pq.search(codes, queries, 5)[1].tobytes()
        if nbits == 4:
            packed = pq.pack(codes)
            packed_back = again(packed)
            assert packed_back.codes.tobytes() == packed.codes.tobytes() and packed_back.nbytes == packed.nbytes
            assert not packed_back.codes.flags.writeable
            for a, b in zip(pq.search(packed, queries, 5), back.search(packed_back, queries, 5)):
                assert a.tobytes() == b.tobytes()
        back.train(x[::-1], iterations=2, seed=9)  # a copy trains alone
        assert pq.encode(x).tobytes() == codes.tobytes()


@pytest.mark.parametrize("again", COPIES)
def test_graph(again, data, rng):
    x, queries = data
    for storage in ("float32", "float16"):
        index = graph_with_everything(x, rng, storage)
        back = again(index)
        assert back.params == index.params and len(back) == len(index) and back.columns == index.columns
        assert back.quantizer is not None and back.quantizer.rotation.tobytes() == index.quantizer.rotation.tobytes()
        f = lf.Filter.range("year", 1992, 1996) & lf.Filter.labels("tags").any([1])
        for kwargs in ({}, {"rerank": False}, {"filter": f}, {"ef": 16, "filter": ~f}):
            assert same_search(index, back, queries, **kwargs)
        # Copies are independent in both directions.
        before = index.search(queries, 7)
        back.add(x[:4] + 1, np.arange(4) + 10**6, attributes={"year": np.arange(4), "score": np.zeros(4),
                                                               "tags": [[], [1], [2], []]})
        back.delete([11 + 3])
        back.compact()
        assert len(back) == len(index) + 3 and 10**6 not in index and (11 + 3) in index
        after = index.search(queries, 7)
        assert before[0].tobytes() == after[0].tobytes() and before[1].tobytes() == after[1].tobytes()
        index.delete([11 + 6])
        assert (11 + 6) in back


@pytest.mark.parametrize("again", COPIES)
def test_filter(again, data, rng):
    """A filter travels to processes as its nodes and selects the same documents there."""
    x, queries = data
    index = graph_with_everything(x, rng)
    deep = lf.Filter.eq("year", 1990)
    for i in range(lf.Filter.MAX_DEPTH - 1):  # as deep as a filter may be: pickle must not recurse
        deep = ~deep if i % 2 else deep | lf.Filter.ids([14 + 3 * (i % 9)])  # ids the index holds
    mask = np.zeros(2000, dtype=bool)
    mask[::5] = True
    for f in (lf.Filter.range("year", 1992, 1996.5) & lf.Filter.labels("tags").any([1]),
              (lf.Filter.isin("year", [1991, 1993]) | lf.Filter.labels("tags").all([2, 3])) & ~lf.Filter.ids([14]),
              lf.Filter.mask(mask) | lf.Filter.range("score", 0.5, None), deep):
        back = again(f)
        assert repr(back) == repr(f) and back._depth == f._depth
        want, got = index.search(queries, 7, filter=f), index.search(queries, 7, filter=back)
        assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


def test_pickles_are_the_files_bytes(data, rng, tmp_path):
    x, _ = data
    index = graph_with_everything(x, rng)
    objects = {"g": index, "pq": index.quantizer, "fde": lf.FDE(16, 2, 2)}
    for name, obj in objects.items():
        obj.save(tmp_path / name)
        _, (image,) = obj.__reduce__()
        assert image == (tmp_path / name).read_bytes()


def test_mapped_graph_pickles_its_data(data, rng, tmp_path):
    x, queries = data
    index = graph_with_everything(x, rng)
    path = tmp_path / "g.lf"
    index.save(path)
    mapped = lf.GraphIndex.load(path, mmap=True)
    blob = pickle.dumps(mapped)
    path.unlink()  # the pickle does not refer to the file
    back = pickle.loads(blob)
    assert same_search(index, back, queries) and same_search(index, back, queries, rerank=False)
    clone = copy.deepcopy(mapped)
    clone.add(x[:2], [-1, -2], attributes={"year": np.zeros(2, np.int64), "score": np.zeros(2), "tags": [[], []]})
    assert len(clone) == len(mapped) + 2 and -1 not in mapped


def test_objects_travel_to_a_spawned_worker_and_back(data, rng):
    x, queries = data
    index = graph_with_everything(x, rng)
    docs = lf.MultiVectors([rng.standard_normal((n, 16)).astype(np.float16) for n in (2, 6)])
    fde = lf.FDE(16, 2, 2)
    packed = index.quantizer.pack(index.quantizer.encode(x))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        scores, ids = pool.apply(operator.methodcaller("search", queries, 7), (index,))
        encoded = pool.apply(fde.encode_documents, (docs,))
        returned = pool.apply(copy.copy, ((index, docs, fde, index.quantizer, packed),))
    expected = index.search(queries, 7)
    assert scores.tobytes() == expected[0].tobytes() and ids.tobytes() == expected[1].tobytes()
    assert encoded.tobytes() == fde.encode_documents(docs).tobytes()
    index_back, docs_back, fde_back, pq_back, packed_back = returned
    assert same_search(index, index_back, queries)
    assert docs_back.tokens.tobytes() == docs.tokens.tobytes() and fde_back == fde
    assert pq_back.encode(x).tobytes() == index.quantizer.encode(x).tobytes()
    assert packed_back.codes.tobytes() == packed.codes.tobytes()


def objects(rng):
    x = rng.standard_normal((120, 8)).astype(np.float32)
    pq = lf.ProductQuantizer(8, m=4, nbits=4).train(x, iterations=2)
    index = lf.GraphIndex(8, degree=6, quantizer=pq)
    index.add(x, attributes={"year": np.arange(120)})
    index.delete([3])
    mv = lf.MultiVectors([x[:3], x[3:7]])
    return [index, pq, pq.pack(pq.encode(x)), lf.FDE(8, 2, 2), mv]


def test_damaged_bytes_raise_value_error(rng):
    for obj in objects(rng):
        rebuild, (image,) = obj.__reduce__()
        rebuild(image)
        for cut in range(0, len(image), max(1, len(image) // 150)):
            with pytest.raises(ValueError):
                rebuild(image[:cut])
        for trial in range(100):
            damaged = bytearray(image)
            at = int(rng.integers(0, 128 if trial % 2 else len(image)))  # the header and table, then anywhere
            damaged[at] ^= 1 << int(rng.integers(0, 8))
            try:
                rebuild(bytes(damaged))
            except ValueError:
                continue
            # Accepted: only a flip in the padding between sections can be.
            assert rebuild(bytes(damaged)).__reduce__()[1][0] == image
        with pytest.raises(ValueError, match="not a latefold file"):
            rebuild(b"not a latefold image" * 10)


def test_damaged_pickle_raises_value_error(rng):
    for obj in objects(rng):
        blob = pickle.dumps(obj)
        image = obj.__reduce__()[1][0]
        start = blob.find(image)
        assert start > 0
        damaged = bytearray(blob)
        damaged[start + len(image) - 1] ^= 0x10  # the last section's last byte
        with pytest.raises(ValueError, match="corrupt"):
            pickle.loads(bytes(damaged))


def test_another_kind_is_refused(rng):
    index, pq, packed, fde, mv = objects(rng)
    with pytest.raises(ValueError, match="holds a 'pq', not a 'graph'"):
        type(index)._from_bytes(pq.__reduce__()[1][0])
    with pytest.raises(ValueError, match="not a 'multivectors'"):
        type(mv)._from_bytes(packed.__reduce__()[1][0])
    with pytest.raises(TypeError):
        type(fde)._from_bytes(bytearray(fde.__reduce__()[1][0]))
