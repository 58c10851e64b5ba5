"""Lists of per-document arrays against MultiVectors: speed and peak memory of the calls that read
a list in place (maxsim, maxsim_topk, maxsim_rerank, FDE encode_documents / encode_queries).

    python bench/bench_ragged.py                 # netflix-dev-128 + synthetic, 1 and 2 threads
    python bench/bench_ragged.py --quick         # fewer docs and rounds
    python bench/bench_ragged.py --threads 1 --skip-real

Each document is its own C-contiguous array (copied out of the flat tokens, as an encoder's
outputs are), in the same dtype as the MultiVectors' tokens; the MultiVectors is built once,
before timing. The form `views` is a list of views into the MultiVectors' own tokens: the same
call on the same memory, which separates what the call costs from where a list's arrays lie.
The form `MultiVectors (4 KiB pages)` holds a copy of the tokens in memory of small pages, as a
list's many small arrays are (numpy asks for huge pages for one large array): list / that is the
cost of the call on equal pages. Each round times every form of a call once, alternating their
order between rounds; a timing is the best of enough back-to-back calls to last about `--target` seconds. The
report gives each form's best and median over the rounds and the median of the per-round ratios
list / MultiVectors, so a drift of the machine's speed between rounds cancels out. A third form,
`MultiVectors(list)` built inside the call, is what a list cost before lists were read in place.
Peak memory: how far each call raises the resident high-water mark (Linux, reset through
/proc/self/clear_refs) above the resident size, against the size of the list. Results go to
bench/results/ragged.json.
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

DATA_DIR = Path(os.environ.get("LATEFOLD_DATA", h.BENCH_DIR.parent.parent / "shared" / "data"))
BUSY = 0.3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--docs", type=int, default=None, help="synthetic docs (default 4000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--target", type=float, default=0.15, help="seconds per timing (several calls)")
    p.add_argument("--quick", action="store_true", help="1000 synthetic docs, 3 rounds")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--max-wait", type=float, default=30.0)
    p.add_argument("--out", default=None, help="file name under bench/results/ (default ragged.json, "
                   "ragged_malloc_huge_pages.json with --malloc-huge-pages)")
    p.add_argument("--malloc-huge-pages", action="store_true",
                   help="run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc >= 2.35): malloc asks for "
                   "transparent huge pages, so a list's small arrays get them as one large array does")
    args = p.parse_args(argv)
    args.out = args.out or ("ragged_malloc_huge_pages.json" if args.malloc_huge_pages else "ragged.json")
    args.docs = args.docs or (1000 if args.quick else 4000)
    args.rounds = args.rounds or (3 if args.quick else 7)
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def split(tokens: np.ndarray, offsets: np.ndarray) -> list:
    """One C-contiguous array per document, each its own allocation."""
    return [np.array(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]


def small_pages(tokens: np.ndarray):
    """A copy of `tokens` in anonymous memory of 4 KiB pages (numpy asks the kernel for huge
    pages for large arrays, never for the small ones of a list), and the mapping that holds it."""
    buf = mmap.mmap(-1, max(1, tokens.nbytes))
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    copy = np.frombuffer(buf, dtype=tokens.dtype, count=tokens.size).reshape(tokens.shape)
    copy[...] = tokens
    return copy, buf


def datasets(args):
    """(name, doc tokens, doc offsets, query tokens float32, query offsets) per set."""
    rng = np.random.default_rng(0)
    offsets = np.zeros(args.docs + 1, np.int64)
    offsets[1:] = np.cumsum(rng.integers(80, 121, args.docs))
    x = rng.standard_normal((int(offsets[-1]), 128), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((8 * 32, 128), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    yield f"synthetic ({args.docs} docs of 80-120 tokens)", x, offsets, q, np.arange(0, 257, 32, dtype=np.int64)
    folder = DATA_DIR / "netflix-dev-128"
    if args.skip_real:
        return
    if not (folder / "docs_tokens.npy").exists():
        log(f"skip netflix-dev-128: not found under {DATA_DIR}")
        return
    q_off = np.load(folder / "queries_offsets.npy")[:33].astype(np.int64)
    yield ("netflix-dev-128", np.load(folder / "docs_tokens.npy"), np.load(folder / "docs_offsets.npy").astype(np.int64),
           np.load(folder / "queries_tokens.npy")[: q_off[-1]].astype(np.float32), q_off)


def operations(lf, queries, fde, n_docs: int) -> dict:
    """name -> call(docs, threads): every call that takes a list of documents in place."""
    one = queries[0]
    candidates = np.random.default_rng(1).integers(0, n_docs, (len(queries), min(100, n_docs)))
    return {
        f"maxsim ({len(queries)} queries)": lambda d, t: lf.maxsim(queries, d, threads=t),
        "maxsim (1 query)": lambda d, t: lf.maxsim(one, d, threads=t),
        "maxsim_topk k=10": lambda d, t: lf.maxsim_topk(queries, d, 10, threads=t),
        f"maxsim_rerank ({candidates.shape[1]} candidates)": lambda d, t: lf.maxsim_rerank(queries, d, candidates, threads=t),
        "FDE encode_documents": lambda d, t: fde.encode_documents(d, threads=t),
        "FDE encode_queries (docs as queries)": lambda d, t: fde.encode_queries(d, threads=t),
    }


# --------------------------------------------------------------------------- measurement


def timing(fn, calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved(forms: dict, rounds: int, target: float) -> dict:
    """form -> per-round best times; every round times each form once, the order alternating."""
    names = list(forms)
    for fn in forms.values():  # warm-up, and how many calls make a timing
        fn()
    once = min(timing(forms[n], 1) for n in names)
    calls = max(1, min(50, int(target / max(once, 1e-6))))
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            times[n].append(timing(forms[n], calls))
    return times


def peak_growth_mib(fn) -> float | None:
    """How far fn() raises the resident high-water mark above the resident size (MiB). Freed
    memory that malloc keeps would serve a copy without raising the mark: it is returned first."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))

    start = status("VmRSS")
    fn()
    return status("VmHWM") - start


# --------------------------------------------------------------------------- main


def malloc_huge_pages() -> bool:
    return "glibc.malloc.hugetlb=1" in os.environ.get("GLIBC_TUNABLES", "")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.malloc_huge_pages and not malloc_huge_pages():  # read by glibc at start: start again
        tunables = ":".join(filter(None, [os.environ.get("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1"]))
        argv = sys.argv if argv is None else [sys.argv[0], *argv]
        os.execve(sys.executable, [sys.executable, *argv], dict(os.environ, GLIBC_TUNABLES=tunables))
    try:
        import latefold as lf
    except ImportError as exc:
        log(f"latefold is not importable ({exc}): pip install . first")
        return 1
    facts = h.machine_facts()
    log(f"machine: {facts['cpu']}, {facts['usable_cpus']} usable CPUs, SIMD {lf.simd_info()['active']}")
    h.touch_memory(1.0)
    rows, memory = [], []
    for name, tokens, offsets, q_tokens, q_off in datasets(args):
        queries = [q_tokens[a:b] for a, b in zip(q_off[:-1], q_off[1:])]
        fde = lf.FDE(tokens.shape[1])  # R = 20, k = 5, d_proj = 16: the paper's setting
        for dtype in (np.float16, np.float32):
            flat = np.ascontiguousarray(tokens, dtype=dtype)
            mv = lf.MultiVectors(flat, offsets)
            flat_small, mapping = small_pages(flat)
            mv_small = lf.MultiVectors(flat_small, offsets)
            items = split(flat, offsets)
            views = [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
            corpus_mib = flat.nbytes / 2**20
            log(f"--- {name}, {np.dtype(dtype).name}: {len(items)} docs, {corpus_mib:.1f} MiB")
            ops = operations(lf, queries, fde, len(items))
            for op, call in ops.items():
                growth = {form: peak_growth_mib(fn) for form, fn in (
                    ("list", lambda: call(items, 1)),
                    ("MultiVectors", lambda: call(mv, 1)),
                    ("MultiVectors(list) per call", lambda: call(lf.MultiVectors(items), 1)))}
                memory.append({"dataset": name, "dtype": np.dtype(dtype).name, "op": op,
                               "corpus_mib": round(corpus_mib, 2),
                               **{f"peak_mib {form}": None if g is None else round(g, 2) for form, g in growth.items()}})
                for t in args.threads:
                    load = h.wait_idle(BUSY, args.max_wait)
                    times = interleaved({
                        "list": lambda: call(items, t),
                        "views": lambda: call(views, t),
                        "MultiVectors": lambda: call(mv, t),
                        "MultiVectors (4 KiB pages)": lambda: call(mv_small, t),
                        "MultiVectors(list) per call": lambda: call(lf.MultiVectors(items), t),
                    }, args.rounds, args.target)
                    ratios = [a / b for a, b in zip(times["list"], times["MultiVectors"])]
                    view_ratios = [a / b for a, b in zip(times["views"], times["MultiVectors"])]
                    small_ratios = [a / b for a, b in zip(times["list"], times["MultiVectors (4 KiB pages)"])]
                    copy_ratios = [a / b for a, b in zip(times["MultiVectors(list) per call"], times["MultiVectors"])]
                    row = {"dataset": name, "dtype": np.dtype(dtype).name, "op": op, "threads": t,
                           "list_best_s": min(times["list"]), "mv_best_s": min(times["MultiVectors"]),
                           "copy_best_s": min(times["MultiVectors(list) per call"]),
                           "list_median_s": statistics.median(times["list"]),
                           "mv_median_s": statistics.median(times["MultiVectors"]),
                           "views_best_s": min(times["views"]),
                           "ratio": statistics.median(ratios), "ratio_best": min(times["list"]) / min(times["MultiVectors"]),
                           "views_ratio": statistics.median(view_ratios),
                           "small_pages_ratio": statistics.median(small_ratios),
                           "copy_ratio": statistics.median(copy_ratios), "rounds": args.rounds,
                           "other_load_before": load, "round_ratios": [round(r, 4) for r in ratios]}
                    rows.append(row)
                    log(f"{op:40s} t={t}  list {row['list_best_s'] * 1e3:8.2f} ms  MultiVectors "
                        f"{row['mv_best_s'] * 1e3:8.2f} ms  ratio {row['ratio']:.3f} (views {row['views_ratio']:.3f}, "
                        f"list / MV on 4 KiB pages {row['small_pages_ratio']:.3f})  "
                        f"(MultiVectors(list) per call: {row['copy_ratio']:.2f}x)  peak MiB list "
                        f"{growth['list']:.1f} / per-call copy {growth['MultiVectors(list) per call']:.1f}")
            del mv, mv_small, flat_small, items, views, flat
            mapping.close()
    print()
    h.print_table(rows, [("dataset", "dataset"), ("dtype", "dtype"), ("op", "call"), ("threads", "t"),
                         ("list_best_s", "list s"), ("mv_best_s", "MultiVectors s"),
                         ("ratio", "list/MV"), ("views_ratio", "views/MV"), ("small_pages_ratio", "list/MV 4K"),
                         ("copy_ratio", "copy/MV")])
    print()
    h.print_table(memory, [("dataset", "dataset"), ("dtype", "dtype"), ("op", "call"), ("corpus_mib", "list MiB"),
                           ("peak_mib list", "peak list"), ("peak_mib MultiVectors", "peak MV"),
                           ("peak_mib MultiVectors(list) per call", "peak copy")])
    worst = max(r["ratio"] for r in rows)
    print(f"\nworst list / MultiVectors (median of rounds): {worst:.3f}")
    path = h.write_json(args.out, {
        "benchmark": "ragged",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": facts,
        "simd": lf.simd_info()["active"],
        "versions": {"latefold": lf.__version__, "numpy": np.__version__},
        "config": {**vars(args), "malloc_huge_pages": malloc_huge_pages()},
        "command": "python bench/bench_ragged.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timings": rows,
        "memory": memory,
    })
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
