"""Candidates from the token codes' inverted lists (as PLAID generates them) against the true top
10, on the synthetic clustered set of bench_index.py: how many documents the lists give per query
and whether the level-1 centroid interaction keeps the true top 10 among its best. A numpy
prototype that measures the idea, not an engine (no timing): the next step for MultiVectorIndex
at scale, where its mean-vector candidates lose recall (bench/README.md).

    python bench/probe_candidates.py [--docs 100000] [--centroids 2048]

Needs scipy. Each document token gets its nearest of `--centroids` k-means centroids (6
iterations on a sample of 200,000 tokens); a query's candidates are the documents with a token in
one of the `nprobe` nearest centroids of any query token; they are ranked by the sum over query
tokens of the best inner product with the centroids of their tokens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import synthetic  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--centroids", type=int, default=2048)
    p.add_argument("--queries", type=int, default=100)
    args = p.parse_args()
    import scipy.sparse as sp

    data = synthetic(args.docs, n_queries=args.queries)
    docs, queries, truth = data["docs"], data["queries"], data["truth"]
    tokens = docs.tokens.astype(np.float32)
    offsets = np.asarray(docs.offsets)
    doc_of = np.repeat(np.arange(len(docs)), np.diff(offsets))
    rng = np.random.default_rng(0)
    sample = tokens[rng.choice(len(tokens), min(200_000, len(tokens)), replace=False)]
    cent = sample[rng.choice(len(sample), args.centroids, replace=False)].copy()
    for _ in range(6):
        assign = np.concatenate([np.argmax(sample[i:i + 50_000] @ cent.T, axis=1) for i in range(0, len(sample), 50_000)])
        for c in range(args.centroids):
            members = sample[assign == c]
            if len(members):
                v = members.mean(axis=0)
                cent[c] = v / max(np.linalg.norm(v), 1e-12)
    codes = np.concatenate([np.argmax(tokens[i:i + 200_000] @ cent.T, axis=1) for i in range(0, len(tokens), 200_000)])
    incidence = sp.csr_matrix((np.ones(len(codes), np.float32), (doc_of, codes)), shape=(len(docs), args.centroids))
    by_centroid = incidence.tocsc()
    print(f"{len(docs)} documents, {len(tokens)} tokens, {args.centroids} centroids, {len(queries)} queries")
    for nprobe in (1, 2, 4):
        counts, found, kept = [], [], {keep: [] for keep in (64, 256, 1024)}
        for qi in range(len(queries)):
            q = queries[qi]
            sims = q @ cent.T  # query tokens x centroids
            probes = np.unique(np.argsort(-sims, axis=1)[:, :nprobe])
            cand = np.unique(by_centroid[:, probes].nonzero()[0])
            true = set(truth[qi].tolist())
            counts.append(len(cand))
            found.append(len(true & set(cand.tolist())) / len(true))
            present = incidence[cand].tocoo()
            best = np.full((len(cand), len(q)), -np.inf, np.float32)
            np.maximum.at(best, present.row, sims[:, present.col].T)
            order = cand[np.argsort(-best.sum(axis=1), kind="stable")]
            for keep, out in kept.items():
                out.append(len(true & set(order[:keep].tolist())) / len(true))
        print(f"nprobe {nprobe}: candidates per query {np.mean(counts):.0f} (max {max(counts)}), recall@10 among "
              f"them {np.mean(found):.3f}; kept by centroid interaction: "
              + ", ".join(f"top {keep} {np.mean(v):.3f}" for keep, v in kept.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
