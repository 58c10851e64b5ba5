"""The CUDA engines. Everywhere: the build's report, device names, the readers of
__cuda_array_interface__ and __dlpack__ (on host arrays and interface dicts), host-side
validation. On a GPU: every storage and both kernels (tensor cores and the SIMT twin) against
the CPU engines on fresh random inputs.

Tolerances against the CPU (which sums in another order): int8 the same bits (exact integer
products, then the same float32 steps in token order). float32 / float16 / bfloat16: each
score within (dim + m + 2) * 2^-23 of its mass (the sum over query tokens of the largest sum of
|products|), twice the one-sided float32 bound because both sides round; float16 adds the
query's split into two float16 terms (2^-22 relative per value, inside that bound for dim >= 1).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import latefold as lf
from latefold import _core
from reference.quantized import bfloat16_bound, from_bfloat16_bits, to_bfloat16_bits
from strategies import random_set

GPU = lf.cuda_available()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no usable CUDA device: {lf.cuda_info()['reason']}")
STORAGES = ["float32", "float16", "bfloat16", "int8"]


# --- the build's report --------------------------------------------------------------------


def test_cuda_info_reports_build_and_reason():
    info = lf.cuda_info()
    assert set(info) == {"built", "usable", "reason", "runtime_version", "driver_version", "devices"}
    assert lf.simd_info()["cuda"] == info
    assert lf.cuda_available() is info["usable"]
    if info["usable"]:
        assert info["built"] and info["reason"] == "" and info["devices"]
        for d in info["devices"]:
            assert {"index", "name", "compute_capability", "memory_bytes", "multiprocessors"} <= set(d)
    else:
        assert info["reason"]  # says why: no CUDA in this build, no driver, no device
        if info["built"]:
            assert info["runtime_version"]  # the static runtime is in the module


@pytest.mark.skipif(GPU, reason="checks the error where no GPU is usable")
def test_device_cuda_without_a_gpu_says_why():
    q = np.ones((2, 4), np.float32)
    for call in (lambda: lf.maxsim(q, [q], device="cuda"),
                 lambda: lf.maxsim_rerank(q, [q], [0], device="cuda"),
                 lambda: lf.maxsim_topk(q, [q], 1, device="cuda:0"),
                 lambda: lf.to_device([q])):
        with pytest.raises(RuntimeError, match="not available: " + lf.cuda_info()["reason"][:20]):
            call()


def test_device_names_are_checked():
    q = np.ones((2, 4), np.float32)
    for bad in ("gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1"):
        with pytest.raises(ValueError, match="device must be"):
            lf.maxsim(q, [q], device=bad)
    with pytest.raises(TypeError, match="device must be a str"):
        lf.maxsim_topk(q, [q], 1, device=0)
    np.testing.assert_array_equal(lf.maxsim(q, [q], device="cpu"), lf.maxsim(q, [q]))
    with pytest.raises(ValueError, match="to_device needs a CUDA device"):
        lf.to_device([q], device="cpu")


class FakeCudaArray:
    """An object announcing CUDA memory through the array interface (never dereferenced here)."""

    def __init__(self, **fields):
        self.__cuda_array_interface__ = {"shape": (4, 3), "typestr": "<f4", "data": (4096, False),
                                         "version": 3, "strides": None, **fields}


def test_device_arrays_on_the_cpu_path_are_rejected():
    q = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="pass device='cuda'"):
        lf.maxsim(q, FakeCudaArray())
    with pytest.raises(TypeError, match="pass device='cuda'"):
        lf.maxsim_topk(FakeCudaArray(), [q], 1)
    with pytest.raises(TypeError, match="CUDA device array"):
        lf.DeviceMultiVectors(np.ones((3, 2), np.float32), [0, 3])


# --- __dlpack__ and __cuda_array_interface__ readers -----------------------------------------


class DLPackOnly:
    """Exposes only a producer's __dlpack__ (not an ndarray): the path other libraries take."""

    def __init__(self, array, legacy=False):
        self.array, self.legacy, self.calls = array, legacy, []

    def __dlpack__(self, **kwargs):
        self.calls.append(kwargs)
        if self.legacy and "max_version" in kwargs:
            raise TypeError("max_version is not supported")
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.int64, np.uint16])
def test_dlpack_reader_describes_host_arrays(dtype, legacy):
    base = (np.arange(60) % 7).astype(dtype).reshape(6, 10)
    for a in (base, base[1:5, 2:9], base[::2]):
        before = sys.getrefcount(base)
        producer = DLPackOnly(a, legacy)
        got = _core.foreign_array(producer)
        assert got["data"] == a.ctypes.data
        assert got["dtype"] == np.dtype(dtype).name
        assert got["shape"] == list(a.shape)
        assert got["strides"] == [s // a.itemsize for s in a.strides]
        assert got["c_contiguous"] == a.flags.c_contiguous
        assert got["on_device"] is False
        del producer, got
        assert sys.getrefcount(base) == before  # the consumed capsule's deleter ran


def test_dlpack_reader_takes_the_versioned_capsule_when_offered():
    a = np.zeros((3, 2), np.float32)
    producer = DLPackOnly(a)
    _core.foreign_array(producer)
    assert producer.calls[0].get("max_version") == (1, 0)
    legacy = DLPackOnly(a, legacy=True)
    _core.foreign_array(legacy)
    assert legacy.calls[-1] == {}  # retried without max_version
    read_only = np.zeros((3, 2), np.float32)
    read_only.flags.writeable = False
    try:
        got = _core.foreign_array(DLPackOnly(read_only))
    except (TypeError, BufferError):
        pytest.skip("this NumPy does not export read-only arrays by DLPack")
    assert got["read_only"] is True


def test_dlpack_reader_rejects_unsupported_types():
    for a in (np.zeros(3, np.complex64), np.zeros(3, bool)):
        with pytest.raises((TypeError, BufferError)):
            _core.foreign_array(DLPackOnly(a))
    with pytest.raises(TypeError, match="__cuda_array_interface__ or __dlpack__"):
        _core.foreign_array(object())


def test_cuda_array_interface_reader():
    got = _core.foreign_array(FakeCudaArray())
    assert got == {"data": 4096, "dtype": "float32", "shape": [4, 3], "strides": [3, 1], "on_device": True,
                   "device": 0, "read_only": False, "c_contiguous": True}
    got = _core.foreign_array(FakeCudaArray(typestr="<f2", strides=(16, 2), data=(8192, True), version=2))
    assert got["dtype"] == "float16" and got["strides"] == [8, 1] and got["read_only"] is True
    assert not got["c_contiguous"]
    assert _core.foreign_array(FakeCudaArray(typestr="|i1", shape=(5, 7)))["dtype"] == "int8"
    assert _core.foreign_array(FakeCudaArray(typestr="<u2"))["dtype"] == "uint16"
    bad = [
        (dict(typestr=">f4"), TypeError, "little-endian"),
        (dict(typestr="<c8"), TypeError, "unsupported typestr"),
        (dict(typestr="<f3"), TypeError, "unsupported typestr"),
        (dict(version=1), ValueError, "version 1"),
        (dict(mask=(1, 2)), ValueError, "masked"),
        (dict(strides=(6,)), ValueError, "strides and shape"),
        (dict(strides=(12, 3)), ValueError, "whole elements"),
        (dict(data=(0, False)), ValueError, "null data"),
        (dict(data=(1,)), ValueError, "pointer, read_only"),
    ]
    for fields, error, message in bad:
        with pytest.raises(error, match=message):
            _core.foreign_array(FakeCudaArray(**fields))
    missing = FakeCudaArray()
    del missing.__cuda_array_interface__["typestr"]
    with pytest.raises(ValueError, match="no 'typestr'"):
        _core.foreign_array(missing)


# --- on a GPU ---------------------------------------------------------------------------------


def make_docs(rng, storage, n, dim, max_len=40):
    docs = random_set(rng, rng.integers(1, max_len + 1, n), dim, np.float32)
    if storage in ("int8", "bfloat16"):
        return lf.quantize(docs, storage)
    return lf.MultiVectors([d.astype(storage) for d in docs])


def check_close(storage, queries, docs, got, want, candidates=None):
    """got (GPU) against want (CPU) for the storage's tolerance (module docstring); scores of
    all documents, or of `candidates` (-1: skipped)."""
    got, want = np.asarray(got), np.asarray(want)
    if storage == "int8":
        np.testing.assert_array_equal(got, want)  # -inf padding included
        return
    values = docs.values()
    qs = queries if storage != "bfloat16" else [from_bfloat16_bits(to_bfloat16_bits(q)) for q in queries]
    bound = bfloat16_bound(qs, values, docs.offsets)
    if candidates is not None:
        bound = np.take_along_axis(bound, np.maximum(candidates, 0), 1)
        got, want = got[candidates >= 0], want[candidates >= 0]
        bound = bound[candidates >= 0]
    dim = values.shape[1]
    m = max(len(q) for q in queries)
    tol = bound * (dim + m + 2) * 2.0**-23 + 1e-30
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol), np.abs(got - want).max()


@pytest.fixture(params=["tensor", "simt"])
def kernel(request, monkeypatch):
    if request.param == "simt":
        monkeypatch.setenv("LATEFOLD_CUDA_KERNEL", "simt")
    return request.param


@needs_gpu
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("dim", [1, 7, 16, 33, 128, 130])
def test_maxsim_matches_the_cpu(rng, storage, dim, kernel):
    docs = make_docs(rng, storage, 57, dim)
    queries = random_set(rng, rng.integers(1, 40, 9), dim, np.float32)
    check_close(storage, queries, docs, lf.maxsim(queries, docs, device="cuda"), lf.maxsim(queries, docs))


@needs_gpu
@pytest.mark.parametrize("storage", STORAGES)
def test_groups_of_many_queries_and_long_queries(rng, storage, kernel):
    dim = 64
    docs = make_docs(rng, storage, 70, dim, max_len=90)
    # Many groups of up to 128 query rows (one query of exactly 128); then queries longer than
    # a group, which the SIMT kernel scores.
    for lengths in (list(rng.integers(1, 60, 40)) + [128], [5, 129, 300]):
        queries = random_set(rng, lengths, dim, np.float32)
        check_close(storage, queries, docs, lf.maxsim(queries, docs, device="cuda"), lf.maxsim(queries, docs))
        candidates = rng.integers(-1, len(docs), (len(queries), 9))
        check_close(storage, queries, docs, lf.maxsim_rerank(queries, docs, candidates, device="cuda"),
                    lf.maxsim_rerank(queries, docs, candidates), candidates)


@needs_gpu
@pytest.mark.parametrize("storage", STORAGES)
def test_rerank_and_topk_match_the_cpu(rng, storage, kernel):
    dim = 32
    docs = make_docs(rng, storage, 300, dim)
    queries = random_set(rng, rng.integers(1, 33, 5), dim, np.float32)
    candidates = rng.integers(-1, len(docs), (5, 17))
    got = lf.maxsim_rerank(queries, docs, candidates, device="cuda")
    want = lf.maxsim_rerank(queries, docs, candidates)
    assert np.array_equal(np.isneginf(got), candidates == -1)
    check_close(storage, queries, docs, got, want, candidates)
    for k in (1, 10, 300):
        scores, ids = lf.maxsim_topk(queries, docs, k, device="cuda")
        all_scores = lf.maxsim(queries, docs, device="cuda")
        # The device's selection of its own scores: best first, ties to the lower index.
        order = np.lexsort((np.broadcast_to(np.arange(len(docs)), all_scores.shape), -all_scores), axis=1)[:, :k]
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_array_equal(scores, np.take_along_axis(all_scores, order, 1))


@needs_gpu
def test_topk_beyond_the_device_selection(rng):
    docs = make_docs(rng, "float16", 1500, 16, max_len=5)
    q = random_set(rng, [7], 16, np.float32)[0]
    scores, ids = lf.maxsim_topk(q, docs, 1200, device="cuda")
    full = lf.maxsim(q, docs, device="cuda")
    order = np.lexsort((np.arange(len(docs)), -full))[:1200]
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_array_equal(scores, full[order])


@needs_gpu
@pytest.mark.parametrize("storage", STORAGES)
def test_documents_held_on_the_device(rng, storage):
    docs = make_docs(rng, storage, 40, 24)
    on_gpu = lf.to_device(docs)
    assert len(on_gpu) == len(docs) and on_gpu.dim == 24 and on_gpu.storage == storage
    back = on_gpu.to_host()
    np.testing.assert_array_equal(back.tokens, docs.tokens)
    np.testing.assert_array_equal(back.offsets, docs.offsets)
    queries = random_set(rng, [3, 9], 24, np.float32)
    out = lf.maxsim(queries, on_gpu, device="cuda")
    assert isinstance(out, lf.DeviceArray) and out.shape == (2, 40) and out.dtype == "float32"
    cai = out.__cuda_array_interface__
    assert cai["shape"] == (2, 40) and cai["typestr"] == "<f4" and cai["version"] == 3
    assert out.__dlpack_device__() == (2, 0)
    np.testing.assert_array_equal(np.asarray(out), lf.maxsim(queries, docs, device="cuda"))
    single = lf.maxsim(queries[0], on_gpu, device="cuda")
    assert single.shape == (40,)
    # A device array read in place through its interface (our own result) as token rows.
    as_docs = lf.DeviceMultiVectors(out, [0, 1, 2])
    assert len(as_docs) == 2 and as_docs.dim == 40 and as_docs.storage == "float32"
    probe = random_set(rng, [3], 40, np.float32)
    np.testing.assert_allclose(np.asarray(lf.maxsim(probe, as_docs, device="cuda")),
                               lf.maxsim(probe, [np.asarray(out)[:1], np.asarray(out)[1:]]), rtol=1e-5, atol=1e-5)


@needs_gpu
def test_device_input_validation(rng):
    bad = random_set(rng, [3, 4, 5], 8, np.float32)
    bad[1] = bad[1].copy()
    bad[1][2, 3] = np.nan
    with pytest.raises(ValueError, match=r"item 1 \(token 2\)"):
        lf.maxsim(bad[0], bad, device="cuda")
    with pytest.raises(ValueError, match=r"queries: item 1 \(token 2\)"):
        lf.maxsim(bad, bad[:1], device="cuda")
    docs = lf.to_device(bad[:1])
    with pytest.raises(ValueError, match="token dimension"):
        lf.maxsim(np.ones((2, 5), np.float32), docs, device="cuda")
    with pytest.raises(ValueError, match="larger than the number of documents"):
        lf.maxsim_topk(bad[0], docs, 2, device="cuda")
    with pytest.raises(ValueError, match="not a document"):
        lf.maxsim_rerank(bad[0], docs, [1], device="cuda")
    tokens = lf.maxsim(random_set(rng, [4, 2, 3, 5], 8, np.float32), lf.to_device([np.eye(8, dtype=np.float32)] * 6),
                       device="cuda")  # a (4, 6) float32 device array
    with pytest.raises(ValueError, match="offsets"):
        lf.DeviceMultiVectors(tokens, [0, 2, 1, 4])
    with pytest.raises(TypeError, match="not a token storage"):
        lf.DeviceMultiVectors(tokens, [0, 4], dtype="int8")


@needs_gpu
@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 200), seed=st.integers(0, 2**32 - 1), storage=st.sampled_from(STORAGES),
       n_queries=st.integers(1, 6))
def test_property_maxsim_matches_the_cpu(dim, seed, storage, n_queries):
    rng = np.random.default_rng(seed)
    docs = make_docs(rng, storage, int(rng.integers(1, 30)), dim, max_len=50)
    queries = random_set(rng, rng.integers(1, 50, n_queries), dim, np.float32)
    check_close(storage, queries, docs, lf.maxsim(queries, docs, device="cuda"), lf.maxsim(queries, docs))


# --- FDE and PQ on a GPU ----------------------------------------------------------------------

FDE_CONFIGS = [
    dict(num_repetitions=3, num_simhash_projections=0, projection_type="identity", fill_empty_partitions=False),
    dict(num_repetitions=4, num_simhash_projections=4, projection_type="identity", fill_empty_partitions=False),
    dict(num_repetitions=5, num_simhash_projections=3, projection_type="identity", fill_empty_partitions=True),
    dict(num_repetitions=3, num_simhash_projections=4, projection_type="ams_sketch", projection_dimension=8,
         fill_empty_partitions=True),
    dict(num_repetitions=2, num_simhash_projections=5, projection_type="dense_sign", projection_dimension=6,
         fill_empty_partitions=True, final_projection_dimension=50),
    dict(num_repetitions=3, num_simhash_projections=2, projection_type="identity", fill_empty_partitions=False,
         final_projection_dimension=40),
]


def fde_bound(fde, items, dim):
    """Per item: float32 error bound of an encoding value against the CPU's, summing in another
    order: every value is a (signed) sum of at most (tokens x dim x fan-in) products of a token
    value and a matrix entry; twice the one-sided bound (both sides round)."""
    p = fde.params
    d_proj = p["projection_dimension"] or dim
    entry = 1.0 if p["projection_type"] != "dense_sign" else 1.0 / np.sqrt(d_proj)
    final = p["final_projection_dimension"] or 0
    fan_in = 1 if not final else -(-p["num_repetitions"] * 2 ** p["num_simhash_projections"] * d_proj // final) * 4
    out = []
    for x in items:
        mass = np.abs(np.asarray(x, np.float64)).sum() * entry * fan_in
        out.append(mass * (len(x) + dim + fan_in + 2) * 2.0**-23 + 1e-30)
    return np.array(out)


@needs_gpu
@pytest.mark.parametrize("config", FDE_CONFIGS)
@pytest.mark.parametrize("storage", STORAGES)
def test_fde_on_the_gpu_matches_the_cpu(rng, config, storage):
    dim = 12
    fde = lf.FDE(dim, seed=int(rng.integers(1 << 30)), **config)
    docs = make_docs(rng, storage, 25, dim, max_len=30)
    np.testing.assert_array_equal(fde.partition_indices(docs, device="cuda"), fde.partition_indices(docs))
    items = [docs.values(i, i + 1) for i in range(len(docs))]
    bound = fde_bound(fde, items, dim)[:, None]
    for encode in ("encode_queries", "encode_documents"):
        got = getattr(fde, encode)(docs, device="cuda")
        want = getattr(fde, encode)(docs)
        assert got.shape == want.shape and got.dtype == np.float32
        if config["projection_type"] == "identity":
            np.testing.assert_array_equal(got, want)  # the same sums in the same order
        else:
            assert np.all(np.abs(got.astype(np.float64) - want) <= bound), np.abs(got - want).max()
    one = fde.encode_queries(items[0], device="cuda")
    assert one.shape == (fde.output_dim,)


@needs_gpu
def test_fde_partitions_near_a_sign_change_are_the_cpus(rng):
    # Tokens whose SimHash products nearly cancel: the float32 sign is uncertain, the float64
    # reference decides (as on the CPU).
    fde = lf.FDE(64, 4, 6, seed=3)
    g = fde.simhash_matrix(0)[:, 0]
    x = rng.standard_normal((200, 64)).astype(np.float32)
    x -= np.outer(x @ g / (g @ g), g).astype(np.float32)  # nearly orthogonal to the first column
    np.testing.assert_array_equal(fde.partition_indices([x], device="cuda"), fde.partition_indices([x]))


@needs_gpu
@pytest.mark.parametrize("nbits", [8, 4])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_pq_search_on_the_gpu_matches_the_float_tables(rng, nbits, metric):
    dim, m, n = 16, 8, 3000
    x = rng.standard_normal((n, dim)).astype(np.float32)
    pq = lf.ProductQuantizer(dim, m, nbits, metric).train(x, iterations=4)
    codes = pq.encode(x)
    queries = rng.standard_normal((7, dim)).astype(np.float32)
    lut = pq.lut(queries).astype(np.float64)
    # The exact ADC scores (float32 sums in subspace order, as the kernel adds).
    ks = 2**nbits
    sub = codes if nbits == 8 else np.stack([(codes[:, s // 2] >> (4 * (s % 2))) & 15 for s in range(m)], 1)
    exact = np.zeros((7, n), np.float32)
    for s in range(m):
        exact += lut.reshape(7, m, ks)[:, s, :][:, sub[:, s]].astype(np.float32)
    sign = -1 if metric == "l2" else 1
    for k in (1, 10, 2000):
        scores, ids = pq.search(codes, queries, k, device="cuda")
        order = np.lexsort((np.broadcast_to(np.arange(n), exact.shape), -sign * exact), axis=1)[:, :k]
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_array_equal(scores, np.take_along_axis(exact, order, 1))
    allowed = rng.random(n) < 0.001
    scores, ids = pq.search(codes, queries, 10, allowed=allowed, device="cuda")
    kept = int(allowed.sum())
    assert np.all(ids[:, kept:] == -1) and np.all(np.isnan(scores[:, kept:]))
    assert set(ids[0, :kept]) == set(np.flatnonzero(allowed))
    with pytest.raises(TypeError, match="device='cpu'"):
        pq.search(codes, queries, 10, vectors=x, device="cuda")
