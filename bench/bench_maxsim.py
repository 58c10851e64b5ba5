"""Exact MaxSim throughput: latefold vs numpy, maxsim-cpu and PyTorch on CPU.

    python bench/bench_maxsim.py                 # full run (a few minutes on 2 cores)
    python bench/bench_maxsim.py --quick         # smaller synthetic set, fewer repeats
    python bench/bench_maxsim.py --threads 1 --skip-real --docs 2000

For each thread count a fresh process is started with every thread-pool
variable set (OMP/OpenBLAS/MKL/Rayon), and inside it numpy's BLAS and torch
are limited again (threadpoolctl, torch.set_num_threads); latefold gets
threads=t. Each process scores every dataset in float32 and float16 doc
storage with every available method, checks the scores against a float64
reference on a subset of docs, and reports its timings as JSON to the parent,
which adds the FMA-peak fraction and the ratio to the fastest peer, prints a
table and writes bench/results/maxsim.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

# The real datasets: $LATEFOLD_DATA, else ../shared/data beside the repository.
DATA_DIR = Path(os.environ.get("LATEFOLD_DATA", h.BENCH_DIR.parent.parent / "shared" / "data"))
REAL_SETS = ("scifact-dev-128", "netflix-dev-128")
CHECK_DOCS = 300     # docs checked against the float64 reference
TOLERANCE = 1e-3     # max abs score error accepted (float32 accumulation over d=128)
TOPK = 10
BUSY = 0.2           # cores used by other processes above which a timing is flagged


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--docs", type=int, default=None, help="synthetic docs (default 10000)")
    p.add_argument("--queries", type=int, default=None, help="synthetic queries (default 8)")
    p.add_argument("--real-queries", type=int, default=None,
                   help="queries taken from each real set (default 32)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    p.add_argument("--methods", nargs="+", default=None, help="subset of methods to run")
    p.add_argument("--quick", action="store_true", help="2000 docs, fewer queries and repeats")
    p.add_argument("--skip-real", action="store_true", help="synthetic data only")
    p.add_argument("--max-wait", type=float, default=30.0,
                   help="seconds to wait for other processes to go idle before each timing")
    p.add_argument("--out", default="maxsim.json", help="file name under bench/results/")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    args.docs = args.docs or (2000 if quick else 10000)
    args.queries = args.queries or (4 if quick else 8)
    args.real_queries = args.real_queries or (8 if quick else 32)
    args.repeats = args.repeats or (2 if quick else 3)
    return args


# --------------------------------------------------------------------------- data


def synthetic(n_docs: int, n_queries: int, seed: int = 0, d: int = 128, q_len: int = 32):
    """Random L2-normalised tokens: docs of 80..120 tokens, queries of `q_len` tokens."""
    rng = np.random.default_rng(seed)
    offsets = np.zeros(n_docs + 1, np.int64)
    offsets[1:] = np.cumsum(rng.integers(80, 121, n_docs))

    def unit(rows):
        x = rng.standard_normal((rows, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    q_off = np.arange(n_queries + 1, dtype=np.int64) * q_len
    return "synthetic", unit(int(offsets[-1])), offsets, unit(n_queries * q_len), q_off


def real(name: str, n_queries: int):
    """A set from shared/data (float16 tokens); the first `n_queries` queries."""
    folder = DATA_DIR / name
    q_off = np.load(folder / "queries_offsets.npy")[: n_queries + 1].astype(np.int64)
    queries = np.load(folder / "queries_tokens.npy")[: q_off[-1]].astype(np.float32)
    docs = np.load(folder / "docs_tokens.npy")
    return name, docs, np.load(folder / "docs_offsets.npy").astype(np.int64), queries, q_off


def workloads(args):
    """Yield Workloads: each dataset with float32 and with float16 doc storage."""
    from _maxsim_peers import Workload

    sets = [lambda: synthetic(args.docs, args.queries)]
    if not args.skip_real:
        for name in REAL_SETS:
            if (DATA_DIR / name / "docs_tokens.npy").exists():
                sets.append(lambda name=name: real(name, args.real_queries))
            else:
                log(f"skip {name}: not found under {DATA_DIR}")
    for load in sets:
        name, docs, offsets, queries, q_off = load()
        for dtype in (np.float32, np.float16):
            tokens = np.ascontiguousarray(docs, dtype=dtype)
            yield Workload(name, tokens, offsets, queries, q_off)
        del docs, tokens


# --------------------------------------------------------------------------- worker


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def score_error(result, w, ref, check_ids, full=None):
    """Max abs difference to the float64 reference (top-k: to the exact full top-k)."""
    if isinstance(result, tuple):  # (scores, ids) of a top-k method
        if full is None:
            return None
        scores, ids = result
        want = -np.sort(-full, axis=1)[:, :TOPK]
        picked = np.take_along_axis(full, ids.astype(np.int64), axis=1)
        return float(max(np.abs(scores - want).max(), np.abs(scores - picked).max()))
    result = np.asarray(result)
    if result.shape != (w.n_queries, w.n_docs):
        return float("inf")
    return float(np.abs(result[:, check_ids].astype(np.float64) - ref).max())


def run_worker(args) -> dict:
    """Measure every (dataset, dtype, method) at `args.worker` threads; return JSON rows."""
    from _maxsim_peers import METHODS, Unavailable, reference_scores

    threads = args.worker
    methods = {k: v for k, v in METHODS.items() if not args.methods or k in args.methods}
    rows, notes = [], {}
    with h.limit_threads(threads):
        for w in workloads(args):
            rng = np.random.default_rng(1)
            n_check = min(CHECK_DOCS, w.n_docs)
            check_ids = np.sort(rng.choice(w.n_docs, n_check, replace=False))
            ref = reference_scores(w, check_ids)
            full = None  # exact float32 scores of all docs, for checking top-k
            for name, make in methods.items():
                try:
                    run = make(w, threads)
                except Unavailable as exc:
                    notes[name] = str(exc)
                    continue
                t0 = time.perf_counter()
                h.wait_idle(BUSY, args.max_wait)
                result, stats = h.measure(run, repeats=args.repeats)
                err = score_error(result, w, ref, check_ids, full)
                if full is None and not isinstance(result, tuple) and err <= TOLERANCE:
                    full = np.asarray(result)
                pairs = w.n_docs * w.n_queries
                rows.append({
                    "dataset": w.dataset, "dtype": w.dtype, "threads": threads,
                    "method": name, "n_docs": w.n_docs, "n_queries": w.n_queries,
                    "doc_tokens": int(w.docs.shape[0]), "query_tokens": int(w.queries.shape[0]),
                    "dim": int(w.docs.shape[1]), **stats,
                    "docs_per_s": pairs / stats["best_s"],
                    "gflops": w.flops() / stats["best_s"] * 1e-9,
                    "max_abs_err": err, "ok": err is not None and err <= TOLERANCE,
                })
                rows[-1]["check"] = "ok" if rows[-1]["ok"] else "WRONG"
                del run, result
                log(f"  t={threads} {w.dataset:16s} {w.dtype} {name:16s} "
                    f"{stats['best_s'] * 1e3:8.1f} ms  err {err if err is not None else '-'}"
                    f"  ({time.perf_counter() - t0:.1f} s)")
        pools = h.thread_pools()
    return {"threads": threads, "rows": rows, "skipped": notes, "thread_pools": pools}


# --------------------------------------------------------------------------- parent


def annotate(rows: list[dict], peak: dict | None) -> None:
    """Add peak_frac (of measured AVX-512 FMA peak per core x threads) and vs_best_peer."""
    per_core = (peak or {}).get("avx512_gflops") or (peak or {}).get("avx2_gflops")
    best = {}
    for r in rows:
        key = (r["dataset"], r["dtype"], r["threads"])
        if not r["method"].startswith("latefold") and r["ok"]:
            best[key] = max(best.get(key, 0.0), r["docs_per_s"])
    for r in rows:
        r["peak_frac"] = r["gflops"] / (per_core * r["threads"]) if per_core else None
        b = best.get((r["dataset"], r["dtype"], r["threads"]))
        r["vs_best_peer"] = r["docs_per_s"] / b if b else None


def main(argv=None) -> int:
    args = parse_args(argv)
    facts = h.worker_or_machine(args, run_worker, log)
    if facts is None:
        return 0
    load = h.wait_idle(BUSY, args.max_wait)
    if load is not None and load > BUSY:
        log(f"warning: other processes keep {load:.1f} cores busy; timings will suffer")
    peak = h.measure_peak(max(args.threads))
    log(f"FMA peak per core: {json.dumps(peak) if peak else 'unknown'}")
    versions = {d: h.package_version(d) for d in ("latefold", "numpy", "maxsim-cpu", "torch",
                                                  "threadpoolctl")}

    for t in args.threads:
        if t > (facts["usable_cpus"] or t):
            log(f"warning: {t} threads > {facts['usable_cpus']} usable CPUs")
    rows, skipped, pools = [], {}, {}
    for t, out in h.run_workers(__file__, argv, args.threads, log=log).items():
        rows += out["rows"]
        skipped.update(out["skipped"])
        pools[str(t)] = out["thread_pools"]

    annotate(rows, peak)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    h.print_table(rows, [
        ("dataset", "dataset"), ("dtype", "dtype"), ("threads", "thr"), ("method", "method"),
        ("docs_per_s", "docs/s"), ("gflops", "GFLOP/s"), ("peak_frac", "of peak"),
        ("vs_best_peer", "vs best peer"), ("cpu_util", "cpu"), ("other_load", "other"),
        ("max_abs_err", "max err"), ("check", "check"),
    ])
    path = h.write_json(args.out, {
        "benchmark": "maxsim",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": facts, "fma_peak": peak, "versions": versions,
        "config": {k: v for k, v in vars(args).items() if k != "worker"},
        "thread_pools": pools, "skipped": skipped, "results": rows,
    })
    print(f"wrote {path}")
    busy = [r for r in rows if (r["other_load"] or 0) > BUSY]
    if busy:
        print(f"warning: {len(busy)} timings ran while other processes used > {BUSY} cores "
              "(column 'other'); rerun on an idle machine")
    bad = [r for r in rows if not r["ok"]]
    for r in bad:
        print(f"WRONG SCORES: {r['method']} {r['dataset']} {r['dtype']} t={r['threads']} "
              f"max err {r['max_abs_err']:.3g} (excluded from 'vs best peer')")
    return 1 if any(r["method"].startswith("latefold") for r in bad) else 0


if __name__ == "__main__":
    sys.exit(main())
