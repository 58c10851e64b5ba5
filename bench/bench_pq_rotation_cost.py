"""Training cost of the PQ rotations: latefold's C++ training against the same algorithms in
numpy (LAPACK QR and SVD, as latefold did before 0.2), one thread, in the same run.

    OPENBLAS_NUM_THREADS=1 python bench/bench_pq_rotation_cost.py [--dims 128,512,1024]

20,000 synthetic vectors with variances falling from 9 to 0.01 in a random basis; 4-bit codes
with m = dim/4 on the default 4,096-row sample, and 8-bit codes with m = dim/8 on 8,192 rows;
10 Lloyd iterations, 8 OPQ alternations. Prints seconds and the C++/numpy ratio and writes
bench/results/pq_rotation_cost.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h


def numpy_rotation_train(lf, x, m, nbits, kind, limit, seed=1, opq_iterations=8):
    """The numpy rotations: Haar QR (Mezzadri) and OPQ with a LAPACK SVD Procrustes step."""
    d = x.shape[1]
    core = lf._core.ProductQuantizer(d, m, nbits, "ip", "none")
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    rotation = np.ascontiguousarray(q * np.sign(np.diag(r)), dtype=np.float32)
    if kind == "opq":
        rows = np.random.default_rng(seed).permutation(len(x))[:limit]
        sample = np.ascontiguousarray(x[np.sort(rows)])
        for _ in range(opq_iterations):
            core.set_rotation(rotation)
            core.train(sample, 4, seed, limit, 1)
            rebuilt = core.decode(core.encode(sample, 1), 1) @ rotation
            u, _, vt = np.linalg.svd(sample.T.astype(np.float64) @ rebuilt.astype(np.float64))
            rotation = (u @ vt).astype(np.float32)
    core.set_rotation(rotation)
    core.train(x, 10, seed, limit, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="128,512,1024")
    args = parser.parse_args(argv)
    import latefold as lf

    rng = np.random.default_rng(0)
    rows = []
    for d in (int(v) for v in args.dims.split(",")):
        basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
        x = np.ascontiguousarray((rng.standard_normal((20000, d)) * np.geomspace(3, 0.1, d)) @ basis, np.float32)
        for nbits, m, limit in ((4, d // 4, 4096), (8, d // 8, 8192)):
            for kind in ("random", "opq"):
                t0 = time.perf_counter()
                numpy_rotation_train(lf, x, m, nbits, kind, limit)
                t1 = time.perf_counter()
                lf.ProductQuantizer(d, m, nbits, rotation=kind).train(x, iterations=10, seed=1,
                                                                      max_training_points=limit, threads=1)
                t2 = time.perf_counter()
                rows.append({"dim": d, "codes": f"{nbits}b m={m}", "rotation": kind, "numpy_s": t1 - t0,
                             "latefold_s": t2 - t1, "ratio": (t2 - t1) / (t1 - t0)})
                print(rows[-1], flush=True)
    h.print_table(rows, [("dim", "dim"), ("codes", "codes"), ("rotation", "rotation"),
                         ("numpy_s", "numpy s"), ("latefold_s", "latefold s"), ("ratio", "ratio")])
    h.write_json("pq_rotation_cost.json", {"machine": h.machine_facts(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
