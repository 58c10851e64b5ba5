#!/usr/bin/env python
"""Benchmark the Stanford PLAID engine (as packaged in PyLate 1.6.0) on precomputed token vectors.

Builds a ``pylate.indexes.stanford_plaid.StanfordPLAID`` index over a data folder's documents,
then searches every query one at a time with k = 10 for a sweep of PLAID search settings
(ncells, centroid_score_threshold, ndocs), and reports recall@10 against the exact MaxSim
top-10, queries per second and mean latency, plus build time and index size on disk.

Usage:
    <plaid-venv>/bin/python bench/_plaid_peer.py --data ../shared/data/scifact-dev-128 \
        --out result.json [--threads 1] [--nbits 2]

Notes:
- The engine JIT-compiles C++ kernels on first use (cached under ~/.cache/torch_extensions/);
  the kernels are loaded before the build timer starts and a warm-up pass precedes each timed pass.
- Searches go through ``index.searcher.search`` one query at a time (the engine has no batched
  CPU path); PyLate's ``index(...)`` would re-read its id-mapping pickle on every call, so the
  mapping (engine id -> str(row)) is read once and converted back to row indices with a dict
  lookup inside the per-query timer.
"""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data folder (docs_tokens.npy, docs_offsets.npy, ...)")
    p.add_argument("--out", required=True, help="output JSON path")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (also OMP/MKL env)")
    p.add_argument("--nbits", type=int, default=2, choices=[1, 2, 4], help="residual bits per dimension")
    p.add_argument("--kmeans-niters", type=int, default=4)
    p.add_argument("--k", type=int, default=10, help="results per query (recall is computed @k)")
    p.add_argument(
        "--settings",
        default="1,0.5,256;2,0.5,512;2,0.45,1024;4,0.45,2048;4,0.4,4096;8,0.3,8192",
        help="semicolon-separated ncells,centroid_score_threshold,ndocs triples",
    )
    p.add_argument("--max-queries", type=int, default=0, help="use only the first N queries (0 = all)")
    p.add_argument("--warmup-queries", type=int, default=0,
                   help="queries in each warm-up pass (0 = all queries)")
    p.add_argument("--tmp", default=None, help="parent folder for the temporary index")
    p.add_argument("--keep-index", action="store_true", help="do not delete the index folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="show the engine's own build/load output")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread limits must be in the environment before numpy/torch load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(ARGS.threads)

import pylate  # noqa: E402
from pylate.indexes.stanford_plaid import StanfordPLAID  # noqa: E402
from pylate.indexes.stanford_nlp.modeling import colbert as _plaid_colbert  # noqa: E402
from pylate.indexes.stanford_nlp.search.index_storage import IndexScorer  # noqa: E402
from pylate.indexes.stanford_nlp.search.strided_tensor import StridedTensor  # noqa: E402


def load_ragged(folder: Path, prefix: str) -> list[np.ndarray]:
    tokens = np.load(folder / f"{prefix}_tokens.npy")
    offsets = np.load(folder / f"{prefix}_offsets.npy")
    return [tokens[offsets[i]:offsets[i + 1]].astype(np.float32) for i in range(len(offsets) - 1)]


def load_ground_truth(folder: Path) -> tuple[np.ndarray, str]:
    # limit-small has 46 docs, so its ground truth file is top46; others are top100.
    candidates = sorted(folder.glob("gt_maxsim_top*_ids.npy"))
    preferred = folder / "gt_maxsim_top100_ids.npy"
    path = preferred if preferred.exists() else (candidates[0] if candidates else None)
    if path is None:
        raise FileNotFoundError(f"no gt_maxsim_top*_ids.npy in {folder}")
    return np.load(path), path.name


def dir_bytes(folder: Path) -> tuple[int, dict[str, int]]:
    per_file = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            per_file[str(f.relative_to(folder))] = f.stat().st_size
    return sum(per_file.values()), per_file


def parse_settings(spec: str) -> list[tuple[int, float, int]]:
    out = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        n, t, d = part.split(",")
        out.append((int(n), float(t), int(d)))
    return out


def warm_kernels() -> float:
    """Load (JIT-compile on first ever use) the engine's CPU kernels; returns seconds taken."""
    t0 = time.perf_counter()
    IndexScorer.try_load_torch_extensions(use_gpu=False)
    StridedTensor.try_load_torch_extensions(use_gpu=False)
    if _plaid_colbert._segmented_maxsim is None:
        _plaid_colbert._segmented_maxsim = _plaid_colbert.try_load_torch_extensions(False)
    return time.perf_counter() - t0


def main() -> int:
    args = ARGS
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    data = Path(args.data)
    docs = load_ragged(data, "docs")
    queries = load_ragged(data, "queries")
    gt, gt_name = load_ground_truth(data)
    if args.max_queries:
        queries = queries[: args.max_queries]
        gt = gt[: args.max_queries]
    assert gt.shape[0] == len(queries), (gt.shape, len(queries))
    k = args.k
    if gt.shape[1] < k:
        raise ValueError(f"ground truth {gt_name} has only {gt.shape[1]} ids per query, need {k}")
    truth = [set(int(x) for x in row[:k]) for row in gt]
    dim = docs[0].shape[1]
    n_docs, n_tokens = len(docs), sum(len(d) for d in docs)
    print(f"data={data.name} docs={n_docs} tokens={n_tokens} queries={len(queries)} dim={dim} "
          f"gt={gt_name} threads={torch.get_num_threads()} nbits={args.nbits}", flush=True)

    kernel_seconds = warm_kernels()
    print(f"kernels loaded in {kernel_seconds:.1f}s", flush=True)

    tmp_parent = args.tmp or tempfile.gettempdir()
    index_folder = Path(tempfile.mkdtemp(prefix="plaid_bench_", dir=tmp_parent))
    index_name = "index"
    sink = io.StringIO()
    redirect = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(sink)
    try:
        doc_ids = [str(i) for i in range(n_docs)]
        t0 = time.perf_counter()
        with redirect:
            index = StanfordPLAID(
                index_folder=str(index_folder),
                index_name=index_name,
                override=True,
                embedding_size=dim,
                nbits=args.nbits,
                kmeans_niters=args.kmeans_niters,
                use_triton=False,
            )
            index.add_documents(documents_ids=doc_ids, documents_embeddings=docs)
        build_seconds = time.perf_counter() - t0
        total_bytes, per_file = dir_bytes(index_folder / index_name)
        searcher = index.searcher
        n_centroids = int(searcher.ranker.codec.centroids.shape[0])
        print(f"build {build_seconds:.1f}s, {total_bytes / n_docs:.0f} bytes/doc, "
              f"{n_centroids} centroids", flush=True)

        # PyLate stores string ids; map engine ids -> str(row) -> int(row) once.
        plaid_to_doc = index._load_plaid_ids_to_documents_ids()
        assert all(plaid_to_doc[i] == doc_ids[i] for i in range(n_docs)), "id mapping is not identity"
        plaid_to_row = {pid: int(did) for pid, did in plaid_to_doc.items()}

        # Sanity check: a document used as its own query must come back first.
        with redirect:
            searcher.configure(ncells=4, centroid_score_threshold=0.4, ndocs=4096)
        probe = searcher.search(docs[0], k=1)[0]
        self_hit = bool(probe and plaid_to_row[probe[0]] == 0)

        def run_pass(qs):
            lat = np.empty(len(qs))
            found = []
            start = time.perf_counter()
            for i, q in enumerate(qs):
                t = time.perf_counter()
                pids = searcher.search(q, k=k)[0]
                rows = [plaid_to_row[p] for p in pids]
                lat[i] = time.perf_counter() - t
                found.append(rows)
            return time.perf_counter() - start, lat, found

        warm_qs = queries if not args.warmup_queries else queries[: args.warmup_queries]
        results = []
        for ncells, thr, ndocs in parse_settings(args.settings):
            with redirect:
                searcher.configure(ncells=ncells, centroid_score_threshold=thr, ndocs=ndocs)
            run_pass(warm_qs)
            total, lat, found = run_pass(queries)
            recall = float(np.mean([len(set(f) & t) / k for f, t in zip(found, truth)]))
            row = {
                "ncells": ncells,
                "centroid_score_threshold": thr,
                "ndocs": ndocs,
                "recall_at_10" if k == 10 else f"recall_at_{k}": recall,
                "qps": len(queries) / total,
                "latency_ms": float(lat.mean() * 1e3),
                "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
                "latency_p95_ms": float(np.percentile(lat, 95) * 1e3),
                "mean_results": float(np.mean([len(f) for f in found])),
            }
            results.append(row)
            print(f"ncells={ncells} thr={thr} ndocs={ndocs}: recall@{k}={recall:.4f} "
                  f"qps={row['qps']:.1f} latency={row['latency_ms']:.2f}ms", flush=True)
    finally:
        if args.keep_index:
            print(f"index kept at {index_folder}")
        else:
            shutil.rmtree(index_folder, ignore_errors=True)

    out = {
        "engine": f"pylate-StanfordPLAID {pylate.__version__}",
        "data": str(data),
        "dataset": data.name,
        "n_docs": n_docs,
        "n_doc_tokens": n_tokens,
        "n_queries": len(queries),
        "dim": dim,
        "k": k,
        "ground_truth": gt_name,
        "nbits": args.nbits,
        "kmeans_niters": args.kmeans_niters,
        "n_centroids": n_centroids,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "build_seconds": build_seconds,
        "kernel_load_seconds": kernel_seconds,
        "index_bytes": total_bytes,
        "bytes_per_doc": total_bytes / n_docs,
        "bytes_per_token": total_bytes / n_tokens,
        # codes + residuals only (no centroids, IVF, metadata, id maps)
        "payload_bytes_per_doc": sum(v for f, v in per_file.items() if "codes" in f or "residuals" in f) / n_docs,
        "index_files": per_file,
        "self_query_check": self_hit,
        "search_path": "searcher.search one query at a time",
        "warmup_queries": len(warm_qs),
        "settings": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
