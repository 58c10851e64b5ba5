"""MUVERA FDE encoding: latefold vs muvfde (Google's reference C++) and muvera-python.

    python bench/bench_fde.py                    # full run (a few minutes on 2 cores)
    python bench/bench_fde.py --quick            # fewer queries, smaller synthetic set
    python bench/bench_fde.py --threads 1 --skip-quality

Three parameter settings (R repetitions, k SimHash bits, d_proj AMS-sketch dimension), the same
for every library. The parent process checks output dimensions and encodings against a numpy
implementation of the reference semantics, then measures retrieval quality (recall of the exact
MaxSim top-k among the top-N FDE candidates, latefold with 3 seeds); for each thread count a
fresh process (every thread-pool variable set, threadpoolctl inside) times encode_documents and
encode_queries. Prints tables and writes bench/results/fde.json.
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
SETTINGS = {  # name: (R, k, d_proj); output dim R * 2^k * d_proj
    "a R20 k5 p16": (20, 5, 16),   # the paper's setting, 10240 dims
    "b R10 k4 p16": (10, 4, 16),   # 2560 dims
    "c R5 k3 p8": (5, 3, 8),       # 320 dims
}
METHODS = ("latefold", "muvfde", "muvera-python")
SEEDS = (1, 2, 3)   # latefold quality runs (noise estimate); peers use seed 1
BUSY = 0.2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--docs", type=int, default=None, help="synthetic docs (default 5000)")
    p.add_argument("--queries", type=int, default=None,
                   help="queries per real set for quality (default all)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    p.add_argument("--target", type=float, default=None,
                   help="seconds of a timed call: slow methods encode only the first items "
                        "of a set (at least 200), fast calls are repeated (default 0.5)")
    p.add_argument("--quick", action="store_true", help="100 queries, 1000 synthetic docs")
    p.add_argument("--skip-quality", action="store_true", help="throughput only")
    p.add_argument("--max-wait", type=float, default=30.0)
    p.add_argument("--out", default="fde.json", help="file name under bench/results/")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.docs = args.docs or (1000 if args.quick else 5000)
    args.queries = args.queries or (100 if args.quick else None)
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.target = args.target or (0.25 if args.quick else 0.5)
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


class Items:
    """Variable-length token sets: flat float32 tokens + offsets, as MultiVectors and a list."""

    def __init__(self, tokens, offsets):
        import latefold as lf

        self.tokens = np.ascontiguousarray(tokens, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.mv = lf.MultiVectors(self.tokens, self.offsets)
        self.arrays = [self.tokens[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def __len__(self):
        return len(self.offsets) - 1

    def head(self, n: int) -> Items:
        if n >= len(self):
            return self
        return Items(self.tokens[: self.offsets[n]], self.offsets[: n + 1])


def real(name: str, n_queries: int | None = None):
    """(docs, queries, exact MaxSim top ids) of a set in shared/data (top 100, or all docs)."""
    f = DATA_DIR / name
    q_off = np.load(f / "queries_offsets.npy")[: None if n_queries is None else n_queries + 1]
    docs = Items(np.load(f / "docs_tokens.npy"), np.load(f / "docs_offsets.npy"))
    queries = Items(np.load(f / "queries_tokens.npy")[: q_off[-1]], q_off)
    gt = min(f.glob("gt_maxsim_top*_ids.npy"))
    return docs, queries, np.load(gt)[: len(queries)]


def synthetic(n_docs: int, seed: int = 0, d: int = 128) -> Items:
    """Random L2-normalised tokens, docs of 80..120 tokens."""
    rng = np.random.default_rng(seed)
    offsets = np.zeros(n_docs + 1, np.int64)
    offsets[1:] = np.cumsum(rng.integers(80, 121, n_docs))
    x = rng.standard_normal((int(offsets[-1]), d), dtype=np.float32)
    return Items(x / np.linalg.norm(x, axis=1, keepdims=True), offsets)


# --------------------------------------------------------------------------- encoders


def encoder(method: str, setting: str, seed: int = 1, dim: int = 128):
    """(encode_documents(items, threads), encode_queries(items, threads)) for one library."""
    R, k, dp = SETTINGS[setting]
    if method == "latefold":
        import latefold as lf

        f = lf.FDE(dim, R, k, seed=seed, projection_type="ams_sketch", projection_dimension=dp,
                   fill_empty_partitions=True)
        return (lambda it, t: f.encode_documents(it.mv, threads=t),
                lambda it, t: f.encode_queries(it.mv, threads=t))
    if method == "muvfde":  # one item per call: a Python loop, as its own example does
        import muvfde

        def config(doc: bool):
            c = muvfde.fixed_dimensional_encoding_config()
            c.set_num_repetitions(R)
            c.set_num_simhash_projections(k)
            c.set_seed(seed)
            c.set_projection_type(muvfde.projection_type.AMS_SKETCH)
            c.set_projection_dimension(dp)
            c.set_encoding_type(muvfde.encoding_type.AVERAGE if doc
                                else muvfde.encoding_type.DEFAULT_SUM)
            c.enable_fill_empty(doc)  # the reference rejects fill for queries
            return c

        enc, dc, qc = muvfde.generate_fixed_dimensional_encoding, config(True), config(False)
        return (lambda it, t: np.stack([enc(x, dc) for x in it.arrays]),
                lambda it, t: np.stack([enc(x, qc) for x in it.arrays]))
    if method == "muvera-python":
        from muvera import Muvera

        m = Muvera(num_repetitions=R, num_simhash_projections=k, dimension=dim,
                   projection_type="ams_sketch", projection_dimension=dp,
                   fill_empty_partitions=True, seed=seed)
        return (lambda it, t: m.encode_documents(it.arrays),
                lambda it, t: m.encode_queries(it.arrays))
    raise ValueError(method)


def available() -> dict:
    """method -> None if importable, else the reason."""
    mods = {"latefold": "latefold", "muvfde": "muvfde", "muvera-python": "muvera"}
    return {m: h.try_import(mod)[1] for m, mod in mods.items()}


# --------------------------------------------------------------------------- correctness


def reference_fde(x, simhash, proj, document: bool) -> np.ndarray:
    """The reference algorithm in numpy (float64) given one library's matrices per repetition.

    Partition = sign bits appended as a Gray code; documents average their partitions and fill
    an empty one with the token whose sign pattern is nearest to p ^ (p >> 1) in Hamming
    distance (first on ties), as fixed_dimensional_encoding.cc does.
    """
    x = x.astype(np.float64)
    k = simhash[0].shape[1]
    out = []
    for s, p in zip(simhash, proj):
        bits = (x @ s > 0).astype(np.int64)
        part = np.zeros(len(x), np.int64)
        for j in range(k):
            part = (part << 1) + (bits[:, j] ^ (part & 1))
        pattern = (bits << np.arange(k - 1, -1, -1)).sum(1)
        y = x @ p
        block = np.zeros((2**k, y.shape[1]))
        np.add.at(block, part, y)
        count = np.bincount(part, minlength=2**k)
        if document:
            for b in range(2**k):
                if count[b]:
                    block[b] /= count[b]
                else:
                    dist = [bin(int(c) ^ (b ^ (b >> 1))).count("1") for c in pattern]
                    block[b] = y[int(np.argmin(dist))]
        out.append(block.ravel())
    return np.concatenate(out)


def check(setting: str, docs: Items, queries: Items, avail: dict) -> list[dict]:
    """Output dims of every library; latefold's and muvera-python's encodings vs reference_fde
    using each library's own random matrices (muvfde does not expose its matrices)."""
    R, k, dp = SETTINGS[setting]
    rows = []
    for method in METHODS:
        if avail[method]:
            continue
        enc_d, enc_q = encoder(method, setting)
        d_fde, q_fde = enc_d(docs, 1), enc_q(queries, 1)
        row = {"setting": setting, "method": method, "expected_dim": R * 2**k * dp,
               "dim": int(d_fde.shape[1]), "query_dim": int(q_fde.shape[1])}
        if method == "latefold":
            import latefold as lf

            f = lf.FDE(docs.tokens.shape[1], R, k, seed=1, projection_type="ams_sketch",
                       projection_dimension=dp)
            mats = ([f.simhash_matrix(r) for r in range(R)],
                    [f.projection_matrix(r) for r in range(R)])
        elif method == "muvera-python":
            from muvera import helper

            d = docs.tokens.shape[1]
            mats = ([helper.simhash_matrix_from_seed(d, k, 1 + r) for r in range(R)],
                    [helper.ams_projection_matrix_from_seed(d, dp, 1 + r) for r in range(R)])
        else:
            mats = None
        if mats:
            err_d = [np.abs(e - reference_fde(x, *mats, True)).max()
                     for e, x in zip(d_fde, docs.arrays)]
            err_q = [np.abs(e - reference_fde(x, *mats, False)).max()
                     for e, x in zip(q_fde, queries.arrays)]
            row.update(max_err_docs=float(max(err_d)), max_err_queries=float(max(err_q)),
                       docs_differing=f"{sum(e > 1e-4 for e in err_d)}/{len(docs)}")
        dims_ok = row["dim"] == row["query_dim"] == row["expected_dim"]
        if mats is None:
            row["vs_reference"] = "dims only" if dims_ok else "WRONG DIM"
        else:
            match = max(row["max_err_docs"], row["max_err_queries"]) <= 1e-4
            row["vs_reference"] = "match" if dims_ok and match else "DIFFERS"
        row["ok"] = row["vs_reference"] in ("match", "dims only")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- quality


def cutoffs(n_docs: int):
    """(ks, Ns): recall@10 and @100 among the top 100/500/1000 (capped at n_docs); sets with
    at most 100 docs (limit-small: 46) use k = 10 among the top 10/20/30."""
    if n_docs <= 100:
        return (10,), (10, 20, 30)
    return (10, 100), tuple(sorted({min(n, n_docs) for n in (100, 500, 1000)}))


def quality(name, docs, queries, gt, exact, setting, method, seed) -> dict:
    """Recall of the exact top-k among the top-N FDE candidates, and the mean per-query
    Pearson correlation of FDE inner products with MaxSim."""
    enc_d, enc_q = encoder(method, setting, seed)
    scores = enc_q(queries, None) @ enc_d(docs, None).T
    order = np.argsort(-scores, axis=1, kind="stable")
    rows = np.arange(len(queries))[:, None]
    ks, ns = cutoffs(len(docs))
    out = {}
    for n in ns:
        hit = np.zeros(scores.shape, bool)
        hit[rows, order[:, :n]] = True
        for k in ks:
            out[f"R@{k}/N{n}"] = float(hit[rows, gt[:, :k]].mean())
    a = scores - scores.mean(1, keepdims=True)
    b = exact - exact.mean(1, keepdims=True)
    out["corr"] = float(((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))).mean())
    return out


def run_quality(args, avail) -> list[dict]:
    import latefold as lf

    rows = []
    for name in ("scifact-dev-128", "netflix-dev-128", "limit-small-128"):
        if not (DATA_DIR / name / "docs_tokens.npy").exists():
            log(f"skip {name}: not found under {DATA_DIR}")
            continue
        docs, queries, gt = real(name, args.queries)
        exact = lf.maxsim(queries.mv, docs.mv)
        assert (exact.argmax(1) == gt[:, 0]).mean() > 0.99, "ground truth does not match MaxSim"
        for setting in SETTINGS:
            for method in METHODS:
                if avail[method]:
                    continue
                seeds = SEEDS if method == "latefold" else SEEDS[:1]
                runs = [quality(name, docs, queries, gt, exact, setting, method, s) for s in seeds]
                row = {"dataset": name, "setting": setting, "method": method, "seeds": list(seeds),
                       "n_docs": len(docs), "n_queries": len(queries), "runs": runs}
                for key in runs[0]:
                    v = [r[key] for r in runs]
                    row[key] = float(np.mean(v))
                    row[key + "_spread"] = float(max(v) - min(v))
                rows.append(row)
                log(f"  {name:16s} {setting:13s} {method:14s} "
                    + " ".join(f"{k}={row[k]:.3f}" for k in runs[0]))
    return rows


def print_quality(rows: list[dict]) -> None:
    for name in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == name]
        keys = [k for k in sub[0]["runs"][0]]
        table = []
        for r in sub:
            cells = {"setting": r["setting"], "method": r["method"]}
            for k in keys:
                cells[k] = (f"{r[k]:.3f}±{r[k + '_spread'] / 2:.3f}" if len(r["runs"]) > 1
                            else f"{r[k]:.3f}")
            table.append(cells)
        print(f"\n{name}: {sub[0]['n_docs']} docs, {sub[0]['n_queries']} queries "
              f"(latefold: mean ± half the range over seeds {list(SEEDS)})")
        h.print_table(table, [("setting", "setting"), ("method", "method")]
                      + [(k, k) for k in keys])


# --------------------------------------------------------------------------- throughput


def run_worker(args) -> dict:
    """Time encode_documents / encode_queries of every method at `args.worker` threads."""
    threads, avail = args.worker, available()
    h.touch_memory()
    sets = [("synthetic", "docs", synthetic(args.docs))]
    for name in ("scifact-dev-128", "netflix-dev-128"):
        if (DATA_DIR / name / "docs_tokens.npy").exists():
            docs, queries, _ = real(name)
            sets[len(sets) - 1:len(sets) - 1] = []
            sets += [(name, "docs", docs), (name, "queries", queries)]
    rows = []
    with h.limit_threads(threads):
        for name, kind, items in sets:
            for setting in SETTINGS:
                for method in METHODS:
                    if avail[method]:
                        continue
                    fn = encoder(method, setting)[kind == "queries"]
                    # Slow methods encode only the first items (at least 200), enough for
                    # `target` seconds a call; fast calls are repeated more often.
                    probe = items.head(min(len(items), 50))
                    t0 = time.perf_counter()
                    fn(probe, threads)
                    per_item = max((time.perf_counter() - t0) / len(probe), 1e-9)
                    n = min(len(items), max(200, int(args.target / per_item)))
                    sub = items.head(n)
                    repeats = min(50, max(args.repeats, int(args.target / (n * per_item))))
                    h.wait_idle(BUSY, args.max_wait)
                    _, stats = h.measure(lambda fn=fn, sub=sub: fn(sub, threads), repeats=repeats,
                                         max_seconds=2 * args.target)
                    rows.append({"dataset": name, "kind": kind, "setting": setting,
                                 "method": method, "threads": threads, "n_items": n,
                                 "tokens_per_item": float(sub.offsets[-1] / n), **stats,
                                 "items_per_s": n / stats["best_s"]})
                    log(f"  t={threads} {name:16s} {kind:7s} {setting:13s} {method:14s} "
                        f"{rows[-1]['items_per_s']:10,.0f}/s  (n={n})")
        pools = h.thread_pools()
    return {"rows": rows, "thread_pools": pools}


def pivot_throughput(rows: list[dict]) -> list[dict]:
    """One row per (dataset, kind, setting, threads): items/s of each method, and latefold's
    items/s / the fastest peer's."""
    table = {}
    for r in rows:
        key = (r["dataset"], r["kind"], r["setting"], r["threads"])
        t = table.setdefault(key, {"dataset": r["dataset"], "kind": r["kind"],
                                   "setting": r["setting"], "threads": r["threads"], "other": 0.0})
        t[r["method"]] = r["items_per_s"]
        t["other"] = max(t["other"], r["other_load"] or 0.0)
        if r["method"] == "latefold":
            t["cpu"] = r["cpu_util"]
    for t in table.values():
        peers = [t[m] for m in METHODS[1:] if m in t]
        t["ratio"] = t["latefold"] / max(peers) if peers and "latefold" in t else None
    return list(table.values())


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    facts = h.worker_or_machine(args, run_worker, log)
    if facts is None:
        return 0
    avail = available()
    if avail["latefold"]:
        log(f"latefold unavailable: {avail['latefold']} (pip install .)")
        return 1
    versions = {d: h.package_version(d) for d in ("latefold", "muvfde", "muvera-python", "numpy")}

    checks, quality_rows = [], []
    net = DATA_DIR / "netflix-dev-128"
    if (net / "docs_tokens.npy").exists():  # short docs: many empty partitions to fill
        docs, queries, _ = real("netflix-dev-128", 30)
        for setting in SETTINGS:
            checks += check(setting, docs.head(30), queries, avail)
    if not args.skip_quality:
        log("--- quality")
        quality_rows = run_quality(args, avail)

    rows, pools = [], {}
    log("--- throughput")
    for t, out in h.run_workers(__file__, argv, args.threads, BUSY, args.max_wait, log).items():
        rows += out["rows"]
        pools[str(t)] = out["thread_pools"]

    for m, why in avail.items():
        if why:
            print(f"skipped {m}: {why}")
    print("\ncorrectness (encodings vs the reference algorithm in numpy, with each library's "
          "own random matrices; 30 netflix docs and queries)")
    h.print_table(checks, [("setting", "setting"), ("method", "method"), ("dim", "dim"),
                           ("query_dim", "query dim"), ("max_err_docs", "max err docs"),
                           ("max_err_queries", "max err queries"),
                           ("docs_differing", "docs differing"), ("vs_reference", "result")])
    if quality_rows:
        print_quality(quality_rows)
    pivot = pivot_throughput(rows)
    print("\nthroughput (items/s, best of runs; 'ratio' = latefold / fastest peer)")
    h.print_table(pivot, [("dataset", "dataset"), ("kind", "kind"), ("setting", "setting"),
                          ("threads", "thr"), *[(m, m) for m in METHODS], ("ratio", "ratio"),
                          ("cpu", "latefold cpu"), ("other", "other")])
    path = h.write_json(args.out, {
        "benchmark": "fde", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": facts, "versions": versions,
        "config": {k: v for k, v in vars(args).items() if k != "worker"},
        "settings": {k: dict(zip(("R", "k", "d_proj"), v)) for k, v in SETTINGS.items()},
        "skipped": {m: why for m, why in avail.items() if why},
        "thread_pools": pools, "checks": checks, "quality": quality_rows,
        "throughput": rows, "throughput_table": pivot,
    })
    print(f"wrote {path}")
    if any(t["other"] > BUSY for t in pivot):
        print(f"warning: some timings ran while other processes used > {BUSY} cores "
              "(column 'other'); rerun on an idle machine")
    return 0 if all(c["ok"] for c in checks if c["method"] == "latefold") else 1


if __name__ == "__main__":
    sys.exit(main())
