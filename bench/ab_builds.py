"""A/B of two latefold builds on the engines' main calls, for changes that must not move speed.

Each round runs every operation once per build, in a fresh process each (the order of the builds
alternates between rounds), and takes the best of `--repeat` timings inside the process; the
report gives each build's min / median over the rounds and the median of the per-round ratios
B / A, so a drift of the machine's speed between rounds cancels out.

    python bench/ab_builds.py PATH_A PATH_B [--rounds 8] [--repeat 5] [--ops maxsim,fde,pq,graph]

PATH_A / PATH_B: folders holding a `latefold` package (e.g. a source tree's `python/` with the
compiled module beside its files). Everything runs on one thread, on synthetic data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import latefold as lf

families, repeat = sys.argv[1].split(","), int(sys.argv[2])
rng = np.random.default_rng(1)
ops = {}
if "maxsim" in families or "fde" in families:
    tokens = rng.standard_normal((4000 * 100, 128)).astype(np.float32)
    offsets = np.arange(0, 4000 * 100 + 1, 100, dtype=np.int64)
    docs, docs16 = lf.MultiVectors(tokens, offsets), lf.MultiVectors(tokens.astype(np.float16), offsets)
    queries = lf.MultiVectors(rng.standard_normal((8 * 32, 128)).astype(np.float32), np.arange(0, 257, 32, dtype=np.int64))
if "maxsim" in families:
    ops["maxsim_topk f32 (8 x 32 tokens, 4k docs x 100)"] = lambda: lf.maxsim_topk(queries, docs, 10, threads=1)
    ops["maxsim_topk f16"] = lambda: lf.maxsim_topk(queries, docs16, 10, threads=1)
    one = queries[:1]
    ops["maxsim f32 (1 query)"] = lambda: lf.maxsim(one, docs, threads=1)
    ops["maxsim f16 (1 query)"] = lambda: lf.maxsim(one, docs16, threads=1)
    candidates = rng.integers(0, 4000, (8, 400))
    ops["maxsim_rerank f32 (400 candidates)"] = lambda: lf.maxsim_rerank(queries, docs, candidates, threads=1)
if "fde" in families:
    fde = lf.FDE(128)
    ops["FDE encode_documents (4k docs)"] = lambda: fde.encode_documents(docs, threads=1)
    ops["FDE encode_queries (8)"] = lambda: fde.encode_queries(queries, threads=1)
if "pq" in families:
    x = rng.standard_normal((200_000, 128)).astype(np.float32)
    pq_queries = rng.standard_normal((1024, 128)).astype(np.float32)
    for nbits, m, nq in ((8, 16, 128), (8, 32, 128), (4, 32, 1024), (4, 64, 1024)):
        pq = lf.ProductQuantizer(128, m, nbits=nbits)
        pq.train(x, iterations=4, max_training_points=20_000, seed=2, threads=2)
        codes = pq.encode(x, threads=2)
        q = pq_queries[:nq]
        ops[f"PQ search {nbits}-bit m={m} ({nq} queries, 200k)"] = (
            lambda pq=pq, codes=codes, q=q: pq.search(codes, q, 10, threads=1))
        if nbits == 4:
            packed = pq.pack(codes)
            ops[f"PQ search {nbits}-bit m={m} packed, rescore from vectors"] = (
                lambda pq=pq, packed=packed, q=q: pq.search(packed, q, 10, rescore=4, vectors=x, threads=1))
if "graph" in families:
    gx = rng.standard_normal((50_000, 128)).astype(np.float32)
    gq = rng.standard_normal((1000, 128)).astype(np.float32)
    years = rng.integers(0, 100, 50_000)
    for storage in ("float32", "float16"):
        g = lf.GraphIndex(128, storage=storage, degree=32, ef_construction=64)
        g.add(gx if storage == "float32" else gx.astype(np.float16), attributes={"year": years}, threads=2)
        ops[f"graph search {storage} ef=64"] = lambda g=g: g.search(gq, 10, ef=64, threads=1)
        f = lf.Filter.range("year", 0, 9)
        ops[f"graph search {storage} ef=64, 10% filter"] = lambda g=g, f=f: g.search(gq, 10, ef=64, filter=f, threads=1)
    pq = lf.ProductQuantizer(128, 32, nbits=8).train(gx, iterations=4, seed=2, threads=2)
    g = lf.GraphIndex(128, degree=32, ef_construction=64, quantizer=pq)
    g.add(gx[:20_000], threads=2)
    ops["graph+PQ search 8-bit m=32 ef=64 (20k)"] = lambda g=g: g.search(gq, 10, ef=64, threads=1)
    ops["graph build 10k (one thread)"] = lambda: lf.GraphIndex(128, degree=32, ef_construction=64).add(gx[:10_000], threads=1)
result = {}
for name, fn in ops.items():
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    result[name] = best
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", default="maxsim,fde,pq,graph")
    parser.add_argument("--out", default=None, help="JSON file for the raw timings")
    args = parser.parse_args()
    builds = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    times = {b: [] for b in builds}
    for r in range(args.rounds):
        for b in ("A", "B") if r % 2 == 0 else ("B", "A"):
            env = dict(os.environ, PYTHONPATH=builds[b])
            out = subprocess.run([sys.executable, "-c", CHILD, args.ops, str(args.repeat)], env=env,
                                 capture_output=True, text=True, check=True).stdout
            times[b].append(json.loads(out))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"{'operation (1 thread)':52s} {'A min / median ms':>20s} {'B min / median ms':>20s}  {'B/A (range)':>20s}")
    for op in times["A"][0]:
        a = [t[op] * 1e3 for t in times["A"]]
        b = [t[op] * 1e3 for t in times["B"]]
        ratios = [y / x for x, y in zip(a, b)]
        print(f"{op:52s} {min(a):9.2f} / {statistics.median(a):8.2f} {min(b):9.2f} / {statistics.median(b):8.2f}  "
              f"{statistics.median(ratios):6.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"builds": builds, "times": times}, f, indent=1)


if __name__ == "__main__":
    main()
