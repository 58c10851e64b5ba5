"""Which SIMD path the kernels use, and a switch for tests and bug reports."""

from __future__ import annotations

from typing import Any, Dict

from . import _core


def simd_info() -> Dict[str, Any]:
    """The active kernel path and what this build and CPU offer.

    Keys: ``active`` (the path in use), ``supported`` (paths this CPU can run, best last),
    ``compiled`` (paths in this build), ``cpu``, ``threads`` (hardware threads) and ``cuda``
    (the GPU engines: `latefold.cuda.cuda_info`). The
    environment variable ``LATEFOLD_SIMD`` (e.g. ``scalar`` or ``avx2``) lowers the choice at
    import time.
    """
    return {
        "active": _core.simd_active(),
        "supported": list(_core.simd_supported()),
        "compiled": list(_core.simd_compiled()),
        "cpu": _core.cpu_description(),
        "threads": int(_core.hardware_threads()),
        "cuda": _core.cuda_status(),
    }


def set_simd(name: str) -> None:
    """Selects the kernel path for the whole process (``"best"`` restores the default).

    Raises ``ValueError`` for a path this build or CPU cannot run. Meant for tests, comparisons
    and bug reports: results of every path agree within float32 rounding.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    _core.set_simd(name)
