"""Shared benchmark helpers: timing, thread limits, machine facts, FMA peak, output.

Nothing here knows about MaxSim; the benchmark scripts import it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

# Environment variables read by the thread pools of the libraries we compare
# (OpenBLAS, MKL, OpenMP, Rayon). They only take effect in a fresh process.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


# --------------------------------------------------------------------------- timing


def measure(fn, repeats: int = 3, warmup: int = 1, max_seconds: float = 4.0):
    """Time `fn()` and return (first_result, stats).

    Runs `warmup` untimed calls (the first result is kept, e.g. for a correctness
    check), then up to `repeats` timed calls with time.perf_counter, stopping early
    (after at least two) once `max_seconds` of timed calls have passed.
    stats: best_s, median_s, runs, cpu_util = this process's CPU time / wall time
    during the timed calls (about the number of busy cores; it shows whether a
    library honoured its thread limit), and other_load = cores kept busy by other
    processes meanwhile (a busy machine makes the numbers worthless).
    """
    result = None
    for i in range(max(1, warmup)):
        out = fn()
        if i == 0:
            result = out
    times, cpu, wall_total = [], 0.0, 0.0
    busy0 = _system_busy_seconds()
    for _ in range(max(1, repeats)):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        t1, c1 = time.perf_counter(), time.process_time()
        times.append(t1 - t0)
        cpu += c1 - c0
        wall_total += t1 - t0
        if len(times) >= 2 and wall_total > max_seconds:
            break
    busy1 = _system_busy_seconds()
    other = None
    if busy0 is not None and busy1 is not None and wall_total > 0:
        other = max(0.0, (busy1 - busy0 - cpu) / wall_total)
    stats = {
        "best_s": min(times),
        "median_s": statistics.median(times),
        "runs": len(times),
        "cpu_util": cpu / wall_total if wall_total > 0 else None,
        "other_load": other,
    }
    return result, stats


def touch_memory(gib: float = 2.0) -> None:
    """Writes and frees `gib` GiB before any timing. On a virtual machine the first write to a
    page of guest memory can be much slower than later ones (the host backs it then), and a
    call that allocates a large output (FDE documents: 200 MB) met such pages at random: the
    pages touched here return to the free lists already backed."""
    import numpy as np
    block = np.ones(int(gib * (1 << 30)), dtype=np.uint8)
    del block


def _system_busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (/proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    guest = sum(ticks[8:10]) if len(ticks) > 9 else 0     # already counted in user
    return (sum(ticks) - idle - guest) / os.sysconf("SC_CLK_TCK")


def other_load(seconds: float = 0.5) -> float | None:
    """Cores kept busy by other processes over `seconds` (this one sleeps meanwhile)."""
    b0 = _system_busy_seconds()
    time.sleep(seconds)
    b1 = _system_busy_seconds()
    return None if b0 is None or b1 is None else (b1 - b0) / seconds


def wait_idle(threshold: float = 0.2, max_wait: float = 30.0) -> float | None:
    """Wait until other processes use fewer than `threshold` cores, at most `max_wait` s.

    Returns the last load seen (None where /proc/stat is unreadable).
    """
    deadline = time.monotonic() + max_wait
    while True:
        load = other_load(0.25)
        if load is None or load < threshold or time.monotonic() > deadline:
            return load


# --------------------------------------------------------------------------- threads


def thread_env(n: int, base: dict | None = None) -> dict:
    """A copy of the environment with every known thread-pool size set to `n`."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_ENV_VARS:
        env[var] = str(n)
    return env


def worker_or_machine(args, run_worker, log=print) -> dict | None:
    """In a worker process (`--worker t`): prints run_worker(args) as JSON and returns None.
    In the parent: logs and returns the machine facts."""
    if args.worker is not None:
        print(json.dumps(run_worker(args)))
        return None
    facts = machine_facts()
    log(f"machine: {facts['cpu']}, {facts['usable_cpus']} usable CPUs, numpy {facts['numpy']}")
    return facts


def run_workers(script: str, argv: list | None, threads: list, busy: float | None = None,
                max_wait: float = 30.0, log=print) -> dict:
    """Runs `script <argv> --worker t` once per thread count t, each in a fresh process with
    every thread-pool variable set to t (after waiting for the machine to go idle when `busy`
    is given), and returns {t: the JSON object its last line of output holds}. A failed worker
    is reported and left out."""
    results = {}
    passthrough = list(argv if argv is not None else sys.argv[1:])
    for t in threads:
        log(f"--- {t} thread(s)")
        if busy is not None:
            wait_idle(busy, max_wait)
        proc = subprocess.run([sys.executable, script, *passthrough, "--worker", str(t)],
                              check=False, env=thread_env(t), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            log(f"worker for {t} thread(s) failed (exit {proc.returncode})")
            continue
        results[t] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


@contextlib.contextmanager
def limit_threads(n: int):
    """Limit numpy's BLAS / OpenMP (threadpoolctl) and torch to `n` threads.

    Libraries that size their pool once from the environment (Rayon) need
    `thread_env` in a fresh process instead; the benchmark does both.
    """
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
        else:
            with threadpool_limits(limits=n):
                yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_torch)


def thread_pools() -> list[dict]:
    """The native thread pools loaded now, with their current sizes (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "num_threads", "version", "architecture", "prefix")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


# --------------------------------------------------------------------------- imports


def try_import(name: str):
    """(module, None) if `name` imports, else (None, 'reason') so a peer can be skipped."""
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # noqa: BLE001  (ImportError, or a broken native extension)
        return None, f"{type(exc).__name__}: {exc}"


def package_version(dist: str) -> str | None:
    """Installed version of distribution `dist`, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- machine


def _cpuinfo() -> dict:
    info = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags") and key not in info:
            info[key] = value.strip()
    return info


def machine_facts() -> dict:
    """CPU model, core counts, SIMD flags, Python/numpy versions and numpy's BLAS."""
    import numpy as np

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_fp16", "avx512_bf16", "amx_tile")
            if f in flags]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    blas = [p for p in thread_pools() if p["user_api"] == "blas"]
    return {
        "cpu": info.get("model name", platform.processor() or platform.machine()),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "simd": simd,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas or "unknown (install threadpoolctl)",
    }


# --------------------------------------------------------------------------- FMA peak


def measure_peak(max_threads: int = 1, timeout: float = 120.0) -> dict | None:
    """Peak single-precision FMA GFLOP/s measured by the C probe bench/peak_fma.c.

    Compiled into a temp dir with $CC (default cc), AVX-512 first, then AVX2 only.
    Returns {"avx512_gflops", "avx2_gflops", "threads": {...}, "compiler_flags"}
    or None (with a note on stderr) when no compiler works.
    """
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        print(f"[peak] no C compiler ({cc}); FMA ceiling unknown", file=sys.stderr)
        return None
    src = BENCH_DIR / "peak_fma.c"
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "peak_fma"
        for flags in (["-O2", "-mavx512f", "-mfma"], ["-O2", "-mavx2", "-mfma"]):
            cmd = [cc, *flags, "-pthread", str(src), "-o", str(exe)]
            build = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if build.returncode == 0:
                break
        else:
            print(f"[peak] compile failed; FMA ceiling unknown:\n{build.stderr}",
                  file=sys.stderr)
            return None
        try:
            run = subprocess.run([str(exe), str(max_threads)], capture_output=True,
                                 text=True, timeout=timeout, check=True)
            peak = json.loads(run.stdout)
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            print(f"[peak] probe failed ({exc}); FMA ceiling unknown", file=sys.stderr)
            return None
    peak["compiler_flags"] = " ".join(flags)
    return peak


# --------------------------------------------------------------------------- output


def write_json(name: str, payload: dict) -> Path:
    """Write `payload` to bench/results/<name> (pretty-printed) and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 1000:
            return f"{value:,.0f}"
        if mag >= 10:
            return f"{value:.1f}"
        if mag >= 0.01:
            return f"{value:.2f}"
        return f"{value:.1e}"
    return str(value)


def print_table(rows: list[dict], columns: list[tuple[str, str]], file=None) -> None:
    """Print `rows` as an aligned text table; `columns` is [(key, header), ...]."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = file or sys.stdout
    for n, row in enumerate(cells):
        parts = [c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(parts).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return text == "-"
