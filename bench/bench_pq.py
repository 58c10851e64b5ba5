"""Product quantization: latefold vs faiss-cpu (IndexPQ 8-bit, IndexPQFastScan 4-bit).

    python bench/bench_pq.py                     # full run (a few minutes on 2 cores)
    python bench/bench_pq.py --quick             # 20,000 synthetic vectors, real sets too
    python bench/bench_pq.py --n 1000000 --threads 2 --sets synthetic --l2

Datasets: the pooled 384-d vectors of netflix-dev-128 and scifact-dev-128, MUVERA FDEs of the
netflix docs (2560-d) and synthetic unit vectors from a Gaussian mixture (128-d, inner product;
with --l2 also L2). Per
dataset four code settings, two code sizes (dim/4 and dim/8 bytes) each with 8-bit codes and
with 4-bit codes of twice as many sub-vectors. For each thread count a fresh process (every
thread-pool variable set, threadpoolctl and faiss.omp_set_num_threads inside) trains, encodes
and searches with both libraries: train time, encode throughput, search QPS (a batch of
queries, top-10) and recall@10 against the exact top-10 of the float vectors. Prints tables,
writes bench/results/pq.json and, with matplotlib, bench/results/pq_recall_qps.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

DATA_DIR = Path(os.environ.get("LATEFOLD_DATA", h.BENCH_DIR.parent.parent / "shared" / "data"))
K = 10
RESCORE = 4          # shortlist = RESCORE * K for the refined 4-bit variants
ITERATIONS = 25      # k-means iterations, both libraries
BUSY = 0.2
SETS = ("netflix", "scifact", "fde", "synthetic")
# variant: (what latefold runs, what faiss runs)
VARIANTS = {
    "adc": "8-bit codes, float tables (latefold search / IndexPQ)",
    "fastscan": "4-bit codes, quantized tables, no refinement (rescore=0 / IndexPQFastScan)",
    "fs+pq x4": "fast scan, best 40 re-scored with float tables on the same codes "
                "(rescore=4 / IndexRefine(fast scan, IndexPQ sharing the codebooks))",
    "fs+exact x4": "fast scan, best 40 re-scored exactly on the float vectors "
                   "(rescore=4, vectors=x / IndexRefineFlat)",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--n", type=int, default=None, help="synthetic vectors (default 200000)")
    p.add_argument("--queries", type=int, default=100, help="synthetic queries (default 100)")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS,
                   help="datasets (default all)")
    p.add_argument("--l2", action="store_true", help="also the synthetic set with metric l2")
    p.add_argument("--target", type=float, default=None,
                   help="seconds of timed calls per measurement (default 0.5, --quick 0.25)")
    p.add_argument("--quick", action="store_true", help="20,000 synthetic vectors, shorter timing")
    p.add_argument("--faiss-blas-threshold", type=int, default=None,
                   help="set faiss.cvar.distance_compute_blas_threshold (default: faiss's own)")
    p.add_argument("--max-wait", type=float, default=30.0)
    p.add_argument("--out", default="pq.json", help="file name under bench/results/")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.n = args.n or (20000 if args.quick else 200000)
    args.target = args.target or (0.25 if args.quick else 0.5)
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def synthetic(n: int, nq: int, d: int = 128, clusters: int = 1024, seed: int = 0):
    """Unit vectors from a Gaussian mixture (N(0, I) centres + N(0, I) noise, normalised, like
    embeddings); queries drawn alike."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d), dtype=np.float32)

    def draw(rows):
        x = centres[rng.integers(0, clusters, rows)]
        x += rng.standard_normal((rows, d), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return draw(n), draw(nq)


def datasets(args):
    """Yield (name, metric, docs, queries), float32."""
    for name in ("netflix-dev-128", "scifact-dev-128"):
        f = DATA_DIR / name
        if name.split("-")[0] not in args.sets:
            continue
        if (f / "docs_pooled.npy").exists():
            yield (f"{name.split('-')[0]} pooled", "ip", np.load(f / "docs_pooled.npy"),
                   np.load(f / "queries_pooled.npy"))
        else:
            log(f"skip {name}: not found under {DATA_DIR}")
    f = DATA_DIR / "netflix-dev-128"
    if "fde" in args.sets and (f / "docs_tokens.npy").exists():
        import latefold as lf

        fde = lf.FDE(128, num_repetitions=10, num_simhash_projections=4, projection_dimension=16)
        mv = {s: lf.MultiVectors(np.load(f / f"{s}_tokens.npy").astype(np.float32),
                                 np.load(f / f"{s}_offsets.npy")) for s in ("docs", "queries")}
        yield ("netflix FDE", "ip", np.asarray(fde.encode_documents(mv["docs"]), np.float32),
               np.asarray(fde.encode_queries(mv["queries"]), np.float32))
    if "synthetic" in args.sets:
        x, q = synthetic(args.n, args.queries)
        yield "synthetic", "ip", x, q
        if args.l2:
            yield "synthetic", "l2", x, q


def exact_topk(x, q, metric: str, k: int = K) -> np.ndarray:
    """Ids of the exact top-k (ip: largest inner products, l2: smallest distances)."""
    out = []
    for a in range(0, len(q), 32):
        s = q[a:a + 32] @ x.T
        if metric == "l2":
            s = 2 * s - (x * x).sum(1)  # -||q - x||^2 + ||q||^2
        top = np.argpartition(-s, k, axis=1)[:, :k]
        out.append(np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1))
    return np.concatenate(out)


def recall(ids, gt) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids.tolist(), gt.tolist())]))


def settings(dim: int):
    """(name, nbits, m): code sizes dim/4 and dim/8 bytes, 8-bit and 4-bit codes each."""
    return [(f"8b m={dim // 4}", 8, dim // 4), (f"4b m={dim // 2}", 4, dim // 2),
            (f"8b m={dim // 8}", 8, dim // 8), (f"4b m={dim // 4}", 4, dim // 4)]


# --------------------------------------------------------------------------- libraries


def build_latefold(x, metric, nbits, m, t):
    """(train, encode, {variant: search(q)}) for latefold."""
    import latefold as lf

    pq = lf.ProductQuantizer(x.shape[1], m, nbits=nbits, metric=metric)
    state = {}

    def train():
        pq.train(x, iterations=ITERATIONS, seed=1, threads=t)

    def encode():  # 4-bit: packed into the fast-scan layout too, as faiss does at add()
        state["codes"] = pq.encode(x, threads=t)
        if nbits == 4:
            state["codes"] = pq.pack(state["codes"], threads=t)
        return pq.code_size

    def exact_shortlist(q):  # the best 40 re-scored from the float vectors
        return pq.search(state["codes"], q, K, rescore=RESCORE, vectors=x, threads=t)[1]

    if nbits == 8:
        search = {"adc": lambda q: pq.search(state["codes"], q, K, threads=t)[1]}
    else:
        search = {"fastscan": lambda q: pq.search(state["codes"], q, K, rescore=0, threads=t)[1],
                  "fs+pq x4": lambda q: pq.search(state["codes"], q, K, rescore=RESCORE,
                                                  threads=t)[1],
                  "fs+exact x4": exact_shortlist}
    return train, encode, search


def build_faiss(x, metric, nbits, m, t):
    """The same for faiss: IndexPQ (8-bit) or IndexPQFastScan (4-bit), optionally refined."""
    import faiss

    faiss.omp_set_num_threads(t)
    d = x.shape[1]
    fm = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    index = faiss.IndexPQ(d, m, 8, fm) if nbits == 8 else faiss.IndexPQFastScan(d, m, 4, fm)
    index.pq.cp.niter = ITERATIONS
    refined = {}

    def train():
        index.train(x)

    def encode():  # add = encode (+ pack into 32-vector blocks for fast scan) + store
        index.reset()
        index.add(x)
        return index.code_size

    def search_with(name):
        if name not in refined:  # built once, after the encode timing
            if name == "fs+pq x4":
                pq_index = faiss.IndexPQ(d, m, 4, fm)
                pq_index.pq = index.pq  # a copy of the trained codebooks
                pq_index.is_trained = True
                pq_index.add(x)
                r = faiss.IndexRefine(index, pq_index)
            else:
                index.reset()
                r = faiss.IndexRefineFlat(index)
                r.add(x)
            r.k_factor = RESCORE
            refined[name] = r
        return lambda q: refined[name].search(q, K)[1]

    if nbits == 8:
        search = {"adc": lambda q: index.search(q, K)[1]}
    else:
        search = {"fastscan": lambda q: index.search(q, K)[1]}
        search.update({v: (lambda q, v=v: search_with(v)(q)) for v in ("fs+pq x4", "fs+exact x4")})
    return train, encode, search


LIBRARIES = {"latefold": build_latefold, "faiss": build_faiss}


# --------------------------------------------------------------------------- worker


def once(fn, max_wait: float) -> dict:
    """Time a single call (training: deterministic and too slow to repeat)."""
    h.wait_idle(BUSY, max_wait)
    b0, c0, t0 = h._system_busy_seconds(), time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    b1 = h._system_busy_seconds()
    other = None if b0 is None or b1 is None else max(0.0, (b1 - b0 - cpu) / wall)
    return {"best_s": wall, "cpu_util": cpu / wall, "other_load": other}


def run_worker(args) -> dict:
    threads, rows = args.worker, []
    avail = {lib: h.try_import(lib)[1] for lib in LIBRARIES}
    if args.faiss_blas_threshold is not None and not avail["faiss"]:
        import faiss

        faiss.cvar.distance_compute_blas_threshold = args.faiss_blas_threshold
    with h.limit_threads(threads):
        for name, metric, x, q in datasets(args):
            gt = exact_topk(x, q, metric)
            n, nq = len(x), len(q)
            for setting, nbits, m in settings(x.shape[1]):
                for lib, build in LIBRARIES.items():
                    if avail[lib]:
                        continue
                    train, encode, search = build(x, metric, nbits, m, threads)
                    base = {"dataset": name, "metric": metric, "setting": setting, "nbits": nbits,
                            "m": m, "dim": x.shape[1], "n": n, "n_queries": nq,
                            "threads": threads, "lib": lib}
                    st = once(train, args.max_wait)
                    rows.append({**base, "kind": "train", **st, "train_s": st["best_s"]})
                    h.wait_idle(BUSY, args.max_wait)
                    code_size, st = h.measure(encode, repeats=50, max_seconds=args.target)
                    base["code_size"] = code_size
                    rows.append({**base, "kind": "encode", **st, "encode_per_s": n / st["best_s"]})
                    for variant, fn in search.items():
                        fn(q)  # builds faiss's refine index outside the timing
                        h.wait_idle(BUSY, args.max_wait)
                        ids, st = h.measure(lambda fn=fn, q=q: fn(q), repeats=50,
                                            max_seconds=args.target)
                        scanned = n * nq / st["best_s"] / threads
                        rows.append({**base, "kind": "search", "variant": variant, **st,
                                     "qps": nq / st["best_s"], "recall": recall(ids, gt),
                                     "codes_per_s_core": scanned,
                                     "bytes_per_s_core": scanned * code_size})
                        log(f"  t={threads} {name:15s} {metric} {setting:9s} {lib:8s} "
                            f"{variant:11s} qps {rows[-1]['qps']:9,.0f}  "
                            f"recall {rows[-1]['recall']:.3f}")
                    del train, encode, search
        pools = h.thread_pools()
    return {"rows": rows, "skipped": {k: v for k, v in avail.items() if v}, "thread_pools": pools}


# --------------------------------------------------------------------------- parent


def copy_bandwidth(mib: int = 512) -> float:
    """Single-thread numpy copy bandwidth, bytes/s counted as read + write (best of 5)."""
    a = np.ones(mib << 20, np.uint8)
    b = np.empty_like(a)
    best = min(_timed(np.copyto, b, a) for _ in range(5))
    return 2 * a.nbytes / best


def _timed(fn, *a) -> float:
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def side_by_side(rows: list[dict], kind: str, field: str, keys: tuple) -> list[dict]:
    """One row per key: field of latefold and faiss, their ratio, max other load."""
    out = {}
    for r in rows:
        if r["kind"] != kind:
            continue
        key = tuple(r.get(k) for k in keys)
        t = out.setdefault(key, {**dict(zip(keys, key)), "other": 0.0})
        t[r["lib"]] = r[field]
        t["other"] = max(t["other"], r["other_load"] or 0.0)
        if kind == "search":
            t[f"{r['lib']}_recall"] = r["recall"]
            t[f"{r['lib']}_cpu"] = r["cpu_util"]
            t["code_size"] = r["code_size"]
            t[f"{r['lib']}_mcodes_core"] = r["codes_per_s_core"] / 1e6
            t[f"{r['lib']}_gb_s_core"] = r["bytes_per_s_core"] / 1e9
    for t in out.values():
        if "latefold" in t and "faiss" in t:
            t["ratio"] = t["latefold"] / t["faiss"]
    return list(out.values())


def plot(rows: list[dict], threads: int, path: Path) -> Path | None:
    """Recall@10 vs QPS at `threads` threads, one panel per dataset/metric."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return None
    rows = [r for r in rows if r["kind"] == "search" and r["threads"] == threads]
    panels = list(dict.fromkeys((r["dataset"], r["metric"]) for r in rows))
    cols = 2 if len(panels) <= 4 else 3
    fig, axes = plt.subplots((len(panels) + cols - 1) // cols, cols, squeeze=False,
                             figsize=(5 * cols, 4 * ((len(panels) + cols - 1) // cols)))
    colours = dict(zip(VARIANTS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for ax, (name, metric) in zip(axes.flat, panels):
        for r in rows:
            if (r["dataset"], r["metric"]) != (name, metric):
                continue
            ax.scatter(r["qps"], r["recall"], c=colours[r["variant"]],
                       marker="o" if r["lib"] == "latefold" else "x", s=40)
            ax.annotate(f"{r['code_size']}B", (r["qps"], r["recall"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set(xscale="log", xlabel="queries/s", ylabel="recall@10", title=f"{name} ({metric})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], ls="", marker="o", c="k", label="latefold"),
               plt.Line2D([], [], ls="", marker="x", c="k", label="faiss")]
    handles += [plt.Line2D([], [], ls="", marker="s", c=c, label=v) for v, c in colours.items()]
    fig.suptitle(f"PQ top-10 search, {threads} thread(s); labels = bytes per vector")
    fig.legend(handles=handles, loc="upper center", ncol=6, fontsize=8,
               bbox_to_anchor=(0.5, 0.955))
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    facts = h.worker_or_machine(args, run_worker, log)
    if facts is None:
        return 0
    _, why = h.try_import("latefold")
    if why:
        log(f"latefold unavailable: {why} (pip install .)")
        return 1
    versions = {d: h.package_version(d) for d in ("latefold", "faiss-cpu", "numpy")}
    h.wait_idle(BUSY, args.max_wait)
    bandwidth = copy_bandwidth()
    log(f"numpy copy bandwidth (1 thread, read + write): {bandwidth / 1e9:.1f} GB/s")

    rows, skipped, pools = [], {}, {}
    for t, out in h.run_workers(__file__, argv, args.threads, BUSY, args.max_wait, log).items():
        rows += out["rows"]
        skipped.update(out["skipped"])
        pools[str(t)] = out["thread_pools"]

    for lib, why in skipped.items():
        print(f"skipped {lib}: {why}")
    keys = ("dataset", "metric", "setting", "threads")
    build = side_by_side(rows, "train", "train_s", keys)
    for t, e in zip(build, side_by_side(rows, "encode", "encode_per_s", keys)):
        t.update({"lf_enc": e.get("latefold"), "fa_enc": e.get("faiss"),
                  "enc_ratio": e.get("ratio"), "other": max(t["other"], e["other"])})
    print("\ntrain (s, one run) and encode (vectors/s, best of runs); ratio = latefold / faiss")
    h.print_table(build, [("dataset", "dataset"), ("metric", "metric"), ("setting", "setting"),
                          ("threads", "thr"), ("latefold", "lf train s"),
                          ("faiss", "faiss train s"), ("ratio", "ratio"),
                          ("lf_enc", "lf enc/s"), ("fa_enc", "faiss enc/s"),
                          ("enc_ratio", "ratio"), ("other", "other")])
    search = side_by_side(rows, "search", "qps", keys + ("variant",))
    print(f"\nsearch: top-{K} of a batch of queries, QPS (best of runs); ratio = latefold / "
          "faiss; Mcodes/s/core = vectors x queries / time / threads; GB/s/core = that x bytes "
          f"per code (numpy copy: {bandwidth / 1e9:.1f} GB/s read + write, 1 thread)")
    h.print_table(search, [("dataset", "dataset"), ("metric", "metric"),
                           ("setting", "setting"), ("code_size", "B"), ("variant", "variant"),
                           ("threads", "thr"), ("latefold", "lf QPS"), ("faiss", "faiss QPS"),
                           ("ratio", "ratio"), ("latefold_recall", "lf R@10"),
                           ("faiss_recall", "faiss R@10"),
                           ("latefold_mcodes_core", "lf Mcodes/s/core"),
                           ("faiss_mcodes_core", "faiss Mcodes/s/core"),
                           ("latefold_gb_s_core", "lf GB/s/core"),
                           ("faiss_gb_s_core", "faiss GB/s/core"), ("latefold_cpu", "lf cpu"),
                           ("faiss_cpu", "faiss cpu"), ("other", "other")])
    path = h.write_json(args.out, {
        "benchmark": "pq", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": facts, "versions": versions,
        "config": {k: v for k, v in vars(args).items() if k != "worker"},
        "k": K, "rescore": RESCORE, "iterations": ITERATIONS, "variants": VARIANTS,
        "copy_bandwidth_bytes_per_s": bandwidth, "skipped": skipped, "thread_pools": pools,
        "results": rows, "build_table": build, "search_table": search,
    })
    print(f"wrote {path}")
    png = plot(rows, max(args.threads), path.with_name(f"{path.stem}_recall_qps.png"))
    if png:
        print(f"wrote {png}")
    if any(t["other"] > BUSY for t in build + search):
        print(f"warning: some timings ran while other processes used > {BUSY} cores "
              "(column 'other'); rerun on an idle machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
