"""Smoke test of an installed wheel: import, dispatch table, one call per engine, the demo data.
Runs on every wheel cibuildwheel builds (see pyproject.toml)."""

from __future__ import annotations

import numpy as np

import latefold as lf


def test_import_and_dispatch():
    info = lf.simd_info()
    print(info)
    assert info["active"] in info["supported"]
    assert "scalar" in info["compiled"]
    assert isinstance(lf.__version__, str)


def test_one_call_per_engine():
    rng = np.random.default_rng(0)
    docs = lf.MultiVectors([rng.standard_normal((n, 16)).astype(np.float16) for n in (3, 5, 8)])
    query = rng.standard_normal((4, 16)).astype(np.float32)
    scores = lf.maxsim(query, docs)
    expected = [(query.astype(np.float64) @ d.astype(np.float64).T).max(1).sum() for d in docs]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    _, ids = lf.maxsim_topk(query, docs, 2)
    assert ids.tolist() == np.argsort(-np.array(expected), kind="stable")[:2].tolist()


def test_fde_and_pq_once():
    rng = np.random.default_rng(1)
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (5, 9, 3)]
    fde = lf.FDE(8, 2, 2, seed=1)
    vectors = fde.encode_documents(docs)
    assert vectors.shape == (3, fde.output_dim) and np.isfinite(vectors).all()
    x = rng.standard_normal((300, 8)).astype(np.float32)
    pq = lf.ProductQuantizer(8, 4, nbits=4).train(x, iterations=3)
    _, ids = pq.search(pq.encode(x), x[:2], 3)
    assert ids.shape == (2, 3)


def test_demo_data_ships():
    data = lf.datasets.load_limit_small()
    assert len(data.docs) == 46 and len(data.queries) == 1000
