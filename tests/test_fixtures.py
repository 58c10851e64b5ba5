"""Files written by earlier latefold versions keep loading and give the same results.

tests/fixtures/<version>/ holds small files of every object kind written by that version
(tests/fixtures/make_fixtures.py) and the results recorded then (expected.npz).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import latefold as lf

FOLDER = os.path.join(os.path.dirname(__file__), "fixtures")
VERSIONS = sorted(v for v in os.listdir(FOLDER) if os.path.isfile(os.path.join(FOLDER, v, "expected.npz")))


def _ragged(flat, offsets):
    return [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def _same_ranking(scores, ids, expected_scores, expected_ids):
    """Scores within float32 rounding of the recorded ones (another SIMD path may sum in
    another order), and the same ids except where two recorded scores are that close."""
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
    gaps = np.abs(np.diff(expected_scores, axis=1))
    tied = np.zeros(expected_ids.shape, bool)
    tied[:, 1:] |= gaps < 1e-4
    tied[:, :-1] |= gaps < 1e-4
    np.testing.assert_array_equal(ids[~tied], expected_ids[~tied])


@pytest.fixture(params=VERSIONS)
def fixture(request):
    folder = os.path.join(FOLDER, request.param)
    with np.load(os.path.join(folder, "expected.npz")) as data:
        return folder, dict(data)


def test_fde(fixture):
    folder, e = fixture
    fde = lf.FDE.load(os.path.join(folder, "fde.lf"))
    assert fde.params["seed"] == 7 and fde.params["num_repetitions"] == 3
    docs = _ragged(e["fde_docs"], e["fde_doc_offsets"])
    queries = _ragged(e["fde_queries"], e["fde_query_offsets"])
    np.testing.assert_allclose(fde.encode_documents(docs), e["fde_encoded_docs"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fde.encode_queries(queries), e["fde_encoded_queries"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["pq8_ip", "pq4_l2", "pq8_random", "pq4_opq"])
def test_pq(fixture, name):
    folder, e = fixture
    pq = lf.ProductQuantizer.load(os.path.join(folder, f"{name}.lf"))
    assert pq.is_trained and pq.dim == 16
    assert (pq.rotation is not None) == name.endswith(("random", "opq"))
    codes = pq.encode(e["pq_vectors"])
    np.testing.assert_array_equal(codes, e[f"{name}_codes"])
    scores, ids = pq.search(codes, e["pq_queries"], k=7)
    _same_ranking(scores, ids, e[f"{name}_scores"], e[f"{name}_ids"])


def test_pq_untrained(fixture):
    folder, _ = fixture
    pq = lf.ProductQuantizer.load(os.path.join(folder, "pq_untrained.lf"))
    assert not pq.is_trained and (pq.dim, pq.m, pq.nbits) == (16, 4, 8)


@pytest.mark.parametrize("name", ["graph_f32_ip", "graph_f16_l2", "graph_pq_l2"])
@pytest.mark.parametrize("mmap", [False, True])
def test_graph(fixture, name, mmap):
    folder, e = fixture
    index = lf.GraphIndex.load(os.path.join(folder, f"{name}.lf"), mmap=mmap)
    ids = np.arange(300) * 3 + 1000
    assert len(index) == 288 and 1000 in index and ids[3] not in index and ids[15] not in index
    assert index.columns == {"year": "int64", "score": "float64", "tags": "labels"}
    assert (index.quantizer is not None) == (name == "graph_pq_l2")
    queries = e["graph_queries"]
    scores, found = index.search(queries, k=5, ef=32)
    _same_ranking(scores, found, e[f"{name}_scores"], e[f"{name}_ids"])
    f = lf.Filter.range("year", 1992, 1996) & lf.Filter.labels("tags").any([1, 2, 3])
    scores, found = index.search(queries, k=5, ef=32, filter=f)
    _same_ranking(scores, found, e[f"{name}_filtered_scores"], e[f"{name}_filtered_ids"])
    # A loaded index keeps working: adds (a mapped one copies first) and deletes.
    extra = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    index.add(extra, [1, 2, 3], attributes={"year": np.array([1, 2, 3]), "score": np.array([0.0, 0.5, 1.0]),
                                                  "tags": [[1], [], [2, 3]]})
    index.delete([1000])
    assert len(index) == 290 and 2 in index and 1000 not in index


def test_graph_empty(fixture):
    folder, _ = fixture
    index = lf.GraphIndex.load(os.path.join(folder, "graph_empty.lf"))
    assert len(index) == 0 and index.dim == 16
    scores, ids = index.search(np.ones((1, 16), np.float32), k=2)
    assert (ids == -1).all()


@pytest.mark.parametrize("mmap", [False, True])
def test_multivector_index_v2(mmap):
    """A MultiVectorIndex file of format version 2 (fixtures/v2/make_multivector.py): its searches,
    filtered and exact, give the recorded results, and it takes changes after loading."""
    folder = os.path.join(FOLDER, "v2")
    with np.load(os.path.join(folder, "multivector_expected.npz")) as data:
        e = dict(data)
    index = lf.MultiVectorIndex.load(os.path.join(folder, "multivector.lf"), mmap=mmap)
    assert len(index) == 98 and 105 not in index and 130 in index
    np.testing.assert_array_equal(index.get(130), e["doc0"])
    queries = list(e["queries"])
    f = lf.Filter.eq("year", 2) | lf.Filter.labels("tags").any([7])
    _same_ranking(*index.search(queries, 5), e["scores"], e["ids"])
    _same_ranking(*index.search(queries, 5, filter=f), e["filtered_scores"], e["filtered_ids"])
    _same_ranking(*index.search(queries, 5, exact=True), e["exact_scores"], e["exact_ids"])
    index.add([queries[0]], ids=[7], attributes={"year": np.array([2]), "tags": [[7]]})
    assert index.search(queries[0], 1, exact=True)[1][0] == 7
