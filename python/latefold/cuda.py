"""The optional CUDA engines: whether they are usable, documents held on a GPU, and the
``device="cuda"`` form of the MaxSim entry points.

Device arrays of other libraries (PyTorch, CuPy, JAX, ...) are read in place through
``__cuda_array_interface__`` or ``__dlpack__``; results computed from device inputs come back as
`DeviceArray` (which exports both protocols: ``torch.from_dlpack(out)``, ``cupy.asarray(out)``,
``np.asarray(out)`` copies to the host). Nothing here imports PyTorch, CuPy or JAX.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core
from .multivectors import MultiVectors, MultiVectorsLike, as_items, core_args

DeviceArray = _core.DeviceArray


def cuda_info() -> Dict[str, Any]:
    """What this build and machine offer: ``built`` (the module has CUDA kernels), ``usable``
    (a driver and a device of compute capability 8.0 or later), ``reason`` (why not, else
    empty), ``runtime_version``, ``driver_version`` and ``devices`` (index, name,
    compute_capability, memory_bytes, multiprocessors)."""
    return _core.cuda_status()


def cuda_available() -> bool:
    """Whether ``device="cuda"`` can run here (see `cuda_info` for why not)."""
    return bool(_core.cuda_status()["usable"])


def device_index(device: object) -> Optional[int]:
    """``"cpu"`` -> None; ``"cuda"`` -> 0; ``"cuda:N"`` -> N (ValueError otherwise)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a str ('cpu', 'cuda' or 'cuda:N'), got {type(device).__name__}")
    if device == "cpu":
        return None
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def require(index: int) -> None:
    """RuntimeError saying why when CUDA device `index` cannot be used."""
    info = _core.cuda_status()
    if not info["usable"]:
        raise RuntimeError(f"device='cuda' is not available: {info['reason']}")
    devices = {d["index"]: d for d in info["devices"]}
    if index not in devices:
        raise ValueError(f"device cuda:{index} does not exist ({len(info['devices'])} CUDA devices)")
    if tuple(devices[index]["compute_capability"]) < (8, 0):
        raise RuntimeError(f"device cuda:{index} has compute capability "
                           f"{devices[index]['compute_capability']}: the kernels need 8.0 or later")


def array_shape(obj: object) -> Tuple[int, ...]:
    """The shape of a device array (by its interface, else its ``shape``)."""
    if hasattr(obj, "__cuda_array_interface__"):
        return tuple(obj.__cuda_array_interface__["shape"])
    return tuple(obj.shape)


def is_device_array(obj: object) -> bool:
    """An array of another library in CUDA memory (``__cuda_array_interface__``, or
    ``__dlpack__`` with a CUDA device)."""
    if isinstance(obj, (np.ndarray, DeviceMultiVectors)):
        return False
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        try:
            return int(obj.__dlpack_device__()[0]) in (2, 13)  # kDLCUDA, kDLCUDAManaged
        except Exception:
            return False
    return False


class DeviceMultiVectors:
    """Multi-vectors in CUDA device memory: the documents of repeated ``device="cuda"`` calls.

    Construction::

        DeviceMultiVectors(tokens, offsets)            # a (T, dim) device array, read in place
        DeviceMultiVectors(tokens, offsets, scales=s)  # int8 tokens, a float32 scale per token
        DeviceMultiVectors(bits, offsets, dtype="bfloat16")   # bfloat16 as uint16 (or a bf16 tensor)
        lf.to_device(docs)                             # a copy of host documents (any form)

    ``tokens`` is a CUDA array of another library (PyTorch, CuPy, JAX: anything with
    ``__cuda_array_interface__`` or ``__dlpack__``) with contiguous rows, in float32, float16,
    bfloat16 or int8 storage; it is kept alive and read in place, never copied. ``offsets``
    (int64, host or device) is copied and validated as for `MultiVectors`; every value is
    checked finite on the device (``ValueError`` naming the item). Do not change the tokens
    while this object is used.
    """

    __slots__ = ("_core",)

    def __init__(self, tokens: object, offsets: object = None, *, scales: object = None,
                 dtype: Optional[str] = None) -> None:
        if isinstance(tokens, _core.DeviceTokens):
            self._core = tokens
            return
        if not is_device_array(tokens):
            raise TypeError("tokens must be a CUDA device array (__cuda_array_interface__ or __dlpack__); "
                            "for host arrays use lf.to_device(docs)")
        if offsets is None:
            shape = array_shape(tokens)
            if len(shape) != 2:
                raise ValueError(f"multivectors: tokens must be a 2-D array, got shape {tuple(shape)}")
            offsets = np.array([0, shape[0]], dtype=np.int64)
        elif not is_device_array(offsets):
            offsets = np.asarray(offsets)
            if offsets.dtype.kind not in "iu":
                raise TypeError(f"offsets must be integers, got {offsets.dtype}")
            offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if dtype is not None and dtype not in ("float32", "float16", "bfloat16", "int8"):
            raise ValueError(f"dtype must be a token storage name, got {dtype!r}")
        if scales is not None and not is_device_array(scales):
            scales = np.ascontiguousarray(scales, dtype=np.float32)
        self._core = _core.DeviceTokens.from_foreign(tokens, offsets, scales, dtype, "multivectors")

    @property
    def dim(self) -> int:
        return int(self._core.dim)

    @property
    def storage(self) -> str:
        """``"float32"``, ``"float16"``, ``"bfloat16"`` or ``"int8"``."""
        return self._core.storage

    @property
    def device(self) -> str:
        return f"cuda:{self._core.device}"

    @property
    def offsets(self) -> np.ndarray:
        """int64 ``(n + 1,)`` (a host copy)."""
        return self._core.offsets()

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        return int(self._core.nbytes)

    def __len__(self) -> int:
        return int(self._core.count)

    def __repr__(self) -> str:
        return f"DeviceMultiVectors(n={len(self)}, dim={self.dim}, storage={self.storage}, device={self.device})"

    def to_host(self) -> MultiVectors:
        """A `MultiVectors` copy in host memory (the same storage)."""
        tokens, offsets, scales = self._core.to_host()
        if self.storage == "int8":
            return MultiVectors(tokens, offsets, scales=scales)
        if self.storage == "bfloat16":
            return MultiVectors(tokens, offsets, dtype="bfloat16")
        return MultiVectors(tokens, offsets)


def to_device(docs: MultiVectorsLike, device: str = "cuda") -> DeviceMultiVectors:
    """A copy of host documents (a `MultiVectors`, a list of 2-D arrays or one 2-D array, in
    any storage) in the memory of a CUDA device, for repeated ``device="cuda"`` calls."""
    index = device_index(device)
    if index is None:
        raise ValueError("to_device needs a CUDA device ('cuda' or 'cuda:N')")
    require(index)
    d, _ = as_items(docs, "docs")
    return DeviceMultiVectors(_core.DeviceTokens.upload(*core_args(d), index, "docs"))


# ----------------------------------------------------------------- device="cuda" entry points


def _queries(queries: object) -> Tuple[object, bool, bool]:
    """(host queries, single, given on a device)."""
    if isinstance(queries, DeviceMultiVectors):
        return queries.to_host(), False, True
    if is_device_array(queries):
        return DeviceMultiVectors(queries).to_host(), True, True
    q, single = as_items(queries, "queries")
    return q, single, False


def device_items(items: object, name: str, device: str) -> Tuple[Any, bool, bool]:
    """(items on the device, one 2-D array given, given on a device): host items are copied
    for the call."""
    index = device_index(device)
    require(index)
    if isinstance(items, DeviceMultiVectors):
        if items._core.device != index:
            raise ValueError(f"{name} are on {items.device}, the call asks for cuda:{index}")
        return items._core, False, True
    if is_device_array(items):
        d = DeviceMultiVectors(items)._core
        if d.device != index:
            raise ValueError(f"{name} are on cuda:{d.device}, the call asks for cuda:{index}")
        return d, True, True
    mv, single = as_items(items, name)
    return _core.DeviceTokens.upload(*core_args(mv), index, name), single, False


def prepare(queries: object, docs: object, device: str):
    """The arguments of a CUDA call: (host queries, device docs, single, results on device)."""
    index = device_index(device)
    require(index)
    q, single, q_device = _queries(queries)
    d, _, d_device = device_items(docs, "docs", device)
    if len(q) and len(d) and q.dim != d.dim:
        raise ValueError(f"queries have token dimension {q.dim} but docs have {d.dim}")
    return q, d, single, q_device or d_device


def result(out: DeviceArray, single: bool, on_device: bool):
    """A CUDA call's result as the caller asked: a DeviceArray for device inputs, else numpy."""
    if single:
        out = out.reshape(list(out.shape[1:]))
    return out if on_device else out.numpy()


def on_device(*args: object) -> bool:
    """Whether any argument lives on a CUDA device."""
    return any(isinstance(a, DeviceMultiVectors) or is_device_array(a) for a in args)
