"""MaxSim compute tiers: float32, float16, bfloat16 and int8 document storage on every kernel path,
beside numpy, PyTorch (float32 and bfloat16) and maxsim-cpu, as fractions of each path's ceiling;
and the quality of the quantized storages (top-10 agreement with float32, score errors, per-token
against per-dimension int8 scales; also on limit-small, quality only).

    python bench/bench_tiers.py                       # synthetic + shared real sets, 1 and 2 threads
    python bench/bench_tiers.py --quick               # fewer documents and repeats
    python bench/bench_tiers.py --large-gb 2          # + one query over >= 2 GB of tokens (bandwidth)

Run it with an interpreter that has the peers (torch, maxsim-cpu) to time them too; latefold is
taken from the source tree when it is not installed. Each thread count runs in a fresh process
(thread-pool variables set, numpy/torch limited again). Ceilings are measured in the same run:
FMA with bench/peak_fma.c, VNNI / AVX512-BF16 / AMX with bench/peak_tiers.c, DRAM read bandwidth
with a numpy sum over 2 GiB. Timings interleave the methods and take the best of the repeats.
Writes bench/results/tiers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "python"))

import _harness as h  # noqa: E402

DATA = Path(os.environ.get("LATEFOLD_DATA", BENCH.parent.parent / "shared" / "data"))
REAL = ("scifact-dev-128", "netflix-dev-128")
# Sets measured for quality only: limit-small's 46 documents are too few to time; all of its
# 1,000 queries are used.
QUALITY_ONLY = {"limit-small-128": 1000}
# Storage -> the paths that have a kernel of their own for it (best last).
PATHS = {"float32": ["avx2", "avx512"], "float16": ["avx512"], "int8": ["avx2", "avx2vnni", "avx512", "avx512vnni", "amx"],
         "bfloat16": ["avx512", "avx512bf16", "amx"]}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--docs", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--large-gb", type=float, default=0.0, help="GB of tokens for the bandwidth case (0: skip)")
    p.add_argument("--out", default="tiers.json")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.docs, a.repeats = 1000, 3
    return a


def synthetic(n_docs, rng):
    lengths = rng.integers(60, 141, n_docs)
    x = rng.standard_normal((int(lengths.sum()), 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((32 * 32, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, np.r_[0, np.cumsum(lengths)].astype(np.int64), q, np.arange(0, 32 * 32 + 1, 32, dtype=np.int64)


def real(name, n_queries=32):
    f = DATA / name
    q_off = np.load(f / "queries_offsets.npy").astype(np.int64)[: n_queries + 1]
    queries = np.load(f / "queries_tokens.npy")[: q_off[-1]].astype(np.float32)
    return (np.load(f / "docs_tokens.npy").astype(np.float32), np.load(f / "docs_offsets.npy").astype(np.int64),
            queries, q_off)


def best_time(fn, repeats):
    fn()
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- peers


def peers(docs, offsets, q_tokens, q_off, threads):
    """name -> callable(n_queries) scoring the first n queries against every document."""
    out = {}
    lengths = np.diff(offsets)
    n = len(lengths)

    def numpy_chunked(nq):
        qs = q_tokens[: q_off[nq]]
        owner = np.repeat(np.arange(nq), np.diff(q_off[: nq + 1]))
        res = np.empty((nq, n), np.float32)
        for s in range(0, n, 256):
            e = min(n, s + 256)
            sims = qs @ docs[offsets[s] : offsets[e]].T
            best = np.maximum.reduceat(sims, offsets[s:e] - offsets[s], axis=1)
            res[:, s:e] = np.add.reduceat(best, np.r_[0, np.cumsum(np.bincount(owner))[:-1]], axis=0)
        return res

    out["numpy"] = numpy_chunked
    torch, _ = h.try_import("torch")
    if torch is not None:
        width = int(lengths.max())
        pos = np.arange(width)[None, :]
        valid = pos < lengths[:, None]
        rows = np.where(valid, offsets[:-1, None] + pos, 0)
        pad = torch.from_numpy(~valid)
        for name, dtype in (("torch-f32", torch.float32), ("torch-bf16", torch.bfloat16)):
            padded = torch.from_numpy(docs)[torch.from_numpy(rows)].to(dtype)
            padded[pad] = 0

            def run(nq, padded=padded, dtype=dtype):
                q = torch.from_numpy(q_tokens[: q_off[nq]]).to(dtype)
                owner = torch.from_numpy(np.repeat(np.arange(nq), np.diff(q_off[: nq + 1])))
                member = torch.zeros(q.shape[0], nq)
                member[torch.arange(q.shape[0]), owner] = 1.0
                res = torch.empty(n, nq)
                with torch.inference_mode():
                    for s in range(0, n, 256):
                        e = min(n, s + 256)
                        sims = torch.matmul(padded[s:e], q.T).float()
                        sims.masked_fill_(pad[s:e, :, None], float("-inf"))
                        res[s:e] = sims.amax(dim=1) @ member
                return res

            out[name] = run
    mc, _ = h.try_import("maxsim_cpu")
    if mc is not None:
        views = [docs[offsets[i] : offsets[i + 1]] for i in range(n)]

        def run_mc(nq):
            return [mc.maxsim_scores_variable(q_tokens[q_off[i] : q_off[i + 1]], views) for i in range(nq)]

        out["maxsim-cpu"] = run_mc
    return out


# --------------------------------------------------------------------------- worker


def worker(args):
    import latefold as lf

    threads = args.worker
    rng = np.random.default_rng(0)
    sets = {"synthetic": synthetic(args.docs, rng)}
    for name in REAL:
        if (DATA / name).exists():
            sets[name] = real(name)
    supported = lf.simd_info()["supported"]
    rows = []
    for set_name, (x, offsets, q_tokens, q_off) in sets.items():
        floats = lf.MultiVectors(x, offsets)
        stores = {"float32": floats, "float16": lf.quantize(floats, "float16"),
                  "int8": lf.quantize(floats, "int8"), "bfloat16": lf.quantize(floats, "bfloat16")}
        queries = lf.MultiVectors(q_tokens, q_off)
        methods = {}
        for storage, paths in PATHS.items():
            for path in paths:
                if path in supported:
                    methods[f"latefold {storage} {path}"] = (storage, path)
        peer = peers(x, offsets, q_tokens, q_off, threads) if threads is not None else {}
        n_docs, tokens = len(floats), int(offsets[-1])
        q_tokens_per = float(np.diff(q_off).mean())
        times = {}
        with h.limit_threads(threads):
            for rep in range(args.repeats):  # interleaved: every method once per round
                for nq in (1, 32):
                    for label, (storage, path) in methods.items():
                        lf.set_simd(path)
                        q = queries[:nq]
                        t = _timed(lambda: lf.maxsim(q, stores[storage], threads=threads))
                        times[(label, nq)] = min(times.get((label, nq), 1e9), t)
                    lf.set_simd("best")
                    for label, fn in peer.items():
                        if rep >= 2 and label == "numpy" and nq == 32:
                            continue
                        t = _timed(lambda: fn(nq))
                        times[(label, nq)] = min(times.get((label, nq), 1e9), t)
        for (label, nq), t in times.items():
            rows.append({"set": set_name, "threads": threads, "queries": nq, "method": label,
                         "docs_per_s": nq * n_docs / t, "gflops": 2 * nq * q_tokens_per * tokens * 128 / t / 1e9})
    quality = []
    if threads == 1:
        for name, n_queries in QUALITY_ONLY.items():
            if (DATA / name).exists():
                sets[name] = real(name, n_queries)
        for set_name, (x, offsets, q_tokens, q_off) in sets.items():
            quality.append(measure_quality(lf, set_name, x, offsets, q_tokens, q_off))
    return {"rows": rows, "quality": quality, "large": large_case(lf, args, threads)}


def per_dimension_int8(x):
    """int8 with one scale per dimension (over the corpus) instead of per token."""
    scale = np.abs(x).max(axis=0) / 127
    return np.rint(x / scale).clip(-127, 127) * scale


def measure_quality(lf, name, x, offsets, q_tokens, q_off):
    floats = lf.MultiVectors(x, offsets)
    queries = lf.MultiVectors(q_tokens, q_off)
    exact = lf.maxsim(queries, floats)
    top = np.argsort(-exact, axis=1)[:, :10]
    out = {"set": name, "queries": len(queries)}
    candidates = {"int8": lf.maxsim(queries, lf.quantize(floats, "int8")),
                  "bfloat16": lf.maxsim(queries, lf.quantize(floats, "bfloat16")),
                  "float16": lf.maxsim(queries, lf.quantize(floats, "float16")),
                  "int8 per-dimension (numpy model)": lf.maxsim(queries, lf.MultiVectors(
                      per_dimension_int8(x).astype(np.float32), offsets))}
    for label, scores in candidates.items():
        got = np.argsort(-scores, axis=1)[:, :10]
        agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, got)])
        rel = np.abs(scores - exact) / np.abs(exact).max(axis=1, keepdims=True)
        out[label] = {"top10_agreement": float(agree), "rel_error_p50": float(np.median(rel)),
                      "rel_error_p99": float(np.quantile(rel, 0.99)), "rel_error_max": float(rel.max())}
    return out


def large_case(lf, args, threads):
    """One query over >= large_gb of int8 and float16 tokens: docs/s and GB/s read."""
    if not args.large_gb:
        return []
    rng = np.random.default_rng(1)
    out = []
    q = rng.standard_normal((32, 128)).astype(np.float32)
    for storage, size in (("int8", 1), ("float16", 2)):
        rows = int(args.large_gb * 1e9 / (128 * size))
        lengths = np.full(rows // 100, 100)
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        if storage == "int8":
            tokens = rng.integers(-127, 128, (int(offsets[-1]), 128), dtype=np.int8)
            docs = lf.MultiVectors(tokens, offsets, scales=rng.uniform(0.001, 0.01, len(tokens)).astype(np.float32))
        else:
            tokens = np.empty((int(offsets[-1]), 128), np.float16)
            for s in range(0, len(tokens), 1 << 20):
                tokens[s : s + (1 << 20)] = rng.standard_normal((min(1 << 20, len(tokens) - s), 128))
            docs = lf.MultiVectors(tokens, offsets)
        t = best_time(lambda: lf.maxsim(q, docs, threads=threads), 3)
        out.append({"storage": storage, "threads": threads, "gb": tokens.nbytes / 1e9, "docs_per_s": len(docs) / t,
                    "gb_per_s": tokens.nbytes / t / 1e9, "path": lf.simd_info()["active"]})
        del docs, tokens
    return out


# --------------------------------------------------------------------------- parent


def ceilings(threads):
    """Per-core peaks (peak_fma.c, peak_tiers.c) and the DRAM read bandwidth (numpy)."""
    out = {}
    tmp = Path("/tmp")
    for src, flags in (("peak_fma.c", ["-mavx512f", "-mfma", "-pthread"]),
                       ("peak_tiers.c", ["-mavx512f", "-mavx512vnni", "-mavx512bf16", "-mavxvnni", "-mamx-tile", "-mamx-int8",
                                         "-mamx-bf16"])):
        exe = tmp / src[:-2]
        try:
            subprocess.run(["cc", "-O3", *flags, str(BENCH / src), "-o", str(exe)], check=True, capture_output=True)
            text = subprocess.run([str(exe), str(max(threads))], check=True, capture_output=True, text=True).stdout
            out.update(json.loads(text.strip().splitlines()[-1]))
        except (OSError, subprocess.CalledProcessError, ValueError) as error:
            out[src] = f"not measured: {error}"
    a = np.ones(2**28, np.float64)  # 2 GiB
    a.sum()
    t = min(_timed(a.sum) for _ in range(3))
    out["dram_read_gb_s_1t"] = a.nbytes / t / 1e9
    return out


def main():
    args = parse_args()
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(args)))
        return
    peaks = ceilings(args.threads)
    results = {"machine": h.machine_facts(), "ceilings": peaks, "rows": [], "quality": [], "large": []}
    for t in args.threads:
        env = h.thread_env(t, dict(os.environ))
        argv = [sys.executable, __file__, "--worker", str(t), "--docs", str(args.docs), "--repeats", str(args.repeats),
                "--large-gb", str(args.large_gb)]
        text = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
        part = json.loads(text.split("RESULT ", 1)[1])
        for key in ("rows", "quality", "large"):
            results[key] += part[key]
    # Ratios to float32 on the same set, threads and batch; fractions of the path's ceiling.
    # int8 and bfloat16 on avx2 / avx512 widen to int16 (vpmaddwd) or float32 (FMA): their
    # ceiling is taken as the FMA peak of the register width.
    ceiling = {"float32 avx2": peaks.get("avx2_gflops"), "float32 avx512": peaks.get("avx512_gflops"),
               "float16": peaks.get("avx512_gflops"), "int8 avx2 ": peaks.get("avx2_gflops"),
               "int8 avx512 ": peaks.get("avx512_gflops"), "bfloat16 avx512 ": peaks.get("avx512_gflops"),
               "int8 avx2vnni": peaks.get("avx_vnni_gops"),
               "int8 avx512vnni": peaks.get("vnni_gops"), "bfloat16 avx512bf16": peaks.get("bf16_gflops"),
               "int8 amx": peaks.get("amx_int8_gops"), "bfloat16 amx": peaks.get("amx_bf16_gflops")}
    for r in results["rows"]:
        base = next((b for b in results["rows"] if b["set"] == r["set"] and b["threads"] == r["threads"]
                     and b["queries"] == r["queries"] and b["method"] == "latefold float32 avx512"), None)
        r["vs_float32"] = r["docs_per_s"] / base["docs_per_s"] if base else None
        key = next((k for k in ceiling if (r["method"] + " ").startswith("latefold " + k)), None)
        peak = ceiling.get(key) if key else None
        r["of_ceiling"] = r["gflops"] / (peak * r["threads"]) if isinstance(peak, (int, float)) else None
    for r in results["large"]:
        r["of_dram"] = r["gb_per_s"] / (peaks["dram_read_gb_s_1t"] * r["threads"])
    h.print_table(results["rows"], [("set", "set"), ("threads", "t"), ("queries", "q"), ("method", "method"),
                                    ("docs_per_s", "docs/s"), ("vs_float32", "x f32"), ("of_ceiling", "of peak")])
    print(json.dumps({"ceilings": peaks, "large": results["large"]}, indent=1))
    for q in results["quality"]:
        print(json.dumps(q))
    h.write_json(args.out, results)


if __name__ == "__main__":
    main()
