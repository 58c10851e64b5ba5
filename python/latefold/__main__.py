"""Command line: ``python -m latefold demo`` (and ``info``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Sequence, Set

import numpy as np

import latefold as lf


def recall_at(ranked_ids: np.ndarray, relevant: Sequence[Set[int]], k: int) -> float:
    """Mean over queries of |top-k ∩ relevant| / |relevant|."""
    hits = [len(set(row[:k].tolist()) & rel) / len(rel) for row, rel in zip(ranked_ids, relevant)]
    return float(np.mean(hits))


def pooled_ranking(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Document rows by descending cosine of the pooled vectors (ties: lower row first)."""
    q = queries.astype(np.float32)
    d = docs.astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.argsort(-(q @ d.T), axis=1, kind="stable")


def demo(threads: Optional[int], examples: int) -> None:
    data = lf.datasets.load_limit_small()
    n_docs, n_queries = len(data.docs), len(data.queries)
    k = 10
    print(f"latefold {lf.__version__}: exact MaxSim on {data.name} "
          f"({n_docs} documents, {n_queries} queries, {data.docs.dim}-d {data.docs.dtype} "
          "token vectors)")
    print("Data: LIMIT-small, Weller et al. 2025 (arXiv:2508.21038), CC BY 4.0; "
          "embeddings: all-MiniLM-L6-v2 tokens")
    info = lf.simd_info()
    print(f"Kernels: {info['active']} on {info['cpu']}, threads: {threads or info['threads']}\n")

    lf.maxsim_topk(data.queries[0], data.docs, k, threads=threads)  # warm the thread pool
    start = time.perf_counter()
    scores, ids = lf.maxsim_topk(data.queries, data.docs, k, threads=threads)
    elapsed = time.perf_counter() - start
    pooled = pooled_ranking(data.queries_pooled, data.docs_pooled)

    for i in range(min(examples, n_queries)):
        rel = data.relevant[i]
        print(f"Query {i}: {data.query_texts[i]!r}")
        mark = lambda d: "*" if d in rel else " "  # noqa: E731
        top = ", ".join(f"{mark(d)}{data.doc_ids[d]} ({s:.2f})" for d, s in zip(ids[i, :3], scores[i, :3]))
        print(f"  MaxSim top 3:  {top}")
        top = ", ".join(f"{mark(d)}{data.doc_ids[d]}" for d in pooled[i, :3])
        print(f"  pooled top 3:  {top}")
    print("  (* = relevant)\n")

    cuts = [1, 2, 5, 10]
    header = "".join(f"{f'recall@{c}':>11}" for c in cuts)
    print(f"{'method':<32}{header}")
    for name, ranking in [("single vector (pooled cosine)", pooled), ("multi-vector (exact MaxSim)", ids)]:
        print(f"{name:<32}" + "".join(f"{recall_at(ranking, data.relevant, c):>11.4f}" for c in cuts))
    pairs = n_queries * n_docs
    print(f"\nMaxSim top-{k}: {n_queries} queries x {n_docs} documents in {elapsed * 1e3:.1f} ms "
          f"({pairs / elapsed:,.0f} query-document pairs/s, {n_queries / elapsed:,.0f} queries/s)")
    index_demo(data, ids, threads, k)


def index_demo(data: "lf.datasets.RetrievalDataset", exact_ids: np.ndarray, threads: Optional[int], k: int) -> None:
    """The same queries through a MultiVectorIndex with its defaults, one query per call."""
    start = time.perf_counter()
    index = lf.MultiVectorIndex(data.docs.dim)
    index.add(data.docs, threads=threads)
    build = time.perf_counter() - start
    stats = index.stats()
    queries = list(data.queries)
    found = np.empty((len(queries), k), dtype=np.int64)
    index.search(queries[0], k, threads=threads)  # warm-up
    start = time.perf_counter()
    for i, q in enumerate(queries):
        found[i] = index.search(q, k, threads=threads)[1]
    per_query = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for q in queries[:200]:
        lf.maxsim_topk(q, data.docs, k, threads=threads)
    exhaustive = (time.perf_counter() - start) / min(200, len(queries))
    agreement = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact_ids)])
    print(f"\nMultiVectorIndex (defaults) over the same documents: built in {build * 1e3:.0f} ms, "
          f"{stats['bytes_per_document']:,.0f} bytes/document ({stats['token_bytes'] / stats['documents']:,.0f} of "
          f"float16 tokens)")
    print(f"  recall@{k} against exact MaxSim: {agreement:.4f}; recall@2 against the qrels: "
          f"{recall_at(found, data.relevant, 2):.4f}")
    print(f"  latency per query (one query per call): index {per_query * 1e6:,.0f} us, "
          f"exhaustive maxsim_topk {exhaustive * 1e6:,.0f} us")


def info() -> None:
    for key, value in lf.simd_info().items():
        print(f"{key}: {value}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latefold", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="exact MaxSim top-10 on a small real dataset")
    d.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    d.add_argument("--examples", type=int, default=3, help="queries to show (default 3)")
    sub.add_parser("info", help="SIMD path and CPU")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.threads, args.examples)
    else:
        info()
    return 0


if __name__ == "__main__":
    sys.exit(main())
