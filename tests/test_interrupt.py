"""Ctrl-C stops long calls part-way and leaves objects as they were. Each case runs in a
subprocess that signals itself 0.3 s into a call that would run for seconds; what shows that the
call stopped part-way is its effect (an output buffer not filled to the end, an object unchanged),
not a timing. The delay between the signal and the stop is printed (about 0.05 s here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.concurrency

SCRIPT = textwrap.dedent("""
    import hashlib, os, signal, sys, tempfile, threading, time
    import numpy as np
    import latefold as lf

    # Python's own SIGINT handler, even where this process was started with SIGINT ignored (a
    # background job of a non-interactive shell is).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = np.random.default_rng(0)
    case, threads = sys.argv[1], int(sys.argv[2])

    def interrupted_after(call, delay=0.3):
        timer = threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        start = time.perf_counter()
        try:
            call()
        except KeyboardInterrupt:
            return time.perf_counter() - start - delay
        finally:
            timer.cancel()
        raise SystemExit("the call finished before the signal: make it longer")

    if case == "maxsim":
        docs = lf.MultiVectors(rng.standard_normal((4000 * 100, 128)).astype(np.float32), np.arange(0, 400_001, 100))
        q = lf.MultiVectors(rng.standard_normal((800 * 32, 128)).astype(np.float32), np.arange(0, 25_601, 32))
        late = interrupted_after(lambda: lf.maxsim(q, docs, threads=threads))
    elif case == "fde":
        docs = lf.MultiVectors(rng.standard_normal((40_000 * 100, 64)).astype(np.float32), np.arange(0, 4_000_001, 100))
        fde = lf.FDE(64)
        out = np.full((len(docs), fde.output_dim), np.nan, np.float32)
        late = interrupted_after(lambda: fde.encode_documents(docs, threads=threads, out=out))
        assert np.isnan(out[-1]).all(), "the encoding ran to the end"
    elif case == "pq":
        x = rng.standard_normal((200_000, 128)).astype(np.float32)
        pq = lf.ProductQuantizer(128, 64).train(x[:5000], iterations=1)
        before = pq.centroids
        late = interrupted_after(lambda: pq.train(x, iterations=50, max_training_points=200_000, threads=threads))
        assert all(np.array_equal(a, b) for a, b in zip(pq.centroids, before)), "train changed the quantizer"
    else:
        x = rng.standard_normal((60_000, 64)).astype(np.float32)
        g = lf.GraphIndex(64)
        g.add(x[:2000], attributes={"year": np.arange(2000)}, threads=threads)
        path = os.path.join(tempfile.mkdtemp(), "g.lf")
        g.save(path)
        before = hashlib.sha256(open(path, "rb").read()).hexdigest()
        late = interrupted_after(lambda: g.add(x[2000:], attributes={"year": np.arange(2000, 60_000)}, threads=threads))
        g.save(path)
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before, "the add changed the index"
        assert len(g) == 2000
    print(f"late {late:.3f}")
""")


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", ["maxsim", "fde", "pq", "graph"])
def test_ctrl_c_stops_a_long_call_and_changes_nothing(case, threads):
    out = subprocess.run([sys.executable, "-c", SCRIPT, case, str(threads)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    print(out.stdout)
