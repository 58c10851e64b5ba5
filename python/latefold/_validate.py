"""Shared argument checks. Messages name the argument (and the item or row where there is one).

Rules (DESIGN.md, "Input rules"): a wrong type or a dtype that cannot be converted safely raises
TypeError; a wrong shape, mismatched dimension, non-finite value, empty item, bad offsets, unknown
id or k <= 0 raises ValueError. Nothing is modified before every check has passed.
"""

from __future__ import annotations

import numbers
import sys
from typing import Optional

import numpy as np


def threads(value: object) -> Optional[int]:
    """``None`` (all cores) or a positive int; calls use at most 4 x the hardware threads
    (``_core.max_threads()``), whatever larger number is asked for."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"threads must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"threads must be at least 1 (or None for all cores), got {value}")
    return int(value)


def frozen(array: np.ndarray) -> bool:
    """Whether nothing in this process can change the array's values while a call reads them
    without the GIL: it and every array it views are read-only, and the memory they view belongs
    to a read-only buffer (a read-only memory map, bytes). An array owning its memory is never
    frozen (any thread may make it writeable again)."""
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return False
        if array.base is None:
            return False
        array = array.base
    try:
        return memoryview(array).readonly
    except TypeError:
        return False


def positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def result_count(value: object, name: str, rows: int) -> int:
    """A positive int k for results of shape (rows, k); one whose results could not even be
    addressed (8-byte ids) is a ValueError naming it, not an error of the allocation."""
    k = positive_int(value, name)
    if k > sys.maxsize // 8 // max(rows, 1):
        raise ValueError(f"{name} = {k} is too large: {rows} x {k} results cannot be allocated")
    return k


def non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def int64_array(value: object, name: str) -> np.ndarray:
    """An integer array as C-contiguous int64 (copied only when needed); floats and bools refused."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)  # np.asarray([]) is float64: an empty list is fine
        else:
            raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values beyond the int64 range")
    return np.require(array, dtype=np.int64, requirements=["C", "A"])


def mask_or_ids(value: object, name: str) -> np.ndarray:
    """A filter given as an array: a bool mask (returned as it is) or ids (as int64, see
    int64_array). 8-bit integer arrays are refused: 0/1 bytes read as a mask or as ids differ."""
    array = np.asarray(value)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 1:
        raise TypeError(f"{name}: a {array.dtype} array is ambiguous (a 0/1 mask or ids?); pass a bool "
                        f"mask (.astype(bool)) or ids of a wider integer type (.astype(np.int64))")
    if array.dtype == np.bool_:
        return array
    return int64_array(array, name)


TOKEN_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


def token_matrix(value: object, name: str) -> np.ndarray:
    """A 2-D float32 or float16 array, C-contiguous and aligned (copied only when it is not)."""
    if not isinstance(value, np.ndarray):
        if hasattr(value, "__array__") or isinstance(value, (list, tuple)):
            value = np.asarray(value)
        else:
            raise TypeError(f"{name} must be a 2-D numpy array, got {type(value).__name__}")
    if value.dtype not in TOKEN_DTYPES:
        hint = " (convert with .astype(np.float32))" if value.dtype.kind in "fiu" else ""
        raise TypeError(f"{name} must be float32 or float16, got {value.dtype}{hint}")
    if value.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (tokens x dim), got shape {value.shape}")
    if value.shape[1] < 1:
        raise ValueError(f"{name} has token dimension 0")
    return np.require(value, requirements=["C", "A"])


def float_matrix(x: object, name: str, dim: Optional[int] = None, owner: str = "quantizer",
                 finite: bool = True) -> np.ndarray:
    """A float32/float16 (n, dim) matrix as C-contiguous float32 with finite values (checked
    unless `finite` is False: the caller checks the rows it reads)."""
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float16):
        hint = " (convert with .astype(np.float32))" if array.dtype.kind in "fiu" else ""
        raise TypeError(f"{name} must be float32 or float16, got {array.dtype}{hint}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name} has dimension {array.shape[1]}, the {owner} expects {dim}")
    # np.ascontiguousarray would keep a contiguous but misaligned array as it is.
    array = np.require(array, dtype=np.float32, requirements=["C", "A"])
    if finite and not np.isfinite(array).all():  # one pass in the common case, the row on failure
        bad = ~np.isfinite(array).all(axis=1)
        raise ValueError(f"{name}: row {int(np.argmax(bad))} holds a NaN or infinite value")
    return array
