"""Anonymous memory of save, load and compaction, as a fraction of the file's size.

Builds (once, cached) a GraphIndex of synthetic vectors (or, with --multivector, a
MultiVectorIndex of synthetic documents), then measures in a fresh process per operation how
much anonymous memory (RssAnon: the heap, not the page cache of the file) grows above its level
before the call, sampled every millisecond while the call runs:

    save                 index in memory -> file     (target: <= ~10 % of the file)
    load                 file -> index in memory     (the index itself: ~100 %, no second copy)
    load(mmap=True)      file mapped, used in place  (target: <= ~10 % of the file)
    load(mmap=True, verify=False)
    compact_mapped       after load(mmap=True, verify=False), a delete of 30 % of the documents,
                         which compacts (the mapped rows stay in the file)

Usage: python bench/io_memory.py [--n 300000] [--dim 128] [--storage float32] [--multivector]
       [--ops save,load,...] [--out bench/results/io_memory.json]. Linux only (/proc/self/status).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import os, sys, threading, time, json
import latefold as lf

def rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

op, path, out, kind = sys.argv[1:5]
cls = getattr(lf, kind)
index = cls.load(path) if op == "save" else cls.load(path, mmap=True, verify=False) if op == "compact_mapped" else None
time.sleep(0.2)
base = peak = rss_anon()
done = False

def sample():
    global peak
    while not done:
        peak = max(peak, rss_anon())
        time.sleep(0.001)

sampler = threading.Thread(target=sample)
sampler.start()
t0 = time.perf_counter()
if op == "save":
    index.save(out)
elif op == "load":
    index = cls.load(path)
elif op == "load_mmap":
    index = cls.load(path, mmap=True)
elif op == "load_mmap_unverified":
    index = cls.load(path, mmap=True, verify=False)
else:
    index.delete(index.ids[: len(index) * 3 // 10])
seconds = time.perf_counter() - t0
done = True
sampler.join()
peak = max(peak, rss_anon())
print(json.dumps({"op": op, "growth_bytes": peak - base, "after_bytes": rss_anon() - base, "seconds": seconds}))
"""


def build(path: str, n: int, dim: int, storage: str) -> None:
    import numpy as np

    import latefold as lf

    rng = np.random.default_rng(1)
    index = lf.GraphIndex(dim, storage=storage, degree=32, ef_construction=32)
    for start in range(0, n, 50_000):
        x = rng.standard_normal((min(50_000, n - start), dim)).astype(np.float32)
        index.add(x if storage == "float32" else x.astype(np.float16),
                  np.arange(start, start + len(x)), attributes={"year": rng.integers(1990, 2025, len(x))})
        print(f"built {start + len(x)} / {n}", file=sys.stderr)
    index.save(path)


def build_multivector(path: str, n: int, dim: int, storage: str) -> None:
    """Documents of 60-140 tokens around a few of 1,000 directions."""
    import numpy as np

    import latefold as lf

    rng = np.random.default_rng(1)
    topics = rng.standard_normal((1000, dim)).astype(np.float32)
    index = lf.MultiVectorIndex(dim, token_storage=storage)
    for start in range(0, n, 5_000):
        lengths = rng.integers(60, 141, size=min(5_000, n - start))
        x = topics[rng.integers(0, len(topics), size=lengths.sum())]
        x += 0.6 * rng.standard_normal(x.shape, dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        index.add(lf.MultiVectors(x.astype(storage), offsets), ids=np.arange(start, start + len(lengths)))
        print(f"built {start + len(lengths)} / {n}", file=sys.stderr)
    index.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--storage", default="float32", choices=["float32", "float16"])
    parser.add_argument("--multivector", action="store_true", help="a MultiVectorIndex (--n documents)")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "latefold_io_memory"))
    parser.add_argument("--ops", default=None, help="comma-separated subset (default: every one that applies; "
                        "compact_mapped with --multivector)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    kind = "MultiVectorIndex" if args.multivector else "GraphIndex"
    ops = args.ops or "save,load,load_mmap,load_mmap_unverified" + (",compact_mapped" if args.multivector else "")
    path = os.path.join(args.cache, f"{kind}_{args.n}_{args.dim}_{args.storage}.lf")
    if not os.path.exists(path):
        (build_multivector if args.multivector else build)(path, args.n, args.dim, args.storage)
    size = os.path.getsize(path)
    rows = []
    for op in ops.split(","):
        out = os.path.join(args.cache, "saved.lf")
        result = subprocess.run([sys.executable, "-c", CHILD, op, path, out, kind], capture_output=True, text=True,
                                check=True)
        row = json.loads(result.stdout)
        row["fraction_of_file"] = row["growth_bytes"] / size
        rows.append(row)
        print(f"{op:22s} anonymous memory +{row['growth_bytes'] / 2**20:8.1f} MiB = {row['fraction_of_file']:6.1%} "
              f"of the {size / 2**20:.0f} MiB file   ({row['seconds']:.2f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"index": kind, "n": args.n, "dim": args.dim, "storage": args.storage, "file_bytes": size,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
