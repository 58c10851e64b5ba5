"""latefold.ray on one machine: a ShardedIndex of 1 and 2 shards against one in-process
MultiVectorIndex, on the shared sets, and the parts of a sharded search's cost that a projection
to many shards needs.

    python bench/bench_ray.py                        # scifact-dev-128 and netflix-dev-128
    python bench/bench_ray.py --sets scifact-dev-128 --rounds 5
    python bench/bench_ray.py --build-only           # the build paths alone, into results/ray.json

Per set and configuration: recall@10 against exact MaxSim, queries/s for the whole query set in
one batch, and the latency of batches of 1 and 32 queries (median). Then, measured here: each
shard's own search time (its saved file loaded in this process), the object-store put of a
query batch (per query), one empty round trip per shard, the driver's cost per shard call (100
calls in flight), and the merge of S shards' top-k (S = 2 and 100). Writes results/ray.json.
Both shard counts share this machine's 2 cores: 1 shard searches with 2 threads, 2 shards with
1 thread each.

Build paths (key "build"): a 2-shard index built from one Ray Dataset (scifact-dev-128's
documents repeated to a few thousand, new ids per copy) routed by the driver (`add(ds)`) and
read by the shards themselves (`add(ds, parallel=True)`), beside an in-memory `add(docs, ids)`:
wall time, the driver process's CPU time, and the token bytes that pass through the driver.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

import _harness as h
import latefold as lf
from bench_index import load_shared
from latefold.ray import ShardedIndex, _merge

K = 10


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def recall(found, truth):
    return float(np.mean([len(set(f[:K].tolist()) & set(t[:K].tolist())) / K for f, t in zip(found, truth)]))


def median_seconds(fn, rounds):
    fn()  # warm
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def batches(queries, size, count):
    return [queries[i * size:(i + 1) * size] for i in range(min(count, len(queries) // size))]


def search_costs(search, queries, rounds):
    """q/s of the whole set in one batch; median latency of batches of 1 and of 32 queries."""
    whole = median_seconds(lambda: search(queries), rounds)
    out = {"qps_batch_all": len(queries) / whole}
    for size in (1, 32):
        parts = batches(queries, size, 40 if size == 1 else 6)
        out[f"latency_batch{size}_ms"] = 1e3 * statistics.median(
            median_seconds(lambda p=p: search(p), max(1, rounds // 2)) for p in parts)
    return out


def run_set(data, rounds, workdir):
    docs, queries, truth = data["docs"], data["queries"], data["truth"]
    ids = np.arange(len(docs), dtype=np.int64)
    rows = []
    one = lf.MultiVectorIndex(docs.dim)
    t0 = time.perf_counter()
    one.add(docs, ids)
    build_one = time.perf_counter() - t0
    for threads in (1, 2):
        found = one.search(queries, K, threads=threads)[1]
        rows.append({"set": data["name"], "config": f"MultiVectorIndex, {threads} thread(s)", "shards": 0,
                     "threads_per_shard": threads, "recall@10": recall(found, truth), "build_s": build_one,
                     **search_costs(lambda q, t=threads: one.search(q, K, threads=t), queries, rounds)})
        log(rows[-1])
    parts = {}
    for shards, threads in ((1, 2), (2, 1)):
        index = ShardedIndex(shards, docs.dim)
        t0 = time.perf_counter()
        index.add(docs, ids, threads=threads)
        build = time.perf_counter() - t0
        found = index.search(queries, K, threads=threads)[1]
        rows.append({"set": data["name"], "config": f"ShardedIndex, {shards} shard(s) x {threads} thread(s)",
                     "shards": shards, "threads_per_shard": threads, "recall@10": recall(found, truth),
                     "build_s": build, **search_costs(lambda q, t=threads: index.search(q, K, threads=t), queries, rounds)})
        log(rows[-1])
        if shards == 2:
            parts = shard_parts(index, queries, rounds, workdir / data["name"])
        index.close()
    return rows, parts


def shard_parts(index, queries, rounds, directory):
    """What one sharded search is made of, measured on the 2-shard index."""
    index.save(directory)
    shards = [lf.MultiVectorIndex.load(directory / f"shard-{s:05d}.lf", mmap=True) for s in range(index.num_shards)]
    tokens = np.ascontiguousarray(queries.values(), dtype=np.float32)
    nq = len(queries)
    out = {"queries": nq, "query_bytes_per_query": (tokens.nbytes + 8 * (nq + 1)) / nq}
    # Each shard's own search of the whole set, 1 thread, in this process (no Ray).
    out["shard_search_ms_per_query"] = [1e3 * median_seconds(lambda s=s: s.search(queries, K, threads=1), rounds) / nq
                                        for s in shards]
    single = [queries[i:i + 1] for i in range(40)]
    out["shard_search_ms_batch1"] = [1e3 * statistics.median(median_seconds(lambda q=q, s=s: s.search(q, K, threads=1), 3)
                                                             for q in single) for s in shards]
    # The object store: a batch's put, per query.
    out["put_us_per_query_batch_all"] = 1e6 * median_seconds(lambda: ray.put((tokens, queries.offsets)), rounds) / nq
    one = np.ascontiguousarray(queries[0:1].values(), dtype=np.float32)
    out["put_us_batch1"] = 1e6 * median_seconds(lambda: ray.put((one, np.array([0, len(one)]))), 20)
    # A round trip to one shard that does nothing, and the driver's cost per call with 100 in flight.
    actor = index.actors[0]
    empty = np.zeros(0, dtype=np.int64)
    out["round_trip_ms"] = 1e3 * median_seconds(lambda: ray.get(actor.missing.remote(empty, True)), 20)
    # 100 calls in flight over the 2 actors: all of it (bounded by the actors here) and the submission alone.
    submit = []

    def hundred():
        t0 = time.perf_counter()
        refs = [index.actors[i % 2].missing.remote(empty, True) for i in range(100)]
        submit.append(time.perf_counter() - t0)
        ray.get(refs)

    out["us_per_call_100_in_flight"] = 1e6 * median_seconds(hundred, rounds) / 100
    out["driver_submit_us_per_call"] = 1e6 * statistics.median(submit) / 100
    # The merge of S shards' top-k answers of one batch.
    rng = np.random.default_rng(0)
    for s_count, batch in ((2, 1), (2, nq), (100, 1), (100, 32)):
        answers = [(rng.standard_normal((batch, K)).astype(np.float32), rng.integers(0, 10**9, (batch, K)))
                   for _ in range(s_count)]
        out[f"merge_us_{s_count}_shards_batch{batch}"] = 1e6 * median_seconds(lambda a=answers, b=batch: _merge(a, b, K), 20)
    log(out)
    return out


def build_paths(data, copies, rounds, blocks=16, batch_size=256):
    """Build time of a 2-shard index (1 thread per shard) by each path; the best of `rounds`."""
    base = data["docs"]
    docs = [base[i] for i in range(len(base))] * copies  # repeated token sets, distinct ids
    ids = np.arange(len(docs), dtype=np.int64)
    ds = ray.data.from_items([{"id": int(i), "tokens": d} for i, d in zip(ids, docs)], override_num_blocks=blocks)
    token_bytes = sum(d.nbytes for d in docs)
    paths = {"in-memory docs, routed by the driver": lambda index: index.add(docs, ids, threads=1),
             "Dataset, routed by the driver": lambda index: index.add(ds, threads=1, batch_size=batch_size),
             "Dataset, each shard reads its partition": lambda index: index.add(ds, threads=1, batch_size=batch_size,
                                                                                parallel=True)}
    rows = []
    for name, build in paths.items():
        walls, cpus = [], []
        for _ in range(rounds):
            index = ShardedIndex(2, base.dim)
            w0, c0 = time.perf_counter(), time.process_time()
            build(index)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            assert len(index) == len(docs)
            index.close()
        through_driver = 0 if "partition" in name else token_bytes
        rows.append({"set": data["name"], "documents": len(docs), "blocks": blocks, "batch_size": batch_size,
                     "path": name, "build_s": min(walls), "build_s_all": walls, "driver_cpu_s": min(cpus),
                     "token_mb_through_driver": through_driver / 2**20})
        log(rows[-1])
    return rows


# Assumptions of the projection to 100 shards x 10M documents (bench/README.md, "Scale-out on Ray").
PROJECTION = {
    "shards": 100, "documents_per_shard": 10_000_000, "threads_per_shard": 16, "batch": 32,
    # One shard's search per query and thread at 10M documents: bench/README.md's 100,000-document
    # measurement (2,048 candidates / 48 reranked: stage 1 2.7 ms, stage 2 1.0 ms, stage 3 0.3 ms)
    # with stage 1 (graph hops) grown by log(1e7) / log(1e5) = 1.4; stages 2 and 3 score a fixed
    # number of documents.
    "shard_ms_per_query_thread": 2.7 * 1.4 + 1.0 + 0.3,
    "straggler": 1.3,              # the slowest of 100 shards against the median one
    "network_gbit_s": 25.0,        # the driver's NIC: every shard pulls the query batch from it
    "network_rtt_ms": 0.2,
}


def project(parts):
    """Latency of a batch and throughput of 100 shards from the measured parts and PROJECTION."""
    p, b, s = PROJECTION, PROJECTION["batch"], PROJECTION["shards"]
    query_bytes = parts["query_bytes_per_query"]
    shard_ms = p["shard_ms_per_query_thread"] * b / min(b, p["threads_per_shard"])  # batch over the threads
    put_ms = (parts["put_us_batch1"] + parts["put_us_per_query_batch_all"] * b) / 1e3
    transfer_ms = s * b * query_bytes / (p["network_gbit_s"] / 8 * 1e9) * 1e3  # S copies out of the driver
    submit_ms = s * parts["driver_submit_us_per_call"] / 1e3
    call_ms = parts["round_trip_ms"] + p["network_rtt_ms"]
    merge_ms = parts["merge_us_100_shards_batch32"] / 1e3 * b / 32
    latency = put_ms + submit_ms + transfer_ms + call_ms + p["straggler"] * shard_ms + merge_ms
    driver_ms = put_ms + submit_ms + merge_ms  # the driver's own work per batch
    return {
        "assumptions": p, "batch_latency_ms": latency,
        "parts_ms": {"put": put_ms, "submit": submit_ms, "query_transfer": transfer_ms, "round_trip": call_ms,
                     "slowest_shard": p["straggler"] * shard_ms, "merge": merge_ms},
        "qps_shards": p["threads_per_shard"] * 1e3 / p["shard_ms_per_query_thread"],
        "qps_driver_cpu": b * 1e3 / driver_ms,
        "qps_driver_network": (p["network_gbit_s"] / 8 * 1e9) / (s * query_bytes),
        "token_bytes_per_shard_float16": p["documents_per_shard"] * 100 * 128 * 2,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["scifact-dev-128", "netflix-dev-128"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--build-only", action="store_true",
                        help="measure the build paths alone and update their entry of results/ray.json")
    parser.add_argument("--build-copies", type=int, default=4, help="copies of scifact-dev-128's 700 documents")
    parser.add_argument("--build-rounds", type=int, default=2)
    args = parser.parse_args()
    # Cores other processes keep busy: the numbers mean little when high (--build-only waits for quiet).
    load = h.wait_idle(0.3, 600.0) if args.build_only else h.other_load(1.0)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    scifact = load_shared("scifact-dev-128")
    build = {"other_load_at_start": load,
             "rows": build_paths(scifact, args.build_copies, args.build_rounds) if scifact is not None else []}
    if args.build_only:
        ray.shutdown()
        h.print_table(build["rows"], [("path", "path"), ("documents", "docs"), ("build_s", "build s"),
                                      ("driver_cpu_s", "driver CPU s"), ("token_mb_through_driver", "MB via driver")])
        path = h.RESULTS_DIR / "ray.json"
        payload = json.loads(path.read_text()) if path.exists() else {}
        payload["build"] = build
        log(f"wrote {h.write_json('ray.json', payload)}")
        return
    rows, parts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            data = load_shared(name)
            if data is None:
                log(f"{name}: not found, skipped")
                continue
            set_rows, parts[name] = run_set(data, args.rounds, Path(tmp))
            rows += set_rows
    ray.shutdown()
    h.print_table(rows, [("set", "set"), ("config", "config"), ("recall@10", "recall@10"),
                         ("qps_batch_all", "q/s (one batch)"), ("latency_batch1_ms", "ms, 1 query"),
                         ("latency_batch32_ms", "ms, 32 queries"), ("build_s", "build s")])
    projection = {name: project(p) for name, p in parts.items()}
    for name, p in projection.items():
        log(name, p)
    path = h.write_json("ray.json", {"machine": h.machine_facts(), "other_load_at_start": load, "ray": ray.__version__,
                                     "latefold": lf.__version__, "k": K, "rows": rows, "parts": parts,
                                     "projection": projection, "build": build})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
