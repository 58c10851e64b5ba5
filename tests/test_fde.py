"""FDE against the numpy reference written from the reference implementation's semantics.

Exact: the random matrices (portable generator), the partition indices and the fill choices.
Within tolerance: the encoded values. Each value is a signed sum of float32 terms (d products per
projected token, at most L tokens, the final sketch adds at most one term per input value),
so its rounding error is at most γ_n times the same sum of absolute values ("magnitude",
computed by the reference with |x|, |P| and |signs|), n = L + d + block_dim + 2 (a division).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import latefold as lf
from reference import container
from reference import fde as ref
from strategies import random_set

U32 = 2.0**-24


def config_of(f: lf.FDE) -> ref.Config:
    p = f.params
    return ref.Config(**p)


def assert_encodings_match(f: lf.FDE, items, documents: bool):
    c = config_of(f)
    c.fill_empty_partitions = c.fill_empty_partitions and documents
    got = f.encode_documents(items) if documents else f.encode_queries(items)
    assert got.shape == (len(items), f.output_dim) and got.dtype == np.float32
    for i, x in enumerate(items):
        expected = ref.encode(c, x, documents)
        magnitude = ref.encode(c, x, documents, absolute=True)
        n = len(x) + c.dimension + (f.output_dim if c.final_projection_dimension else 0) + 2
        bound = n * U32 / (1 - n * U32) * magnitude + 1e-30
        err = np.abs(got[i].astype(np.float64) - expected)
        assert np.all(err <= bound), (i, err.max(), bound[np.argmax(err / bound)])


def test_random_matrices_are_the_specified_ones():
    for seed, proj in itertools.product([0, 1, 2**64 - 1], ["identity", "ams_sketch", "dense_sign"]):
        f = lf.FDE(12, 3, 4, seed=seed, projection_type=proj,
                   projection_dimension=None if proj == "identity" else 5,
                   final_projection_dimension=37)
        c = config_of(f)
        for r in range(3):
            np.testing.assert_array_equal(f.simhash_matrix(r), ref.simhash_matrix(c, r))
            np.testing.assert_array_equal(f.projection_matrix(r), ref.projection_matrix(c, r))
        slots, signs = f.final_projection()
        exp_slots, exp_signs = ref.final_projection(c, 3 * 16 * c.d_proj)
        np.testing.assert_array_equal(slots, exp_slots)
        np.testing.assert_array_equal(signs, exp_signs)


def test_generator_statistics():
    f = lf.FDE(256, 4, 12, seed=3, projection_dimension=1)
    g = np.concatenate([f.simhash_matrix(r).ravel() for r in range(4)]).astype(np.float64)
    # 12,288 standard normals: mean and std within ~4 standard errors, tails as a normal's.
    assert abs(g.mean()) < 0.04 and abs(g.std() - 1) < 0.03
    assert abs(np.mean(np.abs(g) > 1.96) - 0.05) < 0.01


def test_gray_code_partition_table():
    # Partition p holds the sign pattern p ^ (p >> 1) (coordinate 0 most significant). A port that
    # recovers the pattern with a Gray-to-binary conversion instead disagrees from k = 3 on.
    k, d = 3, 8
    f = lf.FDE(d, 1, k, seed=11, projection_type="identity")
    g = f.simhash_matrix(0).astype(np.float64)
    tokens, expected = [], []
    for p in range(2**k):
        pattern = p ^ (p >> 1)
        signs = np.array([1.0 if (pattern >> (k - 1 - j)) & 1 else -1.0 for j in range(k)])
        tokens.append(g @ np.linalg.solve(g.T @ g, signs))  # x with x . g_j = signs_j
        expected.append(p)
    got = f.partition_indices(np.array(tokens, dtype=np.float32))
    assert got[:, 0].tolist() == expected
    assert expected != [(q ^ (q >> 1)) for q in range(8)]  # the conversion matters at k = 3


@st.composite
def fde_case(draw):
    dim = draw(st.integers(1, 24))
    k = draw(st.integers(0, 8))
    proj = draw(st.sampled_from(["identity", "ams_sketch", "dense_sign"]))
    params = dict(
        dimension=dim,
        num_repetitions=draw(st.integers(1, 4)),
        num_simhash_projections=k,
        seed=draw(st.integers(0, 2**64 - 1)),
        projection_type=proj,
        projection_dimension=None if proj == "identity" else draw(st.integers(1, 9)),
        fill_empty_partitions=draw(st.booleans()),
        final_projection_dimension=draw(st.none() | st.integers(1, 300)),
    )
    lengths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=5))
    dtype = draw(st.sampled_from([np.float32, np.float16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return params, random_set(rng, lengths, dim, dtype)


@given(fde_case())
@settings(max_examples=60)
def test_engine_equals_reference(case):
    params, items = case
    f = lf.FDE(**params)
    c = config_of(f)
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        try:
            got = f.partition_indices(items)
            expected = np.concatenate([ref.partitions(c, x) for x in items])
            np.testing.assert_array_equal(got, expected)
            assert_encodings_match(f, items, documents=True)
            assert_encodings_match(f, items, documents=False)
        finally:
            lf.set_simd("best")


def test_partitions_exact_near_zero(rng):
    # Tokens almost orthogonal to a SimHash column: float32 alone could get the sign wrong; the
    # engine must agree with the float64 reference sum exactly.
    f = lf.FDE(64, 2, 6, seed=9, projection_type="identity")
    c = config_of(f)
    g = f.simhash_matrix(0).astype(np.float64)
    x = rng.standard_normal((400, 64))
    x -= np.outer(x @ g[:, 0], g[:, 0]) / (g[:, 0] @ g[:, 0])  # x . g_0 ~ 0 (rounding noise)
    x = x.astype(np.float32)
    for path in lf.simd_info()["supported"]:
        lf.set_simd(path)
        np.testing.assert_array_equal(f.partition_indices(x), ref.partitions(c, x))
    lf.set_simd("best")


def test_fill_choice_ties_go_to_the_first_token():
    f = lf.FDE(4, 1, 2, seed=1, projection_type="identity", fill_empty_partitions=True)
    x = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    c = config_of(f)
    np.testing.assert_allclose(f.encode_documents(x), ref.encode(c, x, True), rtol=1e-6)


def test_union_of_queries_is_the_sum(rng):
    f = lf.FDE(20, 5, 3, seed=4, final_projection_dimension=333)
    a, b = random_set(rng, [7, 9], 20, np.float32)
    together = f.encode_queries(np.concatenate([a, b]))
    np.testing.assert_allclose(together, f.encode_queries(a) + f.encode_queries(b), rtol=1e-5, atol=1e-5)


def test_token_order_does_not_matter(rng):
    f = lf.FDE(16, 4, 4, seed=2, fill_empty_partitions=False)
    x = random_set(rng, [25], 16, np.float32)[0]
    perm = rng.permutation(25)
    np.testing.assert_allclose(f.encode_queries(x), f.encode_queries(x[perm]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f.encode_documents(x), f.encode_documents(x[perm]), rtol=1e-5, atol=1e-6)


def test_k0_identity_inner_product_is_sum_dot_mean(rng):
    f = lf.FDE(10, 1, 0, projection_type="identity")
    q, d = random_set(rng, [6, 11], 10, np.float32)
    got = float(f.encode_queries(q) @ f.encode_documents(d))
    expected = float(q.astype(np.float64).sum(0) @ d.astype(np.float64).mean(0))
    assert abs(got - expected) <= 1e-5 * (1 + abs(expected))


def test_seed_reproducible_and_distinct(rng):
    x = random_set(rng, [12, 5], 8, np.float32)
    a = lf.FDE(8, 3, 3, seed=42).encode_documents(x)
    np.testing.assert_array_equal(a, lf.FDE(8, 3, 3, seed=42).encode_documents(x))
    assert not np.array_equal(a, lf.FDE(8, 3, 3, seed=43).encode_documents(x))


def test_threads_and_dtypes(rng):
    f = lf.FDE(32, 4, 4, seed=3)
    docs = random_set(rng, rng.integers(1, 40, 100), 32, np.float16)
    base = f.encode_documents(docs, threads=1)
    np.testing.assert_array_equal(f.encode_documents(docs, threads=2), base)
    np.testing.assert_array_equal(f.encode_documents(lf.MultiVectors(docs), threads=3), base)
    half = f.encode_documents(docs, dtype=np.float16)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, base.astype(np.float16))


@pytest.mark.concurrency
def test_constructor_releases_the_gil():
    # Generating the matrices of a large configuration runs without the GIL: another thread
    # runs meanwhile. With a switch interval longer than the test, a thread that holds the GIL
    # keeps it until it blocks or releases it: the counter moves only if the constructor
    # releases it (the loop's sleep(0) hands the GIL back).
    import sys
    import threading
    import time

    state, ran = {"inside": False, "done": False}, [0]

    def build():
        state["inside"] = True
        lf.FDE(512, 40, projection_type="dense_sign", projection_dimension=256, seed=7)
        state["inside"] = False
        state["done"] = True

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100)
    try:
        thread = threading.Thread(target=build)
        thread.start()
        while not state["done"]:
            ran[0] += state["inside"]
            time.sleep(0)
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert ran[0] > 0


def test_fde_retrieval_recalls_maxsim_neighbours():
    # The point of FDE: inner products rank documents like MaxSim does (paper's setting).
    data = lf.datasets.load_limit_small()
    f = lf.FDE(data.docs.dim, 20, 5, projection_dimension=16, seed=1)
    q = f.encode_queries(data.queries[:200])
    d = f.encode_documents(data.docs)
    _, exact = lf.maxsim_topk(data.queries[:200], data.docs, 1)
    top10 = np.argsort(-(q @ d.T), axis=1)[:, :10]
    recall = np.mean([exact[i, 0] in top10[i] for i in range(200)])
    assert recall > 0.6  # of 46 documents, a random top-10 would find the best one 22% of the time


def test_save_load_round_trip(tmp_path, rng):
    f = lf.FDE(16, 3, 4, seed=2**63 + 5, projection_type="dense_sign", projection_dimension=6,
               final_projection_dimension=100, fill_empty_partitions=False)
    path = tmp_path / "encoder.lf"
    f.save(path)
    g = lf.FDE.load(path)
    assert g == f and g.params == f.params
    x = random_set(rng, [9], 16, np.float32)
    np.testing.assert_array_equal(g.encode_documents(x), f.encode_documents(x))
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.lf"]  # no temporary file left


def test_load_rejects_damaged_files(tmp_path):
    f = lf.FDE(8, 2, 2, seed=1)
    path = tmp_path / "e.lf"
    f.save(path)
    blob = path.read_bytes()
    bad = tmp_path / "bad.lf"
    for cut in range(0, len(blob), 7):  # every truncation
        bad.write_bytes(blob[:cut])
        with pytest.raises(ValueError):
            lf.FDE.load(bad)
    rng = np.random.default_rng(0)
    for _ in range(200):  # bit flips anywhere
        data = bytearray(blob)
        pos = int(rng.integers(len(data)))
        data[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(data))
        try:
            g = lf.FDE.load(bad)
        except ValueError:
            continue
        assert g == f  # a flip in padding may be harmless, never a different encoder
    with pytest.raises(ValueError, match="not a latefold file"):
        bad.write_bytes(b"\0" * 200)
        lf.FDE.load(bad)


def test_load_rejects_newer_format_and_other_kinds(tmp_path):
    path = tmp_path / "x.lf"
    lf.ProductQuantizer(8, 2).save(path)
    with pytest.raises(ValueError, match="'pq', not a 'fde'"):
        lf.FDE.load(path)
    lf.FDE(4, 1, 1).save(path)
    blob = bytearray(path.read_bytes())
    blob[8:12] = (99).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="version 99"):
        lf.FDE.load(path)
    # Another generator version: the file's matrices would differ from this build's.
    lf.FDE(4, 1, 1).save(path)
    _rewrite_meta(path, lambda meta: meta["objects"]["fde"].update(rng_version=999))
    with pytest.raises(ValueError, match="generator version"):
        lf.FDE.load(path)


def _rewrite_meta(path, change):
    """Edits a file's meta JSON and writes the checksums anew (a file another writer made)."""
    import json
    import struct

    from reference.container import crc32c

    blob = bytearray(path.read_bytes())
    count = struct.unpack_from("<I", blob, 32)[0]
    for i in range(count):
        entry = 64 + 64 * i
        if blob[entry:entry + 32].rstrip(b"\0") == b"meta":
            offset, length = struct.unpack_from("<QQ", blob, entry + 32)
            meta = json.loads(bytes(blob[offset:offset + length]))
            change(meta)
            text = json.dumps(meta, separators=(",", ":")).encode()
            assert len(text) <= length  # rewritten in place, padded with spaces
            blob[offset:offset + length] = text.ljust(length)
            struct.pack_into("<QQI", blob, entry + 32, offset, length, crc32c(bytes(blob[offset:offset + length])))
    struct.pack_into("<I", blob, 36, crc32c(bytes(blob[:36] + blob[64:64 + 64 * count])))
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(dimension=0), ValueError),
        (dict(dimension=4, num_simhash_projections=31), ValueError),
        (dict(dimension=4, num_simhash_projections=-1), ValueError),
        (dict(dimension=4, num_repetitions=0), ValueError),
        (dict(dimension=4, projection_type="gaussian"), ValueError),
        (dict(dimension=4, projection_type="identity", projection_dimension=3), ValueError),
        (dict(dimension=4, projection_dimension=0), ValueError),
        (dict(dimension=4, num_repetitions=2**20, num_simhash_projections=20), ValueError),
        (dict(dimension=4, seed=-1), ValueError),
        (dict(dimension=4.0), TypeError),
        (dict(dimension=4, fill_empty_partitions="yes"), TypeError),
        (dict(dimension=4, projection_type=None), TypeError),
        (dict(dimension=True), TypeError),
    ],
)
def test_bad_parameters(kwargs, error):
    with pytest.raises(error):
        lf.FDE(**kwargs)


def test_bad_items(rng):
    f = lf.FDE(8, 2, 2)
    with pytest.raises(ValueError, match="dimension"):
        f.encode_documents(random_set(rng, [3], 9, np.float32))
    with pytest.raises(ValueError, match="item 1 is empty"):
        f.encode_documents(lf.MultiVectors(np.ones((3, 8), np.float32), [0, 3, 3]))
    with pytest.raises(ValueError, match="NaN"):
        f.encode_queries(np.full((2, 8), np.nan, np.float32))
    with pytest.raises(TypeError):
        f.encode_queries(np.ones((2, 8)))
    with pytest.raises(TypeError, match="dtype"):
        f.encode_queries(np.ones((2, 8), np.float32), dtype=np.int8)
    with pytest.raises(ValueError):
        f.simhash_matrix(2)


def test_fill_choices_at_every_distance(rng):
    """Documents of 1 to 40 tokens at k = 6 and 8: empty partitions whose nearest occupied
    pattern lies one, two or more bits away, with ties, all filled as the reference fills them."""
    for k in (6, 8):
        f = lf.FDE(8, 3, k, seed=k, projection_type="identity", fill_empty_partitions=True)
        items = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 2, 3, 5, 9, 17, 40)]
        assert_encodings_match(f, items, documents=True)


def test_encode_into_out(rng):
    """out= receives exactly what a fresh call returns; bad buffers are refused untouched."""
    f = lf.FDE(16, 3, 3, seed=5, projection_type="ams_sketch", projection_dimension=4, fill_empty_partitions=True)
    items = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3, 7, 1)]
    for documents in (True, False):
        encode = f.encode_documents if documents else f.encode_queries
        out = np.full((3, f.output_dim), np.nan, np.float32)
        assert encode(items, out=out) is out
        np.testing.assert_array_equal(out, encode(items))
        one = np.zeros(f.output_dim, np.float32)
        assert encode(items[0], out=one) is one
        np.testing.assert_array_equal(one, encode(items[0]))
    keep = np.zeros((3, f.output_dim), np.float32)
    for bad, error in [(np.zeros((2, f.output_dim), np.float32), ValueError),
                       (np.zeros((3, f.output_dim), np.float64), TypeError),
                       (np.zeros((3, 2 * f.output_dim), np.float32)[:, ::2], ValueError)]:
        with pytest.raises(error):
            f.encode_documents(items, out=bad)
    with pytest.raises(TypeError):
        f.encode_documents(items, out=keep, dtype=np.float16)
    assert not keep.any()


@pytest.mark.parametrize("args, kwargs", [
    ((16, 1, 30), {}),  # 2^30 partitions of 16: 4 GiB per item
    ((16, 2**31, 0), {}),
    ((8, 64, 20), {"projection_dimension": 64}),
    ((16,), {"final_projection_dimension": 2**26 + 1}),
])
def test_output_size_is_bounded(args, kwargs):
    with pytest.raises(ValueError, match="2\\^26"):
        lf.FDE(*args, **kwargs)


def test_largest_output_is_accepted():
    assert lf.FDE(16, 1, 22).output_dim == 2**26
    assert lf.FDE(16, final_projection_dimension=2**26).output_dim == 2**26


@pytest.mark.parametrize("params", [{"num_repetitions": 2**31}, {"num_simhash_projections": 27},
                                    {"final_projection_dimension": 2**31}])
def test_file_with_a_huge_output_is_refused(tmp_path, params):
    path = tmp_path / "f.lf"
    lf.FDE(1, 2, 0, projection_type="identity").save(path)  # 2 values per item
    version, kind, meta, sections = container.read(path)
    meta["objects"]["fde"]["params"].update(params)
    container.write(path, version, kind, dict(sections, meta=json.dumps(meta).encode()))  # checksums valid
    with pytest.raises(ValueError, match="2\\^26"):
        lf.FDE.load(path)
