"""Ragged sets of token vectors: the input of every latefold engine."""

from __future__ import annotations

from typing import Iterator, Sequence, Union

import numpy as np

from . import _core
from . import _validate

MultiVectorsLike = Union["MultiVectors", np.ndarray, Sequence[np.ndarray]]


class MultiVectors:
    """n items, item i an ``(L_i, dim)`` matrix of float32 or float16 token vectors.

    Stored as one C-contiguous ``tokens`` array ``(T, dim)`` and int64 ``offsets`` ``(n + 1,)``:
    item i is ``tokens[offsets[i]:offsets[i + 1]]``.

    Construction::

        MultiVectors(tokens, offsets)     # flat layout; tokens not copied when C-contiguous
                                          # float32/float16 (offsets are: a private copy)
        MultiVectors([a0, a1, ...])       # list of 2-D arrays (one copy)
        MultiVectors(a)                   # one 2-D array = one item (no copy)

    ``maxsim``, ``maxsim_rerank``, ``maxsim_topk`` and ``FDE.encode_*`` also take the list
    itself and read its arrays where they lie (no copy), checking its values on every call;
    a MultiVectors pays one copy and one check for any number of calls.

    Every item must hold at least one token and every value must be finite (``ValueError``
    otherwise, naming the item). float16 and float32 are kept as they are; other dtypes raise
    ``TypeError`` (convert explicitly, e.g. ``x.astype(np.float32)``). A list mixing float16 and
    float32 items is stored as float32 (exact). The object is read-only: its arrays are
    non-writeable views, so nothing latefold holds can change behind its back through them.
    """

    __slots__ = ("_tokens", "_offsets")

    def __init__(self, data: object, offsets: object = None) -> None:
        self._tokens, self._offsets = _build(data, offsets, "multivectors")

    @property
    def tokens(self) -> np.ndarray:
        """All token vectors, ``(T, dim)``, read-only."""
        return self._tokens

    @property
    def offsets(self) -> np.ndarray:
        """int64 ``(n + 1,)``; item i is ``tokens[offsets[i]:offsets[i + 1]]``. Read-only."""
        return self._offsets

    @property
    def dim(self) -> int:
        return int(self._tokens.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self._tokens.dtype

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per item, int64 ``(n,)``."""
        return np.diff(self._offsets)

    @property
    def nbytes(self) -> int:
        return int(self._tokens.nbytes + self._offsets.nbytes)

    def __len__(self) -> int:
        return int(self._offsets.shape[0] - 1)

    def __getitem__(self, index):
        """``mv[i]``: item i as a read-only ``(L_i, dim)`` view. ``mv[a:b]`` (a view, no copy),
        ``mv[::s]`` and ``mv[int_array]`` (copies): a new MultiVectors of those items."""
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                stop = max(stop, start)
                offsets = self._offsets[start : stop + 1]
                result = MultiVectors.__new__(MultiVectors)
                result._tokens = self._tokens[offsets[0] : offsets[-1]]
                result._offsets = _read_only(offsets - offsets[0])
                return result
            index = np.arange(start, stop, step)
        if isinstance(index, (list, tuple, np.ndarray)):
            rows = _validate.int64_array(index, "index")
            if rows.ndim != 1:
                raise IndexError(f"MultiVectors index arrays must be 1-D, got shape {rows.shape}")
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise IndexError(f"an index is out of range for {n} items")
            return MultiVectors([self[int(i)] for i in rows]) if rows.size else MultiVectors(
                np.zeros((0, self.dim), self.dtype), [0])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"MultiVectors indices must be integers or slices, got {type(index).__name__}")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"item {index} out of range for {n} items")
        i %= n
        return self._tokens[self._offsets[i] : self._offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"MultiVectors(n={len(self)}, dim={self.dim}, dtype={self.dtype}, "
            f"tokens={self._tokens.shape[0]})"
        )

    def __reduce__(self):
        # Pickled (and copied) as the bytes of a latefold container of kind "multivectors".
        return MultiVectors._from_bytes, (_core.multivectors_to_bytes(self._tokens, self._offsets),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "MultiVectors":
        tokens, offsets = _core.multivectors_from_bytes(image)
        return cls(tokens, offsets)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _from_items(items: Sequence[object]) -> "tuple[np.ndarray, np.ndarray]":
    matrices = [_validate.token_matrix(x, f"item {i}") for i, x in enumerate(items)]
    if not matrices:
        raise ValueError("an empty list has no token dimension: use MultiVectors(tokens, [0])")
    dims = {m.shape[1] for m in matrices}
    if len(dims) != 1:
        first = matrices[0].shape[1]
        bad = next(i for i, m in enumerate(matrices) if m.shape[1] != first)
        raise ValueError(
            f"item {bad} has dimension {matrices[bad].shape[1]}, item 0 has {first}"
        )
    dtypes = {m.dtype for m in matrices}
    dtype = np.float16 if dtypes == {np.dtype(np.float16)} else np.float32
    offsets = np.zeros(len(matrices) + 1, dtype=np.int64)
    np.cumsum([m.shape[0] for m in matrices], out=offsets[1:])
    tokens = np.concatenate(matrices, axis=0).astype(dtype, copy=False)
    return np.ascontiguousarray(tokens), offsets


def _build(data: object, offsets: object, name: str) -> "tuple[np.ndarray, np.ndarray]":
    """Validated, read-only (tokens, offsets) for any accepted form; errors start with `name`."""
    if isinstance(data, MultiVectors):
        if offsets is not None:
            raise TypeError(f"{name}: offsets must not be given with a MultiVectors")
        return data._tokens, data._offsets
    try:
        if offsets is not None:
            tokens = _validate.token_matrix(data, "tokens")
            # A copy of our own (n + 1 integers): offsets are checked once and read later without
            # the GIL, when another thread could change the caller's array.
            offs = np.array(_validate.int64_array(offsets, "offsets"), dtype=np.int64, order="C", copy=True)
            if offs.ndim != 1:
                raise ValueError(f"offsets must be 1-D, got shape {offs.shape}")
        elif isinstance(data, (list, tuple)):
            tokens, offs = _from_items(data)
        elif isinstance(data, np.ndarray) or hasattr(data, "__array__"):
            tokens = _validate.token_matrix(data, "tokens")
            offs = np.array([0, tokens.shape[0]], dtype=np.int64)
        else:
            raise TypeError(
                "expected (tokens, offsets), a list of 2-D arrays or one 2-D array, "
                f"got {type(data).__name__}"
            )
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name}: {error}") from None
    _core.validate_multivectors(tokens, offs, name)
    return _read_only(tokens), _read_only(offs)


def as_items(value: object, name: str) -> "tuple[Union[MultiVectors, _core.RaggedItems], bool]":
    """What a core call reads: a list or tuple of 2-D arrays as ``_core.RaggedItems`` (the arrays
    read where they lie, through a table of their addresses: no copy of the whole corpus; an item
    that is strided, misaligned, not an ndarray, or float16 among float32 items is copied alone),
    any other form as MultiVectors. Both have ``len`` and ``dim``; the flag says whether it was a
    single 2-D array. Errors as for MultiVectors(value)."""
    if isinstance(value, (list, tuple)):
        return _core.RaggedItems(value, name, _validate.token_matrix), False
    return as_multivectors(value, name)


def core_args(items: "Union[MultiVectors, _core.RaggedItems]") -> tuple:
    """The (tokens, offsets) arguments of a core call for as_items' result."""
    if isinstance(items, MultiVectors):
        return items._tokens, items._offsets
    return items, None


def as_multivectors(value: object, name: str) -> "tuple[MultiVectors, bool]":
    """Any accepted form as MultiVectors; the flag says whether it was a single 2-D array."""
    if isinstance(value, MultiVectors):
        return value, False
    single = not isinstance(value, (list, tuple)) and np.ndim(value) == 2
    result = MultiVectors.__new__(MultiVectors)
    result._tokens, result._offsets = _build(value, None, name)
    return result, single
