"""latefold's CUDA engines beside PyTorch on the same GPU, in one run.

    python bench/bench_cuda.py                      # the issue's cases (1M x 100 x 128 float16 documents)
    python bench/bench_cuda.py --docs 20000 --quick # a short check
    python bench/bench_cuda.py --torch-device cpu --docs 2000 --quick   # the baseline's code on the CPU

Cases: exhaustive MaxSim top-10 of one query and of 32 queries (32 tokens each) over the
documents; rerank of 1,000 queries x 1,000 candidates; the same exhaustive case on int8 and
bfloat16 storage; FDE document encoding and a PQ scan beside the CPU engines. PyTorch is the
baseline users write: padded (n, 100, 128) float16 tensors, chunked einsum + amax + sum, topk.
Ceilings measured in the same run: device-to-device copy bandwidth (bytes read and written, as
PyTorch's copy) and the float16 tensor-core rate (an 8192^3 matrix product). latefold reads the
PyTorch tensor in place (DLPack), so both score the same memory. Timings: median of the
repeats after a warm-up; every call is synchronous. Writes bench/results/cuda.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if not any((Path(p) / "latefold" / "__init__.py").exists() for p in sys.path if p):
    sys.path.insert(0, str(BENCH.parent / "python"))

import latefold as lf  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--doc-tokens", type=int, default=100)
    p.add_argument("--query-tokens", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rerank", type=int, nargs=2, default=[1000, 1000], metavar=("QUERIES", "CANDIDATES"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 repeats, smaller FDE and PQ cases")
    p.add_argument("--torch-device", default="cuda", help="where the PyTorch baseline runs (cpu: a dry run)")
    p.add_argument("--out", default=str(BENCH / "results" / "cuda.json"))
    return p.parse_args(argv)


def timed(fn, repeats, sync=lambda: None):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class Report:
    def __init__(self, path):
        self.path, self.data = Path(path), {"cases": {}}

    def case(self, name, fn):
        print(f"--- {name}", flush=True)
        try:
            result = fn()
        except Exception as error:  # one failing case must not lose the others
            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
        self.data["cases"][name] = result
        print(json.dumps(result, indent=1), flush=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1))


def torch_maxsim_scores(torch, queries, docs, chunk):
    """The baseline: queries (b, m, d), padded docs (n, L, d) -> (b, n) scores, chunked."""
    out = []
    for start in range(0, docs.shape[0], chunk):
        sims = torch.einsum("bmd,nld->bnml", queries, docs[start:start + chunk])
        out.append(sims.amax(-1).float().sum(-1))
    return torch.cat(out, 1)


def main(argv=None):
    args = parse_args(argv)
    if args.quick:
        args.repeats = 2
    report = Report(args.out)
    import torch  # the baseline and the corpus allocation; latefold itself never imports it

    tdev = torch.device(args.torch_device)
    on_gpu = tdev.type == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    report.data["machine"] = {
        "latefold": lf.__version__, "cuda": lf.cuda_info(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if on_gpu else None, "args": vars(args),
    }
    print(json.dumps(report.data["machine"], indent=1), flush=True)

    def ceilings():
        out = {}
        if on_gpu:
            a = torch.empty(4 << 30, dtype=torch.uint8, device=tdev)
            b = torch.empty_like(a)
            seconds = timed(lambda: b.copy_(a), args.repeats, sync)
            out["copy_GBps_read_plus_write"] = 2 * a.numel() / seconds / 1e9
            del a, b
            x = torch.randn(8192, 8192, dtype=torch.float16, device=tdev)
            seconds = timed(lambda: x @ x, args.repeats, sync)
            out["float16_tensor_TFLOPs"] = 2 * 8192**3 / seconds / 1e12
            del x
        return out

    report.case("ceilings", ceilings)
    peak = report.data["cases"]["ceilings"]

    n, L, d, m = args.docs, args.doc_tokens, args.dim, args.query_tokens
    gen = torch.Generator(device=tdev).manual_seed(0)
    tokens = torch.randn(n * L, d, dtype=torch.float16, device=tdev, generator=gen)
    tokens /= tokens.float().norm(dim=1, keepdim=True).half()  # unit rows, as ColBERT's
    padded = tokens.view(n, L, d)  # every document has L tokens: the padded tensor is the corpus
    offsets = np.arange(0, n * L + 1, L, dtype=np.int64)
    rng = np.random.default_rng(1)

    def unit(shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    queries32 = unit((32, m, d))
    docs = lf.DeviceMultiVectors(tokens, offsets) if on_gpu else lf.MultiVectors(tokens.numpy(), offsets)
    device = "cuda" if on_gpu else "cpu"
    corpus_bytes = tokens.numel() * 2

    def exhaustive(n_queries):
        def run():
            q = list(queries32[:n_queries])
            ours = timed(lambda: lf.maxsim_topk(q, docs, 10, device=device), args.repeats)
            tq = torch.from_numpy(queries32[:n_queries]).to(tdev).half()
            chunk = max(1, (1 << 31) // (n_queries * m * L * 2))  # ~2 GB of token scores per chunk
            theirs = timed(lambda: torch_maxsim_scores(torch, tq, padded, chunk).topk(10, dim=1), args.repeats, sync)
            # Agreement of the two top-10 lists (float16 sums in PyTorch, float32 here).
            ours_ids = np.asarray(lf.maxsim_topk(q, docs, 10, device=device)[1])
            their_ids = torch_maxsim_scores(torch, tq, padded, chunk).topk(10, dim=1).indices.cpu().numpy()
            overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ours_ids, their_ids)])
            result = {"latefold_s": ours, "torch_s": theirs, "latefold_docs_per_s": n * n_queries / ours,
                      "torch_docs_per_s": n * n_queries / theirs, "speedup": theirs / ours,
                      "top10_overlap_with_torch": float(overlap)}
            if "copy_GBps_read_plus_write" in peak:
                result["latefold_fraction_of_copy_bandwidth"] = corpus_bytes / ours / 1e9 / peak["copy_GBps_read_plus_write"]
                result["torch_fraction_of_copy_bandwidth"] = corpus_bytes / theirs / 1e9 / peak["copy_GBps_read_plus_write"]
            if "float16_tensor_TFLOPs" in peak:
                flops = 2 * n_queries * m * n * L * d
                result["latefold_TFLOPs_useful"] = flops / ours / 1e12
                result["fraction_of_tensor_peak_useful"] = flops / ours / 1e12 / peak["float16_tensor_TFLOPs"]
            return result
        return run

    report.case("exhaustive_top10_1_query", exhaustive(1))
    report.case("exhaustive_top10_32_queries", exhaustive(32))

    def rerank():
        nq, c = args.rerank
        queries = unit((nq, m, d))
        cand = rng.integers(0, n, (nq, c))
        ours = timed(lambda: lf.maxsim_rerank(list(queries), docs, cand, device=device), args.repeats)
        tq = torch.from_numpy(queries).to(tdev).half()
        tc = torch.from_numpy(cand).to(tdev)
        step = max(1, (1 << 30) // (c * L * d * 2))  # queries per chunk: ~1 GB of gathered documents

        def theirs_fn():
            out = []
            for s in range(0, nq, step):
                gathered = padded[tc[s:s + step]]  # (b, c, L, d)
                sims = torch.einsum("bmd,bcld->bcml", tq[s:s + step], gathered)
                out.append(sims.amax(-1).float().sum(-1))
            return torch.cat(out)

        theirs = timed(theirs_fn, args.repeats, sync)
        got = np.asarray(lf.maxsim_rerank(list(queries), docs, cand, device=device))
        want = theirs_fn().cpu().numpy()
        return {"latefold_s": ours, "torch_s": theirs, "latefold_pairs_per_s": nq * c / ours,
                "torch_pairs_per_s": nq * c / theirs, "speedup": theirs / ours,
                "max_abs_difference_vs_torch": float(np.abs(got - want).max())}

    report.case("rerank", rerank)

    def storages():
        if not on_gpu:
            return {"skipped": "GPU only"}
        out = {}
        sample = min(n, 200_000)
        host = lf.MultiVectors(tokens[: sample * L].cpu().numpy(), offsets[: sample + 1])
        q = list(queries32[:1])
        for storage in ("float16", "bfloat16", "int8"):
            stored = host if storage == "float16" else lf.quantize(host, storage)
            on_device = lf.to_device(stored)
            seconds = timed(lambda: lf.maxsim_topk(q, on_device, 10, device="cuda"), args.repeats)
            batch = timed(lambda: lf.maxsim_topk(list(queries32), on_device, 10, device="cuda"), args.repeats)
            out[storage] = {"docs": sample, "bytes": on_device.nbytes, "one_query_docs_per_s": sample / seconds,
                            "32_queries_docs_per_s": 32 * sample / batch}
            del on_device
        return out

    report.case("storages", storages)

    def fde():
        sample = min(n, 20_000 if args.quick else 100_000)
        host = lf.MultiVectors(tokens[: sample * L].float().cpu().numpy(), offsets[: sample + 1])
        enc = lf.FDE(d, 20, 5, projection_dimension=16, final_projection_dimension=1024)
        cpu = timed(lambda: enc.encode_documents(host), 1)
        out = {"docs": sample, "cpu_s": cpu, "cpu_docs_per_s": sample / cpu}
        if on_gpu:
            on_device = lf.to_device(host)
            gpu = timed(lambda: enc.encode_documents(on_device, device="cuda"), args.repeats)
            same = np.array_equal(enc.partition_indices(host), np.asarray(enc.partition_indices(on_device, device="cuda")))
            diff = np.abs(np.asarray(enc.encode_documents(on_device, device="cuda")) - enc.encode_documents(host)).max()
            out.update({"gpu_s": gpu, "gpu_docs_per_s": sample / gpu, "speedup": cpu / gpu,
                        "partitions_identical": bool(same), "max_abs_difference": float(diff)})
        return out

    report.case("fde_encode_documents", fde)

    def pq():
        count = min(n, 100_000 if args.quick else 1_000_000)
        x = tokens[:count].float().cpu().numpy()
        quantizer = lf.ProductQuantizer(d, 16, 8).train(x[:50_000], iterations=4)
        codes = quantizer.encode(x)
        q = unit((32, d))
        cpu = timed(lambda: quantizer.search(codes, q, 10, rescore=0), 1)
        out = {"codes": count, "cpu_s": cpu, "cpu_queries_per_s": 32 / cpu}
        if on_gpu:
            gpu = timed(lambda: quantizer.search(codes, q, 10, device="cuda"), args.repeats)
            gpu_ids = quantizer.search(codes, q, 10, device="cuda")[1]
            cpu_ids = quantizer.search(codes, q, 10, rescore=0)[1]
            out.update({"gpu_s_with_upload": gpu, "gpu_queries_per_s": 32 / gpu, "speedup": cpu / gpu,
                        "ids_equal_cpu": float(np.mean(gpu_ids == cpu_ids))})
        return out

    report.case("pq_search_8bit", pq)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
