"""MultiVectorIndex token storage: recall@10 against exact float32 MaxSim, queries per second
(one thread, default search parameters, best of 3 interleaved rounds) and token bytes, for
float16, bfloat16 and int8 storage on the shared real sets.

    python bench/bench_index_storage.py        # ~1 minute; writes bench/results/index_storage.json
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "python"))

import _harness as h  # noqa: E402
import latefold as lf  # noqa: E402

DATA = Path(os.environ.get("LATEFOLD_DATA", BENCH.parent.parent / "shared" / "data"))
STORAGES = ("float16", "bfloat16", "int8")


def main():
    rows = []
    for name in ("scifact-dev-128", "netflix-dev-128"):
        f = DATA / name
        docs = lf.MultiVectors(np.load(f / "docs_tokens.npy").astype(np.float32),
                               np.load(f / "docs_offsets.npy").astype(np.int64))
        queries = lf.MultiVectors(np.load(f / "queries_tokens.npy").astype(np.float32),
                                  np.load(f / "queries_offsets.npy").astype(np.int64))
        exact = lf.maxsim_topk(queries, docs, k=10)[1]
        indexes = {}
        for storage in STORAGES:
            indexes[storage] = lf.MultiVectorIndex(128, token_storage=storage)
            indexes[storage].add(docs)
        best = {}
        for _ in range(3):
            for storage, index in indexes.items():
                t = time.perf_counter()
                _, ids = index.search(queries, 10, threads=1)
                best[storage] = (min(best.get(storage, (1e9,))[0], time.perf_counter() - t), ids)
        for storage, (seconds, ids) in best.items():
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)]))
            rows.append({"set": name, "token_storage": storage, "recall_at_10": recall,
                         "queries_per_s": len(queries) / seconds,
                         "token_bytes": indexes[storage].stats()["token_bytes"]})
    h.print_table(rows, [("set", "set"), ("token_storage", "storage"), ("recall_at_10", "recall@10"),
                         ("queries_per_s", "q/s"), ("token_bytes", "token bytes")])
    h.write_json("index_storage.json", {"machine": h.machine_facts(), "rows": rows})


if __name__ == "__main__":
    main()
