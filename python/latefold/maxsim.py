"""Exact MaxSim (late-interaction / Chamfer) scoring.

``MaxSim(Q, D) = sum over query tokens q of max over document tokens x of <q, x>``, inner
products on the vectors as given. The documents' storage sets the arithmetic: float32 and
float16 (widened exactly) in float32; int8 (``lf.quantize(docs, "int8")``) with each query token
quantized the same way inside the call and exact integer inner products (the same bits on every
kernel path); bfloat16 with queries rounded to bfloat16 and float32 sums.

``device="cuda"`` (or ``"cuda:N"``) runs the same computation on a GPU (`latefold.cuda`):
documents given in host memory are copied to the device for the call (`lf.to_device` keeps them
there), device arrays and `DeviceMultiVectors` are read in place; results are numpy arrays, or
`DeviceArray` when the queries or documents were given on the device. The same arithmetic per
storage: int8 gives the CPU's bits; float16 documents run on tensor cores with each query
token split into two float16 terms (relative error about 2^-22, as float32 sums); bfloat16 as
on the CPU, sums in another order.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core
from . import _validate
from . import cuda
from .multivectors import MultiVectorsLike, as_items, core_args


def _pair(queries: MultiVectorsLike, docs: MultiVectorsLike):
    if cuda.on_device(queries, docs):
        raise TypeError("queries or docs are in CUDA device memory: pass device='cuda'")
    q, single = as_items(queries, "queries")
    d, _ = as_items(docs, "docs")
    if len(q) and len(d) and q.dim != d.dim:
        raise ValueError(
            f"queries have token dimension {q.dim} but docs have {d.dim}"
        )
    return q, d, single


def maxsim(
    queries: MultiVectorsLike, docs: MultiVectorsLike, *, threads: Optional[int] = None,
    device: str = "cpu",
) -> np.ndarray:
    """MaxSim of every query against every document.

    Parameters
    ----------
    queries, docs
        ``MultiVectors``, a list (or tuple) of 2-D arrays, or one 2-D array (a single item);
        tokens of the same dimension in any storage (a list: float32 or float16 arrays). A
        list's arrays are read where they lie (no copy of the corpus; an item that is not
        C-contiguous and aligned, or float16 among float32 items, is copied alone) and its
        values checked on this call: for many calls over one corpus a ``MultiVectors`` checks
        them once. The same for every function here.
    threads
        Threads to use; ``None`` uses every core (CPU only).
    device
        ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (see the module's notes).

    Returns
    -------
    float32 array ``(n_queries, n_docs)``; ``(n_docs,)`` when ``queries`` is one 2-D array.
    """
    t = _validate.threads(threads)
    if cuda.device_index(device) is not None:
        q, d, single, keep = cuda.prepare(queries, docs, device)
        return cuda.result(_core.cuda_maxsim(*core_args(q), d), single, keep)
    q, d, single = _pair(queries, docs)
    scores = _core.maxsim(*core_args(q), *core_args(d), t)
    return scores[0] if single else scores


def maxsim_rerank(
    queries: MultiVectorsLike,
    docs: MultiVectorsLike,
    candidates: object,
    *,
    threads: Optional[int] = None,
    device: str = "cpu",
) -> np.ndarray:
    """MaxSim of each query against its own candidate documents (the rerank stage).

    Parameters
    ----------
    candidates
        Integer array ``(n_queries, c)`` of document indices into ``docs``; ``-1`` is padding and
        scores ``-inf``. A 1-D array is accepted with a single 2-D query.

    For a list of arrays, the documents the call reads are checked (the candidates; a NaN in a
    document that is not a candidate is not reported); an error names the lowest bad candidate.
    Queries are all checked.

    Returns
    -------
    float32 array shaped like ``candidates``.
    """
    t = _validate.threads(threads)
    if cuda.device_index(device) is not None:
        q, d, single, keep = cuda.prepare(queries, docs, device)
        ids = _candidates(candidates, single, len(q), d.count)
        return cuda.result(_core.cuda_maxsim_rerank(*core_args(q), d, ids), single, keep)
    q, d, single = _pair(queries, docs)
    ids = _candidates(candidates, single, len(q), len(d))
    scores = _core.maxsim_rerank(*core_args(q), *core_args(d), ids, t)
    return scores[0] if single else scores


def _candidates(candidates: object, single: bool, n_queries: int, n_docs: int) -> np.ndarray:
    """Validated candidate indices, int64 (n_queries, c)."""
    # A copy of our own: the ids are checked here and read later without the GIL, when another
    # thread could change the caller's array.
    ids = np.array(_validate.int64_array(candidates, "candidates"), dtype=np.int64, order="C", copy=True)
    if single and ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2:
        raise ValueError(f"candidates must be 2-D (n_queries, c), got shape {ids.shape}")
    if ids.shape[0] != n_queries:
        raise ValueError(f"candidates has {ids.shape[0]} rows for {n_queries} queries")
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < -1 or high >= n_docs:
            bad = np.argwhere((ids < -1) | (ids >= n_docs))[0]
            raise ValueError(
                f"candidates[{bad[0]}, {bad[1]}] = {ids[bad[0], bad[1]]} is not a document "
                f"index in [0, {n_docs}) nor -1 (padding)"
            )
    return ids


def maxsim_topk(
    queries: MultiVectorsLike,
    docs: MultiVectorsLike,
    k: int,
    *,
    threads: Optional[int] = None,
    device: str = "cpu",
) -> Tuple[np.ndarray, np.ndarray]:
    """Exhaustive top-k by MaxSim.

    Returns
    -------
    ``(scores, ids)``: float32 and int64 arrays ``(n_queries, k)``, best first, ties broken by the
    lower document index; 1-D when ``queries`` is one 2-D array. ``1 <= k <= len(docs)``. On
    the GPU the top k (k <= 1024) is selected on the device.
    """
    k = _validate.positive_int(k, "k")
    t = _validate.threads(threads)
    if cuda.device_index(device) is not None:
        q, d, single, keep = cuda.prepare(queries, docs, device)
        if k > d.count:
            raise ValueError(f"k = {k} is larger than the number of documents ({d.count})")
        scores, ids = _core.cuda_maxsim_topk(*core_args(q), d, k)
        return cuda.result(scores, single, keep), cuda.result(ids, single, keep)
    q, d, single = _pair(queries, docs)
    if k > len(d):
        raise ValueError(f"k = {k} is larger than the number of documents ({len(d)})")
    scores, ids = _core.maxsim_topk(*core_args(q), *core_args(d), k, t)
    return (scores[0], ids[0]) if single else (scores, ids)
