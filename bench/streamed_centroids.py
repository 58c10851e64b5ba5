"""Centroids of an index built in batches against one built in a single add: recall@10 of the
lists' search against exact MaxSim at a few `rerank` values, and the documents the lists find.

    python bench/streamed_centroids.py                    # 250,000 documents, 500 topics
    python bench/streamed_centroids.py --docs 100000 --topics 200 --centroids 256

The set has the near ties of the 1,000,000-document synthetic one at a quarter of its size:
documents of 60-140 tokens around 3 of `--topics` topic directions (1,500 documents a topic),
queries of 32 tokens around 2, 128-d, float16, and about as many centroids a level as topics
(512 for 500, as 2,048 for 2,000 there). The batched build adds a first batch of `--first`
documents (as few a topic as the first block of 5,000 holds at 1,000,000 documents), then blocks
of 5,000. Writes nothing; prints one line per build.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import latefold as lf


def make(n_docs, n_topics, seed=0, n_queries=100):
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((n_topics, 128)).astype(np.float32)
    lengths = rng.integers(60, 141, size=n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    own = rng.integers(0, n_topics, size=(n_docs, 3))
    pick = own[np.repeat(np.arange(n_docs), lengths), rng.integers(0, 3, size=int(offsets[-1]))]
    tokens = np.empty((offsets[-1], 128), np.float16)
    for lo in range(0, len(pick), 1 << 20):  # in chunks: float32 rows of the whole set would not fit
        hi = min(len(pick), lo + (1 << 20))
        x = topics[pick[lo:hi]] + 0.6 * rng.standard_normal((hi - lo, 128)).astype(np.float32)
        tokens[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    queries = []
    for _ in range(n_queries):
        x = topics[rng.integers(0, n_topics, size=2)][rng.integers(0, 2, size=32)]
        x = x + 0.6 * rng.standard_normal(x.shape).astype(np.float32)
        queries.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return tokens, offsets, lf.MultiVectors(queries)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=250_000)
    p.add_argument("--topics", type=int, default=500)
    p.add_argument("--centroids", type=int, default=512, help="the index's centroids (a level)")
    p.add_argument("--first", type=int, default=1250, help="documents of the batched build's first batch")
    p.add_argument("--rerank", type=int, nargs="+", default=[48, 96, 192])
    args = p.parse_args()

    tokens, offsets, queries = make(args.docs, args.topics)
    docs = lf.MultiVectors(tokens, offsets)
    t = time.perf_counter()
    _, truth = lf.maxsim_topk(queries, docs, 10)
    print(f"{args.docs} documents, {args.topics} topics; exact top 10 in {time.perf_counter() - t:.0f}s", flush=True)
    starts = [0, args.first] + list(range(args.first + 5000, args.docs, 5000)) + [args.docs]
    for how in ("one add", f"first {args.first}, then blocks of 5,000"):
        index = lf.MultiVectorIndex(128, centroids=args.centroids)
        t = time.perf_counter()
        if how == "one add":
            index.add(docs)
        else:
            for lo, hi in zip(starts[:-1], starts[1:]):
                index.add(lf.MultiVectors(tokens[offsets[lo]:offsets[hi]], offsets[lo:hi + 1] - offsets[lo]),
                          ids=np.arange(lo, hi))
        build = time.perf_counter() - t
        cells = []
        for rerank in args.rerank:
            _, found, info = index.search(queries, 10, probe=1, rerank=rerank, explain=True)
            hits = np.mean([len(set(f) & set(g)) / 10 for f, g in zip(found, truth)])
            cells.append(f"rerank {rerank}: {hits:.3f}")
        listed = np.mean([e["candidates"] for e in info])
        print(f"{how}: {', '.join(cells)}; {listed:.0f} documents listed a query; build {build:.0f}s", flush=True)


if __name__ == "__main__":
    main()
