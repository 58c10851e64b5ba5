"""Filtered graph search: latefold GraphIndex vs faiss HNSW (IDSelectorBitmap; float32 and fp16
rows), hnswlib (filter callable), usearch (float32 and f16; post-filtering: its Python API has no
predicate) and numpy brute force.

    python bench/bench_graph.py            # full run (about 17 minutes on 2 cores)
    python bench/bench_graph.py --quick    # 20,000 synthetic vectors only

Datasets (inner product, top-10):
  netflix-tokens  the 72,563 token vectors (128-d) of netflix-dev-128, queries = 300 query tokens
  synthetic       100,000 unit vectors (128-d) from a mixture of 200 Gaussians, 300 queries
Every vector gets an attribute `u`, uniform in [0, 10000): the filter `u < s * 10000` has
selectivity s exactly and is independent of the vectors (the hard case for graphs).
`latefold f16` is the same index storing float16 rows (half the bytes read per scored vector),
`latefold pq` the same index with an 8-bit product quantizer (d/4 bytes per vector) steering
the traversals and the rows read only to re-rank.
Per selectivity (1%, 10%, 50%, 100%) and library: recall@10 against exact filtered brute force
and queries per second on one thread over an ef sweep (hnswlib / faiss efSearch, usearch
expansion, latefold ef), the libraries taking turns at each setting. Builds use all cores.
Prints tables, the QPS each library reaches at recall 0.9 and 0.95, build time and bytes per
vector; writes bench/results/graph.json and bench/results/graph_recall_qps.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SELECTIVITIES = (0.01, 0.1, 0.5, 1.0)
EFS = (10, 12, 14, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)
K = 10


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def datasets(quick: bool):
    rng = np.random.default_rng(42)
    out = []
    if not quick and (DATA / "netflix-dev-128").exists():
        d = DATA / "netflix-dev-128"
        x = np.load(d / "docs_tokens.npy").astype(np.float32)
        q = np.load(d / "queries_tokens.npy").astype(np.float32)
        out.append(("netflix-tokens", x, q[rng.choice(len(q), 300, replace=False)]))
    n = 20_000 if quick else 100_000
    centres = rng.standard_normal((200, 128)).astype(np.float32)
    x = centres[rng.integers(0, 200, n)] + 0.6 * rng.standard_normal((n, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres[rng.integers(0, 200, 300)] + 0.6 * rng.standard_normal((300, 128)).astype(np.float32)
    out.append(("synthetic", x.astype(np.float32), q.astype(np.float32)))
    return out


def exact(x, q, mask):
    s = q @ x[mask].T
    rows = np.flatnonzero(mask)
    top = np.argsort(-s, axis=1, kind="stable")[:, :K]
    return rows[top]


def recall(found, truth):
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def run_dataset(name, x, q, rows, builds):
    """Builds every library's index, then times them in turns: for each selectivity and setting,
    each library runs its batch of queries once per round (three rounds after a warm-up) and
    keeps its best round. Taking turns exposes every library to the same machine state (this
    machine's speed drifts by 10-40 % over minutes, more than the differences measured)."""
    import latefold as lf

    n, d = x.shape
    u = np.random.default_rng(7).integers(0, 10_000, n)
    masks = {s: u < int(s * 10_000) for s in SELECTIVITIES}
    truth = {s: exact(x, q, m) for s, m in masks.items()}
    engines = {}  # label -> search(selectivity, ef) -> found ids (nq x K)
    paths = {}    # latefold labels -> the planner's path for (selectivity, ef)

    def latefold(label, index, stored, prepare_s=0.0, note=None):
        """Builds `index` (an empty GraphIndex; prepare_s: seconds spent before it existed, e.g.
        training its quantizer)."""
        t0 = time.perf_counter()
        index.add(x, attributes={"u": u})
        build = prepare_s + time.perf_counter() - t0
        # stored rows (or codes), ids, live flag, degree, edges; + norms and the attribute
        p = index.params
        row = index.quantizer.code_size if stored == "codes" else p["dim"] * (4 if p["storage"] == "float32" else 2)
        nbytes = n * (row + 8 + 1 + 4 + 4 * p["degree"] + 12)
        builds.append({"dataset": name, "library": label, "build_s": build, "bytes_per_vector": nbytes / n,
                       **({"note": note} if note else {})})
        log(f"[{name}] {label} built in {build:.1f} s")
        filters = {s: None if s == 1.0 else lf.Filter.range("u", None, int(s * 10_000) - 1) for s in SELECTIVITIES}
        engines[label] = lambda s, ef: index.search(q, K, ef=ef, filter=filters[s], threads=1)[1]
        # the planner's choice, from one more call (explain builds a dict per query)
        paths[label] = lambda s, ef: index.search(q[:1], K, ef=ef, filter=filters[s], threads=1,
                                                  explain=True)[2][0]["path"]

    latefold("latefold", lf.GraphIndex(d), "vectors")
    # The same graph over float16 rows: half the bytes per scored vector, the inputs rounded.
    latefold("latefold f16", lf.GraphIndex(d, storage="float16"), "vectors")
    # The same index with PQ codes (8-bit, d/4 bytes) steering the traversal, re-ranked from the rows.
    t0 = time.perf_counter()
    pq = lf.ProductQuantizer(d, d // 4, nbits=8).train(x, iterations=10, seed=1)
    latefold("latefold pq", lf.GraphIndex(d, quantizer=pq), "codes", prepare_s=time.perf_counter() - t0,
             note=f"+ {4 * d} B/vector of rows, read to re-rank (memory-mapped with load(mmap=True)); "
                  "build includes PQ training")

    def numpy_search(s, ef):  # the allowed rows, one matrix product per batch, one thread
        with h.limit_threads(1):
            return exact(x, q, masks[s])

    faiss, why = h.try_import("faiss")
    if faiss is not None:
        bits = {s: np.packbits(masks[s], bitorder="little") for s in SELECTIVITIES}
        selectors = {s: faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits[s])) for s in SELECTIVITIES}
        # float32 rows, and float16 ones (the scalar quantizer's fp16 mode) beside latefold f16
        for label, make in (("faiss-hnsw", lambda: faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)),
                            ("faiss-hnsw f16", lambda: faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, 16,
                                                                         faiss.METRIC_INNER_PRODUCT))):
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            t0 = time.perf_counter()
            findex = make()
            findex.hnsw.efConstruction = 128
            findex.train(x)
            findex.add(x)
            build = time.perf_counter() - t0
            faiss.omp_set_num_threads(1)
            builds.append({"dataset": name, "library": label, "build_s": build,
                           "bytes_per_vector": len(faiss.serialize_index(findex)) / n})
            log(f"[{name}] {label} built in {build:.1f} s")

            def faiss_search(s, ef, findex=findex):
                params = faiss.SearchParametersHNSW(efSearch=ef)
                if s < 1.0:
                    params.sel = selectors[s]
                return findex.search(q, K, params=params)[1]

            engines[label] = faiss_search
    else:
        log(f"skipped faiss: {why}")

    hnswlib, why = h.try_import("hnswlib")
    if hnswlib is not None:
        t0 = time.perf_counter()
        hindex = hnswlib.Index("ip", d)
        hindex.init_index(n, M=16, ef_construction=128)
        hindex.add_items(x, num_threads=os.cpu_count() or 1)
        build = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            hindex.save_index(os.path.join(tmp, "h"))
            size = os.path.getsize(os.path.join(tmp, "h"))
        builds.append({"dataset": name, "library": "hnswlib", "build_s": build, "bytes_per_vector": size / n})
        log(f"[{name}] hnswlib built in {build:.1f} s")
        predicates = {s: None if s == 1.0 else (lambda i, m=masks[s]: bool(m[i])) for s in SELECTIVITIES}

        def hnswlib_search(s, ef):
            hindex.set_ef(ef)
            return hindex.knn_query(q, K, num_threads=1, filter=predicates[s])[0]

        engines["hnswlib"] = hnswlib_search
    else:
        log(f"skipped hnswlib: {why}")

    usearch, why = h.try_import("usearch.index")
    if usearch is not None:
        for label, dtype in (("usearch", "f32"), ("usearch f16", "f16")):
            t0 = time.perf_counter()
            uindex = usearch.Index(ndim=d, metric="ip", dtype=dtype, connectivity=16, expansion_add=128)
            uindex.add(np.arange(n), x, threads=os.cpu_count() or 1)
            build = time.perf_counter() - t0
            builds.append({"dataset": name, "library": label, "build_s": build,
                           "bytes_per_vector": uindex.memory_usage / n})
            log(f"[{name}] {label} built in {build:.1f} s")

            def usearch_search(s, ef, uindex=uindex):  # post-filtering: fetch enough to keep k
                count = min(n, int(np.ceil(2 * K / s)))
                uindex.expansion_search = max(ef, count)
                keys = uindex.search(q, count, threads=1).keys
                out = np.full((len(q), K), -1, dtype=np.int64)
                for i in range(len(q)):
                    kept = keys[i][masks[s][keys[i]]][:K]
                    out[i, :len(kept)] = kept
                return out

            engines[label] = usearch_search
    else:
        log(f"skipped usearch: {why}")

    def take_turns(s, ef, turn):
        found = {lib: fn(s, ef) for lib, fn in turn.items()}  # warm-up
        best = {lib: float("inf") for lib in turn}
        for _ in range(3):
            for lib, fn in turn.items():
                t0 = time.perf_counter()
                fn(s, ef)
                best[lib] = min(best[lib], time.perf_counter() - t0)
        for lib in turn:
            rows.append({"dataset": name, "selectivity": s, "library": lib, "ef": ef,
                         "recall": recall(found[lib], truth[s]), "qps": len(q) / best[lib]})
            if lib in paths:
                rows[-1]["path"] = paths[lib](s, ef)

    for s in SELECTIVITIES:
        take_turns(s, None, {"numpy": numpy_search})  # exact: one setting
        for ef in EFS:
            take_turns(s, ef, engines)
        log(f"[{name}] selectivity {s:.0%} done")


def at_recall(rows, target):
    """Per (dataset, selectivity, library): the highest QPS among settings with recall >= target."""
    best = {}
    for r in rows:
        key = (r["dataset"], r["selectivity"], r["library"])
        if r["recall"] >= target and r["qps"] > best.get(key, 0.0):
            best[key] = r["qps"]
    return best


def plot(rows, path):
    plt, why = h.try_import("matplotlib.pyplot")
    if plt is None:
        log(f"no plot: {why}")
        return
    names = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(len(names), len(SELECTIVITIES), figsize=(4 * len(SELECTIVITIES), 3.4 * len(names)),
                             squeeze=False)
    for i, name in enumerate(names):
        for j, s in enumerate(SELECTIVITIES):
            ax = axes[i][j]
            for lib in ("latefold", "latefold f16", "latefold pq", "faiss-hnsw", "faiss-hnsw f16", "hnswlib",
                        "usearch", "usearch f16", "numpy"):
                pts = [(r["recall"], r["qps"]) for r in rows if r["dataset"] == name and r["selectivity"] == s
                       and r["library"] == lib]
                if pts:
                    pts.sort()
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if len(pts) > 1 else "s", label=lib, ms=3)
            ax.set_yscale("log")
            ax.set_xlim(0.5, 1.005)
            ax.set_title(f"{name}, selectivity {s:.0%}", fontsize=9)
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries/s (1 thread)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    _, why = h.try_import("latefold")
    if why:
        log(f"latefold unavailable: {why} (pip install .)")
        return 1
    rows, builds = [], []
    for name, x, q in datasets(args.quick):
        log(f"[{name}] {x.shape[0]} x {x.shape[1]}, {len(q)} queries")
        run_dataset(name, x, q, rows, builds)

    libs = ("latefold", "faiss-hnsw", "faiss-hnsw f16", "hnswlib", "usearch", "usearch f16", "numpy")
    summary = []
    variants = ("latefold f16", "latefold pq")  # latefold's other storages
    for target in (0.9, 0.95):
        best = at_recall(rows, target)
        for name in sorted({r["dataset"] for r in rows}):
            for s in SELECTIVITIES:
                row = {"dataset": name, "selectivity": f"{s:.0%}", "recall": target}
                for lib in libs + variants:
                    row[lib] = best.get((name, s, lib))
                peers = [row[lib] for lib in libs[1:] if row[lib]]
                for lib, key in (("latefold", "vs_best_peer"), ("latefold f16", "f16_vs_best_peer")):
                    row[key] = row[lib] / max(peers) if row[lib] and peers else None
                summary.append(row)
    print("\nQPS (1 thread) at recall@10 >= target: the best setting of each library")
    h.print_table(summary, [("dataset", "dataset"), ("selectivity", "sel"), ("recall", "recall>=")] +
                  [(lib, lib) for lib in libs + variants] +
                  [("vs_best_peer", "latefold / best peer"), ("f16_vs_best_peer", "latefold f16 / best peer")])
    print("\nBuild (all cores) and size")
    h.print_table(builds, [("dataset", "dataset"), ("library", "library"), ("build_s", "build s"),
                           ("bytes_per_vector", "bytes/vector"), ("note", "note")])
    print("\nlatefold: path chosen per selectivity (default planner)")
    h.print_table([r for r in rows if r["library"] == "latefold" and r["ef"] in (16, 64)],
                  [("dataset", "dataset"), ("selectivity", "sel"), ("ef", "ef"), ("path", "path"),
                   ("recall", "recall"), ("qps", "qps")])
    plot(rows, h.RESULTS_DIR / "graph_recall_qps.png")
    h.write_json("graph.json", {"machine": h.machine_facts(), "rows": rows, "builds": builds, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
