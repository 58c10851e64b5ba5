"""Product quantization and k-means against float64 numpy oracles, on every SIMD path.

Tolerances: sub-vector distances and table entries are float32 sums of at most `width` terms,
off by at most γ_width (|q|·|c| or squared norms) — we allow 1e-5 relative to the magnitudes,
far above that bound and far below any real difference between centroids. 4-bit fast-scan
estimates are off by at most m·delta/2 by construction (delta = widest table range / 127: 7-bit
table entries; or the sum of the ranges / (65535 - m) where the entries could otherwise add past
the kernels' 16-bit sums)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import latefold as lf
from reference import container
from reference import pq as ref


def data(rng, n, dim, clusters=20):
    centres = rng.standard_normal((clusters, dim)) * 3
    return (centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture(params=[(8, "ip"), (4, "l2"), (4, "ip"), (8, "l2")], ids=lambda p: f"{p[0]}bit-{p[1]}")
def trained(request, rng):
    nbits, metric = request.param
    x = data(rng, 3000, 30)
    pq = lf.ProductQuantizer(30, 7, nbits, metric).train(x, iterations=10, seed=3)
    return pq, x


def test_kmeans_no_worse_than_numpy_lloyd(rng):
    x = data(rng, 1500, 6)
    seeds, _, _ = lf.kmeans(x, 32, iterations=0, seed=5)
    centroids, assignment, objective = lf.kmeans(x, 32, iterations=15, seed=5)
    _, numpy_objective = ref.lloyd(x, seeds, 15)
    assert objective <= numpy_objective * (1 + 1e-4)
    assert abs(ref.objective(x, centroids) - objective) <= 1e-4 * objective
    d = ((x[:, None, :].astype(np.float64) - centroids[None]) ** 2).sum(-1)
    chosen = d[np.arange(len(x)), assignment.astype(np.int64)]
    assert np.all(chosen <= d.min(1) + 1e-4 * (1 + d.min(1)))


def test_kmeans_deterministic_and_thread_independent(rng):
    x = data(rng, 5000, 8)
    a = lf.kmeans(x, 50, seed=9, threads=1)
    b = lf.kmeans(x, 50, seed=9, threads=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(lf.kmeans(x, 50, seed=10)[0], a[0])


def test_kmeans_with_duplicates_and_init(rng):
    x = np.repeat(data(rng, 10, 3), 20, axis=0)  # 10 distinct points, 40 centres: empty clusters
    c, a, obj = lf.kmeans(x, 40, iterations=5, seed=1)
    # Split clusters keep centres nudged by 1e-4 relative: the objective is ~0, not exactly 0.
    assert np.isfinite(c).all() and obj <= 1e-6 * ref.objective(x, x.mean(0, keepdims=True))
    init = x[:40].copy()
    c2, _, _ = lf.kmeans(x, 40, iterations=0, init=init)
    np.testing.assert_array_equal(c2, init)


def test_encode_picks_the_nearest_centroid(trained, simd):
    pq, x = trained
    codes = pq.encode(x)
    index = ref.split_codes(codes, pq.m, pq.nbits)
    b = pq.subspace_bounds
    for s, c in enumerate(pq.centroids):
        sub = x[:, b[s]:b[s + 1]].astype(np.float64)
        d = ((sub[:, None, :] - c.astype(np.float64)[None]) ** 2).sum(-1)
        chosen = d[np.arange(len(x)), index[:, s]]
        scale = (sub ** 2).sum(1) + (c.astype(np.float64) ** 2).sum(1).max()
        assert np.all(chosen <= d.min(1) + 1e-5 * scale), s


def test_decode_and_reconstruction(trained):
    pq, x = trained
    codes = pq.encode(x[:100])
    index = ref.split_codes(codes, pq.m, pq.nbits)
    expected = ref.decode(pq.centroids, pq.subspace_bounds, index)
    np.testing.assert_array_equal(pq.decode(codes), expected.astype(np.float32))
    err = pq.reconstruction_error(x[:100])
    assert abs(err - np.mean(((expected - x[:100]) ** 2).sum(1))) <= 1e-4 * err


def test_lut_matches_oracle(trained, rng):
    pq, _ = trained
    q = rng.standard_normal((4, 30)).astype(np.float32)
    expected = ref.lut(pq.centroids, pq.subspace_bounds, q, pq.metric)
    np.testing.assert_allclose(pq.lut(q), expected, rtol=1e-5, atol=1e-4)


def exact_scores(pq, codes, q):
    index = ref.split_codes(codes, pq.m, pq.nbits)
    return ref.adc(ref.lut(pq.centroids, pq.subspace_bounds, q, pq.metric), index)


def test_search_matches_exact_adc(trained, rng, simd):
    pq, x = trained
    codes = pq.encode(x)
    q = rng.standard_normal((5, 30)).astype(np.float32)
    scores, ids = pq.search(codes, q, 10, rescore=50)
    exact = exact_scores(pq, codes, q)
    got = np.take_along_axis(exact, ids, axis=1)
    np.testing.assert_allclose(scores, got, rtol=1e-5, atol=1e-4)
    order = -exact if pq.metric == "ip" else exact
    best = np.take_along_axis(exact, np.argsort(order, axis=1, kind="stable")[:, :10], axis=1)
    np.testing.assert_allclose(got, best, rtol=1e-5, atol=1e-4)  # the true top-10 scores


def fast_scan_step(table):
    ranges = table.max(2) - table.min(2)
    return np.maximum(ranges.max(1) / 127, ranges.sum(1) / (65535 - table.shape[1]))


def test_fast_scan_estimate_error_bound(rng):
    x = data(rng, 2000, 24)
    pq = lf.ProductQuantizer(24, 12, 4, "ip").train(x, iterations=5)
    codes = pq.encode(x)
    q = rng.standard_normal((3, 24)).astype(np.float32)
    table = ref.lut(pq.centroids, pq.subspace_bounds, q, "ip")
    delta = fast_scan_step(table)
    results = {}
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        results[path] = pq.search(codes, q, 20, rescore=0)
    lf.set_simd("best")
    exact = exact_scores(pq, codes, q)
    for path, (scores, ids) in results.items():
        # The integer scan is identical on every path (checked bit for bit in the C++ tests);
        # the float tables may differ in the last bit, which can move a quantization level.
        overlap = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(ids, results["scalar"][1])])
        assert overlap >= 0.9, path
        err = np.abs(scores - np.take_along_axis(exact, ids, axis=1))
        assert np.all(err <= pq.m * delta[:, None] / 2 + 1e-4), path


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_fast_scan_many_subspaces(rng, metric):
    # 1,200 sub-quantizers: 7-bit entries of every subspace could add past 16 bits, so the sum
    # of the ranges sets the step; the estimates stay within m * delta / 2 (a wrapped sum would not).
    m = 1200
    x = rng.uniform(-1.0, 1.0, (300, m)).astype(np.float32)  # centroids spread alike in every subspace
    pq = lf.ProductQuantizer(m, m, 4, metric).train(x, iterations=2)
    codes = pq.encode(x)
    q = rng.choice([-1.0, 1.0], (3, m)).astype(np.float32)  # even table ranges across subspaces
    table = ref.lut(pq.centroids, pq.subspace_bounds, q, metric)
    delta = fast_scan_step(table)
    assert np.all(delta > (table.max(2) - table.min(2)).max(1) / 127)
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        try:
            scores, ids = pq.search(codes, q, 20, rescore=0)
        finally:
            lf.set_simd("best")
        err = np.abs(scores - np.take_along_axis(exact_scores(pq, codes, q), ids, axis=1))
        assert np.all(err <= m * delta[:, None] / 2 * (1 + 1e-4) + 1e-3), path


def test_filtered_search(trained, rng):
    pq, x = trained
    codes = pq.encode(x)
    q = rng.standard_normal((3, 30)).astype(np.float32)
    allowed = rng.random(len(x)) < 0.1
    scores, ids = pq.search(codes, q, 15, allowed=allowed, rescore=100)
    assert allowed[ids].all()
    exact = exact_scores(pq, codes, q)
    masked = np.where(allowed, exact, -np.inf if pq.metric == "ip" else np.inf)
    order = np.argsort(-masked if pq.metric == "ip" else masked, axis=1, kind="stable")[:, :15]
    np.testing.assert_allclose(np.take_along_axis(exact, ids, 1), np.take_along_axis(exact, order, 1),
                               rtol=1e-5, atol=1e-4)
    same = pq.search(codes, q, 15, allowed=np.flatnonzero(allowed), rescore=100)
    np.testing.assert_array_equal(same[1], ids)
    few = pq.search(codes, q, 5, allowed=[3, 7])
    assert sorted(few[1][0, :2].tolist()) == [3, 7] and (few[1][:, 2:] == -1).all()
    assert np.isnan(few[0][:, 2:]).all()


def test_threads_do_not_change_results(trained, rng):
    pq, x = trained
    codes = pq.encode(x, threads=1)
    np.testing.assert_array_equal(pq.encode(x, threads=2), codes)
    q = rng.standard_normal((4, 30)).astype(np.float32)
    a = pq.search(codes, q, 7, threads=1)
    b = pq.search(codes, q, 7, threads=2)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    # 12,000 codes: split by vectors (2 threads) or by queries (5 threads, more than the chunks).
    many = np.concatenate([codes] * 4)
    a = pq.search(many, q, 7, rescore=2, threads=1)
    for threads in (2, 5):
        b = pq.search(many, q, 7, rescore=2, threads=threads)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])


def test_save_load(tmp_path, trained):
    pq, x = trained
    pq.save(tmp_path / "pq.lf")
    loaded = lf.ProductQuantizer.load(tmp_path / "pq.lf")
    np.testing.assert_array_equal(loaded.encode(x[:50]), pq.encode(x[:50]))
    lf.ProductQuantizer(8, 2).save(tmp_path / "empty.lf")
    assert not lf.ProductQuantizer.load(tmp_path / "empty.lf").is_trained
    blob = bytearray((tmp_path / "pq.lf").read_bytes())
    blob[-5] ^= 0x10
    (tmp_path / "bad.lf").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        lf.ProductQuantizer.load(tmp_path / "bad.lf")


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: lf.ProductQuantizer(8, 9), ValueError),
        (lambda: lf.ProductQuantizer(8, 2, nbits=6), ValueError),
        (lambda: lf.ProductQuantizer(8, 2, metric="cosine"), ValueError),
        (lambda: lf.ProductQuantizer(8, 0), ValueError),
        (lambda: lf.ProductQuantizer(8.0, 2), TypeError),
    ],
)
def test_bad_construction(make, error):
    with pytest.raises(error):
        make()


def test_bad_use(trained, rng):
    pq, x = trained
    untrained = lf.ProductQuantizer(30, 7)
    with pytest.raises(ValueError, match="not trained"):
        untrained.encode(x)
    with pytest.raises(ValueError, match="at least"):
        lf.ProductQuantizer(30, 7).train(x[:100])
    with pytest.raises(ValueError, match="dimension"):
        pq.encode(x[:, :29])
    with pytest.raises(TypeError):
        pq.encode(x.astype(np.float64))
    bad = x[:10].copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        pq.encode(bad)
    codes = pq.encode(x[:10])
    with pytest.raises(ValueError, match="shape"):
        pq.decode(codes[:, :-1])
    with pytest.raises(TypeError):
        pq.decode(codes.astype(np.int16))
    with pytest.raises(ValueError):
        pq.search(codes, x[:2], 0)
    with pytest.raises(ValueError, match="allowed"):
        pq.search(codes, x[:2], 3, allowed=np.ones(5, bool))
    with pytest.raises(ValueError, match="allowed"):
        pq.search(codes, x[:2], 3, allowed=[10])
    before = pq.centroids
    with pytest.raises(ValueError):
        pq.train(x[:10])
    for a, b in zip(before, pq.centroids):  # a failed train leaves the quantizer as it was
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("m, n", [(1, 1), (7, 33), (8, 31), (30, 5000)])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_packed_codes_search_like_row_major(rng, simd, m, n, metric):
    x = data(rng, max(n, 64), 30)[:n]
    pq = lf.ProductQuantizer(30, m, 4, metric).train(data(rng, 500, 30), iterations=3)
    codes = pq.encode(x)
    packed = pq.pack(codes)
    assert len(packed) == n and packed.nbytes == -(-n // 32) * (-(-pq.code_size // 2) * 2) * 32
    np.testing.assert_array_equal(packed.codes, codes)
    np.testing.assert_array_equal(pq.decode(packed), pq.decode(codes))
    q = rng.standard_normal((6, 30)).astype(np.float32)
    allowed = rng.random(n) < 0.5
    for rescore in (0, 3):
        for mask in (None, allowed):
            a = pq.search(packed, q, 10, rescore=rescore, allowed=mask)
            b = pq.search(codes, q, 10, rescore=rescore, allowed=mask)
            np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_array_equal(a[0], b[0])


def test_packed_codes_bad_use(rng):
    x = data(rng, 300, 30)
    pq4 = lf.ProductQuantizer(30, 8, 4).train(x, iterations=2)
    with pytest.raises(ValueError, match="4-bit"):
        lf.ProductQuantizer(30, 8, 8).train(x, iterations=2).pack(np.zeros((3, 8), np.uint8))
    packed = pq4.pack(pq4.encode(x))
    other = lf.ProductQuantizer(30, 10, 4).train(x, iterations=2)
    with pytest.raises(ValueError, match="do not fit"):
        other.search(packed, x[:2], 3)
    with pytest.raises(ValueError, match="allowed"):
        pq4.search(packed, x[:2], 3, allowed=np.ones(5, bool))
    with pytest.raises(ValueError):  # read-only: the layout cannot be corrupted in place
        packed.codes[0, 0] = 1


def test_exact_rescoring_from_vectors(trained, rng, simd):
    """With the vectors, the shortlist is re-scored exactly: scores are the true inner products
    (or squared distances) of the returned ids, and the order follows them."""
    pq, x = trained
    codes = pq.encode(x)
    q = rng.standard_normal((5, 30)).astype(np.float32)
    scores, ids = pq.search(codes, q, 10, rescore=5, vectors=x)
    v = x[ids].astype(np.float64)
    want = np.einsum("qkd,qd->qk", v, q) if pq.metric == "ip" else ((v - q[:, None, :]) ** 2).sum(2)
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all() if pq.metric == "ip" else (np.diff(scores, axis=1) >= 0).all()
    # A shortlist of every vector: the exact top-10.
    exact = q.astype(np.float64) @ x.T.astype(np.float64) if pq.metric == "ip" else \
        ((q[:, None, :].astype(np.float64) - x[None]) ** 2).sum(2)
    best = np.sort(-exact if pq.metric == "ip" else exact, axis=1)[:, :10]
    wide = pq.search(codes, q, 10, rescore=len(x) // 10, vectors=x)[0]
    np.testing.assert_allclose(wide, -best if pq.metric == "ip" else best, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="one row per code"):
        pq.search(codes, q, 10, vectors=x[:-1])
    bad = x.copy()
    bad[ids[0, 0]] = np.nan  # a row the re-scoring reads
    with pytest.raises(ValueError, match=f"row {ids[0, 0]}"):
        pq.search(codes, q, 10, rescore=5, vectors=bad)


# ------------------------------------------------------------------------------ rotations


@pytest.mark.parametrize("rotation", ["random", "opq"])
@pytest.mark.parametrize("nbits, metric", [(8, "ip"), (4, "l2")])
def test_rotation_applies_to_every_operation(rng, simd, rotation, nbits, metric):
    x = data(rng, 2000, 24)
    pq = lf.ProductQuantizer(24, 6, nbits, metric, rotation=rotation).train(x, iterations=5, seed=2, opq_iterations=3)
    r = pq.rotation.astype(np.float64)
    np.testing.assert_allclose(r @ r.T, np.eye(24), atol=1e-5)
    rotated = x.astype(np.float64) @ r
    codes = pq.encode(x)
    index = ref.split_codes(codes, pq.m, pq.nbits)
    b = pq.subspace_bounds
    for s, c in enumerate(pq.centroids):  # the nearest centroid of each rotated sub-vector
        sub = rotated[:, b[s]:b[s + 1]]
        d = ((sub[:, None, :] - c.astype(np.float64)[None]) ** 2).sum(-1)
        chosen = d[np.arange(len(x)), index[:, s]]
        scale = (sub ** 2).sum(1) + (c.astype(np.float64) ** 2).sum(1).max()
        assert np.all(chosen <= d.min(1) + 1e-5 * scale), s  # float32 rotation: relative 1e-6
    decoded = ref.decode(pq.centroids, b, index) @ r.T  # rotated back
    np.testing.assert_allclose(pq.decode(codes), decoded, rtol=1e-5, atol=1e-4)
    q = rng.standard_normal((4, 24)).astype(np.float32)
    np.testing.assert_allclose(pq.lut(q), ref.lut(pq.centroids, b, q.astype(np.float64) @ r, metric),
                               rtol=1e-5, atol=1e-3)
    # Scores keep their meaning: inner products / squared distances with the decoded vectors.
    scores, ids = pq.search(codes, q, 5, rescore=50)
    truth = q @ decoded.T if metric == "ip" else ((q[:, None, :] - decoded[None]) ** 2).sum(-1)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, ids, axis=1), rtol=1e-5, atol=1e-3)
    again = lf.ProductQuantizer(24, 6, nbits, metric, rotation=rotation).train(x, iterations=5, seed=2, opq_iterations=3)
    np.testing.assert_array_equal(again.rotation, pq.rotation)
    np.testing.assert_array_equal(again.encode(x), codes)


def test_opq_lowers_the_error_on_correlated_data(rng):
    # Points on a 4-D subspace spread over all 32 coordinates: every plain sub-vector sees all
    # four latent directions; a rotation can give each sub-vector fewer of them.
    latent = rng.standard_normal((4000, 4)) * 3
    x = (latent @ rng.standard_normal((4, 32)) + 0.01 * rng.standard_normal((4000, 32))).astype(np.float32)
    errors = {}
    for rotation in (None, "random", "opq"):
        pq = lf.ProductQuantizer(32, 8, 4, rotation=rotation).train(x, iterations=10, seed=1)
        errors[rotation] = pq.reconstruction_error(x)
    assert errors["opq"] < 0.5 * errors[None], errors
    assert errors["opq"] < 0.5 * errors["random"], errors


@pytest.mark.parametrize("dim, seed", [(1, 5), (7, 1), (24, 2), (96, 2**64 - 1)])
def test_random_rotation_matches_the_reference(rng, dim, seed):
    x = data(rng, 300, dim)
    pq = lf.ProductQuantizer(dim, 1, 8, rotation="random").train(x, iterations=1, seed=seed)
    np.testing.assert_allclose(pq.rotation, ref.random_rotation(dim, seed), rtol=0, atol=1e-5)


@pytest.mark.parametrize("rotation", ["random", "opq"])
def test_rotations_orthogonal_deterministic_and_thread_independent(rng, rotation):
    # dim 256: the Jacobi SVD shares its rotations among threads from that size on.
    x = data(rng, 600, 256)
    trained = [lf.ProductQuantizer(256, 64, 4, rotation=rotation).train(
        x, iterations=2, seed=7, opq_iterations=2, threads=threads) for threads in (1, 3, 1)]
    r = trained[0].rotation.astype(np.float64)
    assert np.abs(r @ r.T - np.eye(256)).max() < 1e-6  # float32 rounding of an orthogonal float64 matrix
    for other in trained[1:]:
        np.testing.assert_array_equal(other.rotation, trained[0].rotation)
        np.testing.assert_array_equal(other.encode(x), trained[0].encode(x))


def test_opq_no_worse_on_anisotropic_data(rng):
    # Variances falling from 9 to 0.01 over the coordinates, in a random basis.
    d = 64
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    x = ((rng.standard_normal((3000, d)) * np.geomspace(3, 0.1, d)) @ basis).astype(np.float32)
    errors = {rotation: lf.ProductQuantizer(d, 16, 4, rotation=rotation).train(x, iterations=10, seed=3)
              .reconstruction_error(x) for rotation in (None, "random", "opq")}
    assert errors["opq"] <= errors["random"] and errors["opq"] <= errors[None], errors


@pytest.mark.parametrize("case", ["zero column", "few distinct rows", "rank 3"])
def test_rotations_of_rank_deficient_data(rng, case):
    x = data(rng, 400, 32)
    if case == "zero column":
        x[:, 5] = 0
    elif case == "few distinct rows":
        x = x[rng.integers(0, 20, 400)]
    else:
        x = (rng.standard_normal((400, 3)) @ rng.standard_normal((3, 32))).astype(np.float32)
    for rotation in ("random", "opq"):
        pq = lf.ProductQuantizer(32, 8, 4, rotation=rotation).train(x, iterations=3, opq_iterations=3)
        r = pq.rotation.astype(np.float64)
        assert np.isfinite(r).all() and np.abs(r @ r.T - np.eye(32)).max() < 1e-6, rotation
        error = pq.reconstruction_error(x)
        if rotation == "opq":  # trained to lower the error: never much above plain PQ (at most 0.9x over 150 seeds)
            plain = lf.ProductQuantizer(32, 8, 4).train(x, iterations=3).reconstruction_error(x)
            assert error <= 1.5 * plain + 1e-6, rotation
        else:  # a random rotation promises nothing against plain PQ (up to 1.65x over 300 seeds), only that it
            # still quantizes: at most 0.17 of the variance over 150 seeds per case, a broken rotation ~1
            assert error <= 0.4 * ((x - x.mean(0)) ** 2).sum(1).mean(), rotation


def test_rotation_save_load_and_graph(tmp_path, rng):
    x = data(rng, 3000, 16)
    pq = lf.ProductQuantizer(16, 4, 8, rotation="random").train(x, iterations=5, seed=4)
    pq.save(tmp_path / "pq.lf")
    loaded = lf.ProductQuantizer.load(tmp_path / "pq.lf")
    np.testing.assert_array_equal(loaded.rotation, pq.rotation)
    np.testing.assert_array_equal(loaded.encode(x), pq.encode(x))
    assert "rotation='random'" in repr(loaded)
    index = lf.GraphIndex(16, quantizer=pq)
    index.add(x)
    q = x[:20] + 0.01
    scores, ids, stats = index.search(q, 5, ef=16, rerank=False, explain=True)
    assert {s["path"] for s in stats} == {"graph"}
    codes = pq.encode(x)
    lut = pq.lut(q)
    expected = np.stack([lut[i][np.arange(pq.m), codes[ids[i]]].sum(1) for i in range(len(q))])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)  # ADC of the rotated codes
    rotation = pq.rotation
    pq.train(x, iterations=2, seed=9)  # the index keeps its own copy: this changes nothing there
    index.save(tmp_path / "graph.lf")
    again = lf.GraphIndex.load(tmp_path / "graph.lf")
    np.testing.assert_array_equal(again.quantizer.rotation, rotation)
    for a, b in zip(again.search(q, 5), index.search(q, 5)):
        np.testing.assert_array_equal(a, b)


def test_rotation_bad_input(rng):
    with pytest.raises(ValueError, match="rotation"):
        lf.ProductQuantizer(8, 2, rotation="pca")
    with pytest.raises(TypeError, match="rotation"):
        lf.ProductQuantizer(8, 2, rotation=np.eye(8))
    with pytest.raises(ValueError, match="at most 4096"):
        lf.ProductQuantizer(5000, 10, rotation="random")
    x = data(rng, 600, 8)
    pq = lf.ProductQuantizer(8, 2, 8, rotation="opq").train(x, iterations=2, opq_iterations=1)
    before = (pq.rotation, pq.encode(x))
    with pytest.raises(ValueError, match="at least 256"):
        pq.train(x[:100])
    with pytest.raises(ValueError, match="opq_iterations"):
        pq.train(x, opq_iterations=-1)
    np.testing.assert_array_equal(pq.rotation, before[0])  # a failed training changes nothing
    np.testing.assert_array_equal(pq.encode(x), before[1])
    with pytest.raises(ValueError, match="orthogonal"):
        pq._pq.set_rotation(np.ones((8, 8), np.float32))
    np.testing.assert_array_equal(pq.encode(x), before[1])


def test_k_beyond_the_codes_only_pads(trained, rng):
    pq, x = trained
    codes = pq.encode(x[:1000])
    q = x[1000:1003]
    for rescore, vectors in ((0, None), (4, None), (2**64, x[:1000])):
        scores, ids = pq.search(codes, q, 1000, rescore=rescore, vectors=vectors)
        wide_scores, wide_ids = pq.search(codes, q, 10**6, rescore=rescore, vectors=vectors)
        assert wide_ids.shape == (3, 10**6)
        np.testing.assert_array_equal(wide_ids[:, :1000], ids)
        np.testing.assert_array_equal(wide_scores[:, :1000], scores)
        assert (wide_ids[:, 1000:] == -1).all() and np.isnan(wide_scores[:, 1000:]).all()
    for k in (2**64, 2**62):
        with pytest.raises(ValueError, match="k = "):
            pq.search(codes, q, k)


@pytest.mark.parametrize("dtype", ["<f8", "<i4", "<f2", ">f4"])
def test_file_with_centroids_of_another_dtype_is_refused(tmp_path, rng, dtype):
    path = tmp_path / "pq.lf"
    lf.ProductQuantizer(8, 2).train(data(rng, 300, 8), iterations=2).save(path)
    version, kind, meta, sections = container.read(path)
    values = np.frombuffer(sections["pq/centroids"], "<f4").astype(dtype)  # the same values, recast
    meta["arrays"]["pq/centroids"]["dtype"] = dtype
    container.write(path, version, kind, dict(sections, meta=json.dumps(meta).encode(),
                                              **{"pq/centroids": values.tobytes()}))
    with pytest.raises(ValueError, match="centroids"):
        lf.ProductQuantizer.load(path)


def test_allowed_is_a_bool_mask_or_ids(trained, rng):
    pq, x = trained
    codes = pq.encode(x[:50])
    mask = np.zeros(50, bool)
    mask[[4, 9, 30]] = True
    expected = pq.search(codes, x[:2], 3, allowed=mask)
    for ids in ([4, 9, 30], np.array([4, 9, 30], np.int16), np.array([4, 9, 30], np.uint32)):
        np.testing.assert_array_equal(pq.search(codes, x[:2], 3, allowed=ids)[1], expected[1])
    for ambiguous in (mask.astype(np.uint8), mask.astype(np.int8)):
        with pytest.raises(TypeError, match="allowed.*ambiguous"):
            pq.search(codes, x[:2], 3, allowed=ambiguous)


def test_misaligned_float32_is_copied(trained):
    pq, x = trained
    raw = np.zeros(x[:40].nbytes + 1, np.uint8)
    misaligned = raw[1:].view(np.float32).reshape(40, x.shape[1])
    misaligned[:] = x[:40]
    assert not misaligned.flags.aligned
    codes = pq.encode(x[:40])
    np.testing.assert_array_equal(pq.encode(misaligned), codes)
    np.testing.assert_array_equal(pq.lut(misaligned[:3]), pq.lut(x[:3]))
    for a, b in zip(pq.search(codes, misaligned[:3], 5, vectors=misaligned), pq.search(codes, x[:3], 5, vectors=x[:40])):
        np.testing.assert_array_equal(a, b)
    g, h = lf.GraphIndex(x.shape[1]), lf.GraphIndex(x.shape[1])
    years = np.arange(40)
    raw = np.zeros(years.nbytes + 1, np.uint8)
    odd_years = raw[1:].view(np.int64)
    odd_years[:] = years
    g.add(misaligned, odd_years, {"year": odd_years})
    h.add(x[:40], years, {"year": years})
    for a, b in zip(g.search(misaligned[:3], 5), h.search(x[:3], 5)):
        np.testing.assert_array_equal(a, b)
