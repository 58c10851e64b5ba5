"""Shared fixtures: a seed for fresh random inputs, and every SIMD path of this build and CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import latefold as lf

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("LATEFOLD_HYPOTHESIS_PROFILE", "default"))

SIMD_PATHS = lf.simd_info()["supported"]


def pytest_report_header(config):
    info = lf.simd_info()
    return f"latefold {lf.__version__}: SIMD active={info['active']} supported={info['supported']}"


@pytest.fixture
def rng(request):
    """A fresh generator per test; LATEFOLD_SEED pins it (the seed is printed on failure)."""
    seed = int(os.environ.get("LATEFOLD_SEED", np.random.SeedSequence().entropy % 2**32))
    request.node.user_properties.append(("seed", seed))
    print(f"LATEFOLD_SEED={seed}")
    return np.random.default_rng(seed)


@pytest.fixture(params=SIMD_PATHS)
def simd(request):
    """Runs the test once per available SIMD path, restoring the default afterwards."""
    previous = lf.simd_info()["active"]
    lf.set_simd(request.param)
    yield request.param
    lf.set_simd(previous)
