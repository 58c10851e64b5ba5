"""MultiVectorIndex end to end: recall@10 against exact MaxSim, nDCG@10 against qrels, queries/s
at 1 and 2 threads, build time, bytes per document and peak memory, beside exhaustive
`lf.maxsim_topk`, the hand glue a user writes today (candidate vectors in a `GraphIndex`, then
`lf.maxsim_rerank` of 200 candidates), and the PLAID engine when its peer environment exists.

    python bench/bench_index.py                         # shared sets + synthetic 10k
    python bench/bench_index.py --sets synthetic --sizes 10000 100000 --probe 0 1
    python bench/bench_index.py --sets synthetic --sizes 500000 --probe 1 --candidates mean --pool --query-ball
    python bench/bench_index.py --sets synthetic --sizes 1000000 --probe 0 1 --out index_scaling_1m.json
    python bench/bench_index.py --sets synthetic-scifact-size      # 5,183 documents x ~240 tokens
    python bench/bench_index.py --plaid-python /path/to/plaid-venv/bin/python

Data: ../shared/data (scifact-dev-128, netflix-dev-128 with label and year filters,
limit-small-128) and synthetic clustered token sets (documents of 60-140 tokens drawn around a
few of 2,000 topic directions, queries of 32 tokens around two topics; exact ground truth by
`lf.maxsim_topk`). Synthetic sets above `--stream-above` documents are generated twice in
blocks and never held whole: the index takes them block by block and moves its rows to a mapped
file whenever those in memory pass `--in-memory-gb`, the ground truth merges each block's exact
top 10, and exhaustive search is timed over the blocks (no hand glue there). `--probe` picks
stage 1's source (0: the graph, N: the centroid lists with N probes, auto: the index's
default); each is swept over its own (candidates, rerank) pairs. Writes results/index.json
(`--out`) and, with matplotlib, index_recall_qps.png and (several sizes) index_scaling.png
beside it; `--plot-only` redraws the scaling plot from results files. Queries run as one batch
per call; the first call warms up.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _harness as h
import latefold as lf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SWEEP = [(64, 16), (128, 24), (128, 32), (256, 32), (256, 48), (512, 64), (1024, 96)]
LIST_SWEEP = [(4096, 48), (4096, 96), (4096, 192), (4096, 384), (1024, 96)]
INDEX_PARAMS = {}  # parameters given to every MultiVectorIndex built (--centroid-levels)


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- data

def load_shared(name):
    d = DATA / name
    if not d.exists():
        return None
    docs = lf.MultiVectors(np.load(d / "docs_tokens.npy"), np.load(d / "docs_offsets.npy"))
    queries = lf.MultiVectors(np.load(d / "queries_tokens.npy").astype(np.float32), np.load(d / "queries_offsets.npy"))
    gt = np.load(next(d.glob("gt_maxsim_top*_ids.npy")))
    out = {"name": name, "docs": docs, "queries": queries, "truth": gt[:, :10], "filters": [None]}
    qrels = (d / "qrels.tsv").read_text().splitlines()[1:]
    if qrels:
        doc_row = {x: i for i, x in enumerate((d / "doc_ids.txt").read_text().split())}
        query_row = {x: i for i, x in enumerate((d / "query_ids.txt").read_text().split())}
        rel = {}
        for line in qrels:
            q, doc, score = line.split("\t")
            if q in query_row and doc in doc_row and float(score) > 0:
                rel.setdefault(query_row[q], {})[doc_row[doc]] = float(score)
        if rel:  # LIMIT's qrels name documents by title, not by the ids of doc_ids.txt
            out["qrels"] = rel
    if name.startswith("netflix"):
        labels, offsets = np.load(d / "doc_labels.npy"), np.load(d / "doc_labels_offsets.npy")
        names = (d / "labels.txt").read_text().split("\n")
        out["attributes"] = {"labels": [labels[offsets[i]:offsets[i + 1]] for i in range(len(docs))],
                             "year": np.load(d / "doc_year.npy").astype(np.int64)}
        drama = names.index(next(n for n in names if n.startswith("genre:") and "Drama" in n))
        out["filters"] = [None, ("label " + names[drama], lf.Filter.labels("labels").any([drama])),
                          ("year >= 2019", lf.Filter.range("year", 2019, None))]
    return out


def synthetic_blocks(n_docs, n_queries=100, dim=128, seed=0, lengths=(60, 141), block=5000, chunk=16384):
    """The clustered documents, a block at a time: (float16 tokens, offsets from 0) per block of
    `block` documents; the queries (float32 arrays) are the generator's return value. The arrays
    yielded are reused by the next block (copy what you keep): fresh memory is slow to touch on
    some machines, so the rows are made in chunks of `chunk` in buffers made once (the same
    values as drawing each block's noise in one call)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((2000, dim)).astype(np.float32)
    lengths = rng.integers(*lengths, size=n_docs)
    most = block * int(lengths.max())
    rows32, rows16 = np.empty((most, dim), np.float32), np.empty((most, dim), np.float16)
    noise64, noise32 = np.empty((chunk, dim)), np.empty((chunk, dim), np.float32)
    for start in range(0, n_docs, block):
        stop = min(n_docs, start + block)
        own = rng.integers(0, len(topics), size=(stop - start, 3))
        docs = np.repeat(np.arange(stop - start), lengths[start:stop])
        pick = own[docs, rng.integers(0, 3, size=len(docs))]
        for lo in range(0, len(docs), chunk):
            hi = min(len(docs), lo + chunk)
            x, n = rows32[lo:hi], hi - lo
            rng.standard_normal(out=noise64[:n])
            noise32[:n] = noise64[:n]
            noise32[:n] *= 0.6
            np.take(topics, pick[lo:hi], axis=0, out=x)
            x += noise32[:n]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            rows16[lo:hi] = x
        offsets = np.zeros(stop - start + 1, dtype=np.int64)
        np.cumsum(lengths[start:stop], out=offsets[1:])
        yield rows16[:len(docs)], offsets
    return synthetic_queries(topics, rng, n_queries)


def synthetic_queries(topics, rng, n_queries):
    """Queries of 32 tokens around two of the topics."""
    q = []
    for _ in range(n_queries):
        pick = topics[rng.integers(0, len(topics), size=2)][rng.integers(0, 2, size=32)]
        x = pick + 0.6 * rng.standard_normal(pick.shape).astype(np.float32)
        q.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return q


def synthetic(n_docs, n_queries=100, dim=128, seed=0, lengths=(60, 141), name=None, on_disk_above=None):
    """Documents around a few of 2,000 topic directions, queries around two topics, exact top 10.
    Above `on_disk_above` documents the tokens go to a memory-mapped file in the temporary
    folder (deleted at exit): the index's own copy is then the only one in memory."""
    name = name or f"synthetic-{n_docs}"
    t = time.perf_counter()
    gen = synthetic_blocks(n_docs, n_queries=n_queries, dim=dim, seed=seed, lengths=lengths)
    tokens, offsets, rows = None, [np.zeros(1, np.int64)], 0
    blocks = []
    try:
        while True:
            x, o = next(gen)
            if on_disk_above is not None and n_docs > on_disk_above:
                if tokens is None:  # rows: at most the longest length per document
                    folder = tempfile.TemporaryDirectory()
                    atexit.register(folder.cleanup)
                    tokens = np.lib.format.open_memmap(Path(folder.name) / "tokens.npy", mode="w+", dtype=np.float16,
                                                       shape=(n_docs * (lengths[1] - 1), dim))
                tokens[rows:rows + len(x)] = x
            else:
                blocks.append(x.copy())
            offsets.append(o[1:] + rows)
            rows += len(x)
    except StopIteration as end:
        queries = lf.MultiVectors(end.value)
    # On disk: read back through a read-only map, which the index's add takes without a copy.
    tokens = np.load(tokens.filename, mmap_mode="r")[:rows] if tokens is not None else np.concatenate(blocks)
    docs = lf.MultiVectors(tokens, np.concatenate(offsets))
    _, truth = lf.maxsim_topk(queries, docs, 10)
    log(f"  {name}: made with its ground truth in {time.perf_counter() - t:.1f}s")
    return {"name": name, "docs": docs, "queries": queries, "truth": truth, "filters": [None]}


def streamed(n_docs, in_memory_gb, threads, keep=None, reuse=False, storage="float16", n_queries=100, seed=0):
    """A synthetic set never held whole, built as a user builds an index larger than memory: its
    blocks go into the index one by one, and whenever the rows the index holds in memory pass
    `in_memory_gb` it is saved and loaded again with mmap=True (later rows are added beside the
    mapped ones; the last file is what the searches read; it stays in `keep` when given, with the
    queries and ground truth beside it, and `reuse` searches that again). The queries come
    first, from a stream of their own over the same topics (the smaller sets draw theirs after
    the documents); each block's exact top 10 (`lf.maxsim_topk` over its float16 rows, what the index stores) is
    merged into the ground truth and timed as the exhaustive search (at 1 thread on the first
    block only, scaled)."""
    name = f"synthetic-{n_docs}" + ("" if storage == "float16" else f"-{storage}") + "".join(
        f"-{key}{value}" for key, value in INDEX_PARAMS.items())
    topics = np.random.default_rng(seed).standard_normal((2000, 128)).astype(np.float32)  # synthetic_blocks' first draw
    queries = lf.MultiVectors(synthetic_queries(topics, np.random.default_rng([seed, 1]), n_queries))
    if keep is None:
        folder = tempfile.TemporaryDirectory()
        atexit.register(folder.cleanup)
        keep = folder.name
    Path(keep).mkdir(parents=True, exist_ok=True)
    kept = Path(keep) / f"{name}-{n_docs}.lf", Path(keep) / f"{name}-truth.npz", Path(keep) / f"{name}-build.json"
    if reuse and all(f.exists() for f in kept):  # a kept build: searched again, not rebuilt
        saved, built = np.load(kept[1]), json.loads(kept[2].read_text())
        log(f"  {name}: reusing {kept[0]}")
        return {"name": name, "index": lf.MultiVectorIndex.load(kept[0], mmap=True),
                "queries": lf.MultiVectors(saved["query_tokens"], saved["query_offsets"]), "truth": saved["truth"],
                "filters": [None], "exhaustive": {int(t): q for t, q in built["exhaustive"].items()},
                "build_row": built["build_row"]}
    best_scores = np.full((n_queries, 10), -np.inf, dtype=np.float32)
    best_ids = np.full((n_queries, 10), -1, dtype=np.int64)
    exact_s, one_thread_s, blocks, save_s, held, path = 0.0, 0.0, 0, 0.0, 0, None
    peak_reset()
    before = peak_bytes()
    index = lf.MultiVectorIndex(queries.dim, token_storage=storage, **INDEX_PARAMS)
    start, t = 0, time.perf_counter()
    for x, offsets in synthetic_blocks(n_docs, n_queries=n_queries, seed=seed):
        block = lf.MultiVectors(x, offsets)
        ids = np.arange(start, start + len(block), dtype=np.int64)
        t0 = time.perf_counter()
        scores, found = lf.maxsim_topk(queries, block, 10, threads=threads[-1])
        exact_s += time.perf_counter() - t0
        if blocks == 0 and threads[0] != threads[-1]:
            t0 = time.perf_counter()
            lf.maxsim_topk(queries, block, 10, threads=threads[0])
            one_thread_s = time.perf_counter() - t0
        merged_s = np.concatenate([best_scores, scores], axis=1)
        merged_i = np.concatenate([best_ids, np.where(found >= 0, found + start, -1)], axis=1)
        order = np.argsort(-merged_s, axis=1, kind="stable")[:, :10]
        best_scores, best_ids = np.take_along_axis(merged_s, order, 1), np.take_along_axis(merged_i, order, 1)
        index.add(block, ids=ids)
        start, blocks, held = start + len(block), blocks + 1, held + x.nbytes
        if held >= in_memory_gb * 2**30 or start == n_docs:  # the rows held so far go to a file
            t0 = time.perf_counter()
            previous, path = path, Path(keep) / f"{name}-{start}.lf"
            index.save(path)
            index = lf.MultiVectorIndex.load(path, mmap=True, verify=False)
            if previous is not None:
                previous.unlink()
            save_s, held = save_s + time.perf_counter() - t0, 0
            log(f"  {name}: {start} documents, saved and mapped ({path.stat().st_size / 2**30:.1f} GiB)")
    build = time.perf_counter() - t - exact_s - one_thread_s
    stats = index.stats()
    exhaustive = {threads[-1]: n_queries / exact_s}
    if one_thread_s:
        exhaustive[threads[0]] = n_queries / (one_thread_s * blocks)
    build_row = {"dataset": name, "method": "MultiVectorIndex mean", "build_s": build, "save_s": save_s,
                 "bytes_per_doc": stats["bytes_per_document"], "memory_fraction": stats["memory_bytes"] / stats["token_bytes"],
                 "peak_bytes": peak_bytes(), "rss_before": before, "centroids": stats["centroids"], "tokens_mapped": True}
    log(f"  {name}: built in {build:.0f}s (saves {save_s:.0f}s), exhaustive {exhaustive}")
    np.savez(kept[1], query_tokens=queries.tokens, query_offsets=queries.offsets, truth=best_ids)
    kept[2].write_text(json.dumps({"exhaustive": exhaustive, "build_row": build_row}))
    return {"name": name, "index": index, "queries": queries, "truth": best_ids, "filters": [None],
            "exhaustive": exhaustive, "build_row": build_row}


# -------------------------------------------------------------------------------------- metrics

def recall(found, truth):
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, (t >= 0).sum())
                          for f, t in zip(found, truth)]))


def ndcg10(found, qrels):
    out = []
    for q, rel in qrels.items():
        dcg = sum(rel.get(int(d), 0) / math.log2(i + 2) for i, d in enumerate(found[q][:10]))
        ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel.values(), reverse=True)[:10]))
        out.append(dcg / ideal if ideal else 0.0)
    return float(np.mean(out))


def peak_reset():
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
    except OSError:
        pass


def peak_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def timed(fn, threads):
    result, stats = h.measure(lambda: fn(threads), repeats=3, warmup=1, max_seconds=3.0)
    return result, stats["best_s"]


# -------------------------------------------------------------------------------------- runs

def exact_truth(data, f):
    if f is None:
        return data["truth"]
    index = data["exact_index"]
    return index.search(data["queries"], 10, filter=f, exact=True)[1]


def run_dataset(data, args, rows):
    if "index" in data:  # a streamed set: built already, no documents in memory
        for threads, qps in sorted(data["exhaustive"].items()):
            rows.append({"dataset": data["name"], "method": "exhaustive maxsim_topk", "threads": threads, "recall": 1.0,
                         "qps": qps, "filter": None})
        return run_index(data, args, rows, data["index"], "mean", data["exhaustive"], data["build_row"])
    name, docs, queries = data["name"], data["docs"], data["queries"]
    nq = len(queries)
    log(f"{name}: {len(docs)} documents, {docs.tokens.shape[0]} tokens, {nq} queries")
    # Exhaustive MaxSim (what every other figure is relative to; on large sets timed on 10 queries).
    few = queries if len(docs) <= 200_000 else lf.MultiVectors([np.asarray(queries[i]) for i in range(10)])
    for threads in args.threads:
        (_, ids), secs = timed(lambda t: lf.maxsim_topk(few, docs, 10, threads=t), threads)
        rows.append({"dataset": name, "method": "exhaustive maxsim_topk", "threads": threads, "recall": 1.0,
                     "qps": len(few) / secs, "filter": None})
    exhaustive = {r["threads"]: r["qps"] for r in rows if r["dataset"] == name and r["method"].startswith("exhaustive")}

    # The hand glue: mean vectors in a GraphIndex, then maxsim_rerank of 200 candidates.
    means = np.stack([d.astype(np.float32).mean(axis=0) for d in docs])
    glue = lf.GraphIndex(docs.dim)
    glue.add(means)
    qmeans = np.stack([q.mean(axis=0) for q in queries])

    def hand_glue(t):
        _, cand = glue.search(qmeans, min(200, len(docs)), ef=200, threads=t)
        scores = lf.maxsim_rerank(queries, docs, cand, threads=t)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        return np.take_along_axis(cand, order, axis=1)

    for threads in args.threads:
        found, secs = timed(hand_glue, threads)
        rows.append({"dataset": name, "method": "hand glue (mean graph + rerank 200)", "threads": threads,
                     "recall": recall(found, data["truth"]), "qps": nq / secs, "filter": None,
                     "speedup": nq / secs / exhaustive[threads]})

    for kind in args.candidates:
        peak_reset()
        before = peak_bytes()
        t = time.perf_counter()
        index = lf.MultiVectorIndex(docs.dim, candidates=kind, **INDEX_PARAMS)
        index.add(docs, attributes=data.get("attributes"))
        build = time.perf_counter() - t
        stats = index.stats()
        build_row = {"dataset": name, "method": f"MultiVectorIndex {kind}", "build_s": build,
                     "bytes_per_doc": stats["bytes_per_document"], "memory_fraction": stats["memory_bytes"] / stats["token_bytes"],
                     "peak_bytes": peak_bytes(), "rss_before": before, "centroids": stats["centroids"]}
        run_index(data, args, rows, index, kind, exhaustive, build_row)

    if "qrels" in data:
        rows.append({"dataset": name, "method": "exact MaxSim ndcg", "ndcg10": ndcg10(data["truth"], data["qrels"])})
    for factor in args.pool:
        t = time.perf_counter()
        index = lf.MultiVectorIndex(docs.dim, pool_factor=factor)
        index.add(docs)
        build = time.perf_counter() - t
        stats = index.stats()
        for cand, rr in ((256, 48), (512, 96)):
            for threads in args.threads:
                (_, found), secs = timed(lambda th: index.search(queries, 10, candidates=cand, rerank=rr, threads=th), threads)
                rows.append({"dataset": name, "method": f"MultiVectorIndex mean, pool_factor {factor}", "threads": threads,
                             "candidates": cand, "rerank": rr, "recall": recall(found, data["truth"]), "qps": nq / secs,
                             "filter": None, "speedup": nq / secs / exhaustive[threads], "build_s": build,
                             "bytes_per_doc": stats["bytes_per_document"],
                             **({"ndcg10": ndcg10(found, data["qrels"])} if "qrels" in data else {})})
            log(f"  pool {factor} cand {cand} rerank {rr}: recall {rows[-1]['recall']:.3f} {rows[-1]['qps']:.0f} q/s, "
                f"{stats['bytes_per_document']:.0f} bytes/doc, build {build:.1f}s")
    if args.query_ball:
        index = data["exact_index"] if data["exact_index"].params["candidates"] == "mean" else None
        for ball in args.query_ball if index is not None else ():
            for threads in args.threads:
                (_, found, info), secs = timed(lambda th: index.search(queries, 10, query_ball=ball, threads=th,
                                                                     explain=True), threads)
                rows.append({"dataset": name, "method": f"MultiVectorIndex mean, query_ball {ball}", "threads": threads,
                             "candidates": 256, "rerank": 48, "recall": recall(found, data["truth"]), "qps": nq / secs,
                             "filter": None, "speedup": nq / secs / exhaustive[threads],
                             "seconds_rescore": float(np.mean([e["seconds_rescore"] for e in info]))})
            log(f"  query_ball {ball}: recall {rows[-1]['recall']:.3f} {rows[-1]['qps']:.0f} q/s")


def run_index(data, args, rows, index, kind, exhaustive, build_row):
    """Searches of a built index: each filter, each stage-1 source over its sweep and thread counts."""
    name, queries = data["name"], data["queries"]
    nq = len(queries)
    log(f"  {kind}: build {build_row['build_s']:.1f}s, {build_row['bytes_per_doc']:.0f} bytes/doc, in-memory part "
        f"{build_row['memory_fraction']:.1%} of the tokens")
    rows.append(build_row)
    data["exact_index"] = index
    for label_f in data["filters"]:
        label, f = (None, None) if label_f is None else label_f
        truth = exact_truth(data, f)
        if f is not None:
            (_, _), secs = timed(lambda th: index.search(queries, 10, filter=f, exact=True, threads=th), args.threads[-1])
            rows.append({"dataset": name, "method": "exhaustive (exact=True)", "threads": args.threads[-1],
                         "recall": 1.0, "qps": nq / secs, "filter": label})
        for probe in args.probe:
            lists = probe == "auto" and len(index) >= 50_000 or probe not in ("auto", "0")
            method = f"MultiVectorIndex {kind}" + (" lists" if lists else "")
            settings = [(None, None)] + (LIST_SWEEP + args.list_sweep if lists else SWEEP)  # (None, None): the defaults
            for cand, rr in settings:
                for threads in args.threads:
                    (scores, found, info), secs = timed(lambda th: index.search(
                        queries, 10, filter=f, candidates=cand, rerank=rr, probe=None if probe == "auto" else int(probe),
                        threads=th, explain=True), threads)
                    row = {"dataset": name, "method": method, "threads": threads, "probe": probe,
                           "candidates": cand or "default", "rerank": rr or "default", "recall": recall(found, truth),
                           "qps": nq / secs, "filter": label, "speedup": nq / secs / exhaustive[threads],
                           "stage1_documents": float(np.mean([e["candidates"] for e in info])),
                           "exact_documents": float(np.mean([e["exact"] for e in info]))}
                    if "qrels" in data and f is None:
                        row["ndcg10"] = ndcg10(found, data["qrels"])
                    rows.append(row)
                log(f"  {method} {label or ''} probe {probe} cand {row['candidates']} rerank {row['rerank']}: "
                    f"recall {row['recall']:.3f} {row['qps']:.0f} q/s ({row['speedup']:.1f}x exhaustive, "
                    f"{threads} threads; {row['stage1_documents']:.0f} -> {row['exact_documents']:.0f} documents)")


def run_plaid(args, name, rows):
    """The PLAID engine through its own environment (bench/_plaid_peer.py)."""
    script = Path(__file__).resolve().parent / "_plaid_peer.py"
    for threads in args.plaid_threads:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "plaid.json"
            cmd = [args.plaid_python, str(script), "--data", str(DATA / name), "--out", str(out), "--threads", str(threads),
                   "--warmup-queries", "100"]
            run = subprocess.run(cmd, capture_output=True, text=True, env=h.thread_env(threads))
            if run.returncode != 0:
                log(f"  PLAID failed on {name}: {run.stderr[-2000:]}")
                return
            result = json.loads(out.read_text())
        for s in result["settings"]:
            rows.append({"dataset": name, "method": f"PLAID ({result['engine']}, nbits {result['nbits']})",
                         "threads": threads, "recall": s["recall_at_10"], "qps": s["qps"],
                         "setting": {k: s[k] for k in ("ncells", "centroid_score_threshold", "ndocs")},
                         "build_s": result["build_seconds"], "bytes_per_doc": result.get("bytes_per_doc")})
            log(f"  PLAID {threads}t {rows[-1]['setting']}: recall {s['recall_at_10']:.3f} {s['qps']:.0f} q/s")


def plot(rows, results, recall_plot=True):
    plt, why = h.try_import("matplotlib.pyplot")
    if plt is None:
        log(f"no plot: {why}")
        return
    names = sorted({r["dataset"] for r in rows if "qps" in r}) if recall_plot else []
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        methods = sorted({r["method"] for r in rows if r["dataset"] == name and "qps" in r and r.get("filter") is None})
        for m in methods:
            pts = sorted((r["recall"], r["qps"]) for r in rows if r["dataset"] == name and r["method"] == m
                         and r.get("threads") == 1 and r.get("filter") is None and "qps" in r)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if len(pts) > 1 else "s", ms=3, label=m)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("recall@10 (vs exact MaxSim)")
        ax.set_ylabel("queries/s (1 thread)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if names:
        fig.tight_layout()
        fig.savefig(results / "index_recall_qps.png", dpi=110)
    sizes = sorted({int(r["dataset"].split("-")[1]) for r in rows if r["dataset"].split("-")[1].isdigit()})
    if len(sizes) > 1:
        fig, ax = plt.subplots(figsize=(4.5, 3.6))
        for m in ("MultiVectorIndex mean", "MultiVectorIndex mean lists", "exhaustive maxsim_topk",
                  "hand glue (mean graph + rerank 200)"):
            pts = []
            for n in sizes:
                cands = [r for r in rows if r["dataset"] == f"synthetic-{n}" and r["method"] == m and r.get("threads") == 1
                         and "qps" in r and r.get("recall", 0) >= 0.95]
                if cands:
                    pts.append((n, max(c["qps"] for c in cands)))
            if pts:
                ax.plot(*zip(*pts), "o-", label=m + " (best at recall >= 0.95)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("documents")
        ax.set_ylabel("queries/s (1 thread)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(results / "index_scaling.png", dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=["scifact-dev-128", "netflix-dev-128", "limit-small-128",
                                                "synthetic-scifact-size", "synthetic"])
    p.add_argument("--sizes", nargs="+", type=int, default=[10000], help="synthetic corpus sizes")
    p.add_argument("--on-disk-above", type=int, default=200_000, help="synthetic sets larger than this keep their "
                   "tokens in a memory-mapped temporary file")
    p.add_argument("--stream-above", type=int, default=600_000, help="synthetic sets larger than this are built "
                   "block by block, never held whole (no hand glue, pooling or FDE there)")
    p.add_argument("--in-memory-gb", type=float, default=13.0, help="streamed sets: the index is saved and mapped "
                   "again whenever the token rows it holds in memory pass this")
    p.add_argument("--keep-index", default=None, metavar="FOLDER", help="streamed sets: keep the index file and "
                   "the queries with their ground truth in this folder (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="streamed sets: search the index kept in --keep-index "
                   "again instead of building it")
    p.add_argument("--token-storage", default="float16", help="streamed sets: the index's token_storage")
    p.add_argument("--centroid-levels", type=int, default=None, help="the indexes' centroid_levels (default: the "
                   "library's)")
    p.add_argument("--list-sweep", nargs="*", default=[], type=lambda v: tuple(int(x) for x in v.split(":")),
                   metavar="CANDIDATES:RERANK", help="more (candidates, rerank) pairs for the lists")
    p.add_argument("--probe", nargs="+", default=["auto"], help="stage 1's source: 0 (graph), N (centroid lists, N "
                   "probes), auto (the index's default)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--candidates", nargs="+", default=["fde", "mean"], help="candidate vectors (mean last: "
                   "the query_ball runs use its index)")
    p.add_argument("--pool", nargs="*", type=int, default=[2, 4], help="pool_factor values to measure")
    p.add_argument("--query-ball", nargs="*", type=float, default=[0.9, 0.8], help="query_ball values to measure")
    p.add_argument("--plaid-python", default=None, help="python of a venv with PyLate (../shared/peers/README.md)")
    p.add_argument("--plaid-threads", nargs="+", type=int, default=[1], help="thread counts for PLAID (it searches "
                   "one query at a time)")
    p.add_argument("--out", default="index.json")
    p.add_argument("--plot-only", nargs="+", default=None, metavar="JSON", help="run nothing: draw results/index_scaling.png "
                   "from the rows of these results files (a scaling series written in parts)")
    args = p.parse_args(argv)
    if args.plot_only:
        plot([r for f in args.plot_only for r in json.loads(Path(f).read_text())["rows"]], h.RESULTS_DIR, False)
        return 0
    if args.centroid_levels is not None:
        INDEX_PARAMS["centroid_levels"] = args.centroid_levels
    h.touch_memory(1.0)
    machine = h.machine_facts()
    rows = []
    for name in args.sets:
        if name == "synthetic":
            sets = (streamed(n, args.in_memory_gb, args.threads, args.keep_index, args.reuse, args.token_storage)
                    if n > args.stream_above
                    else synthetic(n, on_disk_above=args.on_disk_above) for n in args.sizes)
        elif name == "synthetic-scifact-size":  # SciFact's 5,183 documents of ~240 tokens
            sets = [synthetic(5183, lengths=(180, 301), name="synthetic-scifact-size-5183")]
        else:
            sets = [load_shared(name)]
        for data in sets:
            if data is None:
                log(f"{name}: not found under {DATA}")
                continue
            run_dataset(data, args, rows)
            if args.plaid_python and not name.startswith("synthetic"):
                run_plaid(args, name, rows)
            del data
            h.write_json(args.out, {"machine": machine, "rows": rows, "simd": lf.simd_info()})  # kept if a later set fails
    path = h.write_json(args.out, {"machine": machine, "rows": rows, "simd": lf.simd_info()})
    log(f"wrote {path}")
    plot(rows, Path(path).parent)  # beside the results
    return 0


if __name__ == "__main__":
    sys.exit(main())
