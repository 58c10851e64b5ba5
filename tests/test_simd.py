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
    unavailable = [p for p in ("avx2", "avx512", "avx512vnni", "neon") if p not in lf.simd_info()["supported"]]
    for p in unavailable:
        with pytest.raises(ValueError, match="not available"):
            lf.set_simd(p)
    with pytest.raises(TypeError):
        lf.set_simd(3)
    assert lf.simd_info()["active"] == before
