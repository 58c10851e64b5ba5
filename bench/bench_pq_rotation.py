"""Product quantization with a rotation: what `ProductQuantizer(rotation=...)` buys.

    python bench/bench_pq_rotation.py            # about 3 minutes on 2 cores
    python bench/bench_pq_rotation.py --quick    # 20,000 synthetic vectors

Datasets and code settings of bench_pq.py (the pooled 384-d netflix and scifact vectors and
200,000 synthetic 128-d unit vectors; dim/4 and dim/8 bytes per code, 8-bit and 4-bit). The FDE
set is left out: a dense 2560 x 2560 rotation is beyond a few minutes of OPQ training here.
For each setting, latefold without a rotation, with `rotation="random"` and with
`rotation="opq"` (8 alternations): train time (both cores), mean squared reconstruction error
of the first 5,000 vectors and recall@10 against the exact top-10 (8-bit: float-table ADC;
4-bit: fast-scan estimates, no re-scoring). faiss's OPQMatrix is not run: on these sets it took
over a minute per setting here (8 alternations), longer than the whole script.
Prints a table and writes bench/results/pq_rotation.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h
import bench_pq as b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import latefold as lf

    data_args = b.parse_args(["--sets", "netflix", "scifact", "synthetic"] + (["--quick"] if args.quick else []))
    rows = []
    for name, metric, x, q in b.datasets(data_args):
        x, q = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(q, np.float32)
        gt = b.exact_topk(x, q, metric)
        for setting, nbits, m in b.settings(x.shape[1]):
            for rotation in (None, "random", "opq"):
                t0 = time.perf_counter()
                pq = lf.ProductQuantizer(x.shape[1], m, nbits, metric, rotation=rotation).train(
                    x, iterations=b.ITERATIONS, seed=1)
                train_s = time.perf_counter() - t0
                _, ids = pq.search(pq.encode(x), q, b.K, rescore=0)
                rows.append({"dataset": name, "setting": setting, "method": f"latefold {rotation or 'none'}",
                             "train_s": train_s, "error": pq.reconstruction_error(x[:5000]),
                             "recall": b.recall(ids, gt)})
                b.log(f"{name} {setting} {rows[-1]['method']}: recall {rows[-1]['recall']:.3f}, "
                      f"train {train_s:.1f} s")
    print("\nrecall@10 (8-bit: ADC, 4-bit: fast scan without re-scoring), reconstruction error, train seconds")
    h.print_table(rows, [("dataset", "dataset"), ("setting", "setting"), ("method", "method"),
                         ("recall", "R@10"), ("error", "mse"), ("train_s", "train s")])
    h.write_json("pq_rotation.json", {"machine": h.machine_facts(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
