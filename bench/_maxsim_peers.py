"""The MaxSim implementations compared by bench_maxsim.py, plus the float64 reference.

Every `make_*` function takes a `Workload` and a thread count, does the one-off
layout work a user would do when loading the index (views, padding, wrappers),
and returns a zero-argument callable that scores all queries against all
documents and returns float32 scores of shape (n_queries, n_docs). Only that
callable is timed. A missing package raises `Unavailable`.

Layouts: doc tokens are one flat (T, d) matrix plus int64 offsets (n+1,), as
float32 or float16 ("storage dtype"); queries are always float32. For float16
storage each peer converts to float32 inside the timed call, the way a user
of that library would have to (none of them computes in float16).
Documents must be non-empty (np.maximum.reduceat's rule for empty segments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from _harness import try_import

CHUNK_DOCS = 256  # doc chunk for the chunked numpy / torch variants (best of 256..4096 here)


class Unavailable(Exception):
    """The peer's package is not installed or cannot be used on this workload."""


@dataclass
class Workload:
    """One benchmark input: doc tokens in one storage dtype, float32 queries."""

    dataset: str
    docs: np.ndarray          # (T, d) float32 or float16, C-contiguous
    doc_offsets: np.ndarray   # (n_docs + 1,) int64
    queries: np.ndarray       # (Tq, d) float32, C-contiguous
    query_offsets: np.ndarray  # (n_queries + 1,) int64

    @property
    def dtype(self) -> str:
        return "f16" if self.docs.dtype == np.float16 else "f32"

    @property
    def n_docs(self) -> int:
        return len(self.doc_offsets) - 1

    @property
    def n_queries(self) -> int:
        return len(self.query_offsets) - 1

    def query(self, i: int) -> np.ndarray:
        return self.queries[self.query_offsets[i]:self.query_offsets[i + 1]]

    def flops(self) -> float:
        """2 * q_tokens * doc_tokens * d summed over all (query, doc) pairs."""
        return 2.0 * self.queries.shape[0] * self.docs.shape[0] * self.docs.shape[1]


# --------------------------------------------------------------------------- reference


def reference_scores(w: Workload, doc_ids: np.ndarray) -> np.ndarray:
    """Exact float64 MaxSim of every query against the docs `doc_ids` (sorted ids)."""
    spans = [w.docs[w.doc_offsets[i]:w.doc_offsets[i + 1]] for i in doc_ids]
    tokens = np.concatenate(spans).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in spans])[:-1]])
    sims = w.queries.astype(np.float64) @ tokens.T                 # (Tq, tokens)
    per_token = np.maximum.reduceat(sims, starts, axis=1)          # (Tq, docs)
    return np.add.reduceat(per_token, w.query_offsets[:-1], axis=0)  # (nq, docs)


# --------------------------------------------------------------------------- numpy


def make_numpy_chunked(w: Workload, threads: int):
    """All query tokens in one GEMM per 256-doc chunk, segment max, segment sum.

    The fastest plain-numpy formulation found: the (Tq, chunk tokens) product
    stays in cache, and the BLAS call is large enough to be efficient.
    """
    docs, off, q, qstarts = w.docs, w.doc_offsets, w.queries, w.query_offsets[:-1]
    n, nq = w.n_docs, w.n_queries

    def run():
        out = np.empty((nq, n), np.float32)
        for s in range(0, n, CHUNK_DOCS):
            e = min(n, s + CHUNK_DOCS)
            o = off[s:e + 1]
            chunk = docs[o[0]:o[-1]]
            if chunk.dtype != np.float32:
                chunk = chunk.astype(np.float32)
            sims = q @ chunk.T                                         # (Tq, chunk tokens)
            per_token = np.maximum.reduceat(sims, o[:-1] - o[0], axis=1)  # (Tq, chunk docs)
            out[:, s:e] = np.add.reduceat(per_token, qstarts, axis=0)
        return out

    return run


def make_numpy_per_query(w: Workload, threads: int):
    """The textbook line per query: maximum.reduceat(q @ D.T, offsets[:-1], axis=1).sum(0).

    float16 storage: D.astype(float32) once per call (whole matrix).
    """
    docs, starts = w.docs, w.doc_offsets[:-1]

    def run():
        flat = docs if docs.dtype == np.float32 else docs.astype(np.float32)
        return np.stack([np.maximum.reduceat(w.query(i) @ flat.T, starts, axis=1).sum(0)
                         for i in range(w.n_queries)])

    return run


# --------------------------------------------------------------------------- maxsim-cpu


def make_maxsim_cpu(w: Workload, threads: int):
    """maxsim_cpu.maxsim_scores_variable(query (Tq, d) f32, [doc (L_i, d) f32, ...]) per query.

    float32 only and one query per call; its Rayon pool is sized by
    RAYON_NUM_THREADS at first use (set by the benchmark's per-thread process).
    float16 storage: whole matrix converted once per call, then per-doc views.
    """
    mod, why = try_import("maxsim_cpu")
    if mod is None:
        raise Unavailable(f"maxsim-cpu not installed ({why})")
    off = w.doc_offsets

    def views(flat):
        return [flat[off[i]:off[i + 1]] for i in range(w.n_docs)]

    stored = views(w.docs) if w.docs.dtype == np.float32 else None
    queries = [np.ascontiguousarray(w.query(i)) for i in range(w.n_queries)]

    def run():
        docs = stored if stored is not None else views(w.docs.astype(np.float32))
        return np.stack([mod.maxsim_scores_variable(q, docs) for q in queries])

    return run


# --------------------------------------------------------------------------- torch


def make_torch_padded(w: Workload, threads: int):
    """Docs stored padded (n, L_max, d) with a pad mask; per 256-doc chunk one
    batched matmul against all query tokens, masked max over doc tokens, then a
    (Tq, n_queries) 0/1 matmul sums token maxima per query.

    float16 storage: the padded tensor is float16, each chunk goes to float32
    in the timed call (torch's CPU half matmul rounds the scores to half).
    """
    torch, why = try_import("torch")
    if torch is None:
        raise Unavailable(f"torch not installed ({why})")
    off, n, nq = w.doc_offsets, w.n_docs, w.n_queries
    lengths = np.diff(off)
    width = int(lengths.max())
    pos = np.arange(width)[None, :]
    valid = pos < lengths[:, None]
    rows = np.where(valid, off[:-1, None] + pos, 0)
    padded = torch.from_numpy(w.docs)[torch.from_numpy(rows)]     # (n, L_max, d)
    pad = torch.from_numpy(~valid)
    padded[pad] = 0
    q = torch.from_numpy(w.queries)
    owner = np.repeat(np.arange(nq), np.diff(w.query_offsets))
    member = torch.zeros(q.shape[0], nq)
    member[torch.arange(q.shape[0]), torch.from_numpy(owner)] = 1.0

    def run():
        out = torch.empty(n, nq)
        with torch.inference_mode():
            for s in range(0, n, CHUNK_DOCS):
                e = min(n, s + CHUNK_DOCS)
                chunk = padded[s:e].float()                         # no copy if float32
                sims = torch.matmul(chunk, q.T)                     # (c, L_max, Tq)
                sims.masked_fill_(pad[s:e, :, None], float("-inf"))
                out[s:e] = sims.amax(dim=1) @ member
        return out.T.contiguous().numpy()

    return run


# --------------------------------------------------------------------------- latefold


def _latefold():
    lf, why = try_import("latefold")
    if lf is None:
        raise Unavailable(f"latefold not importable ({why})")
    return lf


def make_latefold(w: Workload, threads: int):
    """lf.maxsim(queries, docs, threads=t) on lf.MultiVectors in the storage dtype."""
    lf = _latefold()
    queries = lf.MultiVectors(w.queries, w.query_offsets)
    docs = lf.MultiVectors(w.docs, w.doc_offsets)
    return lambda: np.asarray(lf.maxsim(queries, docs, threads=threads))


def make_latefold_topk(w: Workload, threads: int, k: int = 10):
    """lf.maxsim_topk(queries, docs, k, threads=t) -> (scores, ids), each (n_queries, k)."""
    lf = _latefold()
    queries = lf.MultiVectors(w.queries, w.query_offsets)
    docs = lf.MultiVectors(w.docs, w.doc_offsets)

    def run():
        scores, ids = lf.maxsim_topk(queries, docs, k, threads=threads)
        return np.asarray(scores), np.asarray(ids)

    return run


# Name -> factory, in table order. "topk" rows return (scores, ids), the rest scores.
METHODS = {
    "latefold": make_latefold,
    "latefold topk10": make_latefold_topk,
    "numpy chunked": make_numpy_chunked,
    "numpy per-query": make_numpy_per_query,
    "maxsim-cpu": make_maxsim_cpu,
    "torch padded": make_torch_padded,
}
