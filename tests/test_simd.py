"""Dispatch: observable, forceable by environment variable and at run time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import latefold as lf


def test_info_is_consistent():
    info = lf.simd_info()
    assert info["active"] in info["supported"]
    assert set(info["supported"]) <= set(info["compiled"])
    assert info["supported"][0] == "scalar" and info["threads"] >= 1


@pytest.mark.parametrize("path", lf.simd_info()["supported"])
def test_environment_variable_lowers_the_path(path):
    env = dict(os.environ, LATEFOLD_SIMD=path)
    out = subprocess.run(
        [sys.executable, "-c", "import latefold as lf; print(lf.simd_info()['active'])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == path


def test_environment_variable_cannot_raise_or_break_the_path():
    env = dict(os.environ, LATEFOLD_SIMD="no-such-path")
    out = subprocess.run(
        [sys.executable, "-c", "import latefold as lf; print(lf.simd_info()['active'])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == lf.simd_info()["supported"][-1]


def test_set_simd_rejects_unknown_and_unavailable():
    before = lf.simd_info()["active"]
    with pytest.raises(ValueError, match="unknown"):
        lf.set_simd("sse9")
    unavailable = [p for p in ("avx2", "avx2vnni", "avx512", "avx512vnni", "avx512bf16", "amx", "neon")
                   if p not in lf.simd_info()["supported"]]
    for p in unavailable:
        with pytest.raises(ValueError, match="not available"):
            lf.set_simd(p)
    with pytest.raises(TypeError):
        lf.set_simd(3)
    assert lf.simd_info()["active"] == before


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


@pytest.mark.parametrize("path, flags", [
    ("avx2vnni", {"avx2", "fma", "f16c", "avx_vnni"}),
    ("avx512bf16", {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vbmi", "avx512_vnni", "avx512_bf16"}),
    ("amx", {"avx512_bf16", "avx512_vnni", "avx512vbmi", "amx_tile", "amx_int8", "amx_bf16"}),
])
def test_paths_reported_where_the_cpu_has_them(path, flags):
    """cpuid's view (as Linux lists it) and the reported paths agree; AMX also needs the tile state,
    which Linux grants since 5.16."""
    have = _cpu_flags()
    if not flags <= have:
        pytest.skip(f"this CPU lacks {sorted(flags - have)}")
    if path not in lf.simd_info()["compiled"]:
        pytest.skip(f"{path} is not compiled into this build (compiler too old)")
    assert path in lf.simd_info()["supported"]
