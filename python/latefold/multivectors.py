"""Ragged sets of token vectors: the input of every latefold engine."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence, Union

import numpy as np

from . import _core
from . import _validate

MultiVectorsLike = Union["MultiVectors", np.ndarray, Sequence[np.ndarray]]


class MultiVectors:
    """n items, item i an ``(L_i, dim)`` matrix of token vectors, stored as float32, float16,
    bfloat16 or int8 (``storage``).

    Stored as one C-contiguous ``tokens`` array ``(T, dim)`` and int64 ``offsets`` ``(n + 1,)``:
    item i is ``tokens[offsets[i]:offsets[i + 1]]``.

    Construction::

        MultiVectors(tokens, offsets)     # flat layout; tokens not copied when C-contiguous
                                          # float32/float16 (offsets are: a private copy)
        MultiVectors([a0, a1, ...])       # list of 2-D arrays (one copy)
        MultiVectors(a)                   # one 2-D array = one item (no copy)
        MultiVectors(int8_tokens, offsets, scales=s)        # int8: token r is s[r] * int8_tokens[r]
        MultiVectors(bits, offsets, dtype="bfloat16")       # bfloat16 given as its uint16 bits
                                                            # (or an ml_dtypes.bfloat16 array)
        lf.quantize(docs, "int8" | "bfloat16")              # converts any set (see quantize)

    Every MaxSim entry point reads int8 and bfloat16 tokens as they are stored (no float copy of
    the documents): int8 with exact integer inner products, queries quantized inside the call
    the same way (a scale per token); bfloat16 with float32 sums, queries rounded to bfloat16.

    ``maxsim``, ``maxsim_rerank``, ``maxsim_topk`` and ``FDE.encode_*`` also take the list
    itself and read its arrays where they lie (no copy), checking its values on every call;
    a MultiVectors pays one copy and one check for any number of calls.

    Every item must hold at least one token and every value must be finite (``ValueError``
    otherwise, naming the item). float16 and float32 are kept as they are; other dtypes raise
    ``TypeError`` (convert explicitly, e.g. ``x.astype(np.float32)``). A list mixing float16 and
    float32 items is stored as float32 (exact). The object is read-only: its arrays are
    non-writeable views, so nothing latefold holds can change behind its back through them.
    """

    __slots__ = ("_tokens", "_offsets", "_scales", "_storage", "_quantized")

    def __init__(self, data: object, offsets: object = None, *, scales: object = None,
                 dtype: Optional[str] = None) -> None:
        if isinstance(data, MultiVectors) and data._quantized is not None and offsets is None \
                and scales is None and dtype in (None, data._storage):
            for name in MultiVectors.__slots__:  # the same read-only arrays, as for float storage
                setattr(self, name, getattr(data, name))
            return
        if scales is not None or dtype is not None or _quantized_array(data):
            self._set_quantized(data, offsets, scales, dtype, "multivectors")
        else:
            self._tokens, self._offsets = _build(data, offsets, "multivectors")
            self._scales = self._quantized = None
            self._storage = self._tokens.dtype.name

    def _set_quantized(self, tokens, offsets, scales, dtype, name) -> None:
        """int8 (with scales) or bfloat16 tokens, validated by the core, held read-only."""
        tokens = np.asarray(tokens)
        if dtype is None:
            dtype = "bfloat16" if tokens.dtype.name == "bfloat16" else tokens.dtype.name
        if dtype not in ("int8", "bfloat16"):
            raise ValueError(f"{name}: scales and dtype= are for int8 and bfloat16 storage, got {dtype}")
        if dtype == "bfloat16" and tokens.dtype.itemsize == 2 and tokens.dtype != np.float16:
            tokens = tokens.view(np.uint16)
        if offsets is None:
            offsets = [0, tokens.shape[0]] if tokens.ndim == 2 else None
            if offsets is None:
                raise ValueError(f"{name}: {dtype} tokens must be a 2-D array, got shape {tokens.shape}")
        tokens = np.require(tokens, requirements=["C", "A"])
        offs = np.array(_validate.int64_array(offsets, "offsets"), dtype=np.int64, order="C", copy=True)
        if scales is not None and np.asarray(scales).dtype.kind == "f":  # a private copy, as offsets
            scales = np.array(scales, dtype=np.float32, order="C", copy=True)
        self._quantized = _core.QuantizedTokens(tokens, offs, scales, dtype, name)
        self._tokens, self._offsets = _read_only(tokens), _read_only(offs)
        self._scales = None if scales is None else _read_only(scales)
        self._storage = dtype

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
    def dtype(self) -> "Union[np.dtype, str]":
        """The storage as a numpy dtype (float32, float16, int8), or the string ``"bfloat16"``
        (numpy has no such dtype; ``tokens`` then holds the uint16 bits)."""
        return "bfloat16" if self._storage == "bfloat16" else self._tokens.dtype

    @property
    def storage(self) -> str:
        """``"float32"``, ``"float16"``, ``"bfloat16"`` or ``"int8"``."""
        return self._storage

    @property
    def scales(self) -> Optional[np.ndarray]:
        """int8 storage: float32 ``(T,)``, token r is ``scales[r] * tokens[r]``; else None."""
        return self._scales

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per item, int64 ``(n,)``."""
        return np.diff(self._offsets)

    @property
    def nbytes(self) -> int:
        extra = 0 if self._scales is None else self._scales.nbytes
        return int(self._tokens.nbytes + self._offsets.nbytes + extra)

    def values(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Token vectors of items [start, stop) as float32 values ``(rows, dim)`` (a new array
        for int8 and bfloat16 storage: scales applied, bfloat16 widened exactly)."""
        stop = len(self) if stop is None else stop
        rows = self._tokens[self._offsets[start] : self._offsets[stop]]
        if self._storage == "int8":
            return rows.astype(np.float32) * self._scales[self._offsets[start] : self._offsets[stop], None]
        if self._storage == "bfloat16":
            return (rows.astype(np.uint32) << 16).view(np.float32)
        return rows

    def __len__(self) -> int:
        return int(self._offsets.shape[0] - 1)

    def __getitem__(self, index):
        """``mv[i]``: item i as a read-only ``(L_i, dim)`` view (int8 and bfloat16 storage: its
        float32 values, a copy). ``mv[a:b]`` (a view, no copy), ``mv[::s]`` and ``mv[int_array]``
        (copies): a new MultiVectors of those items, in the same storage."""
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                stop = max(stop, start)
                offsets = self._offsets[start : stop + 1]
                tokens = self._tokens[offsets[0] : offsets[-1]]
                if self._quantized is not None:
                    scales = None if self._scales is None else self._scales[offsets[0] : offsets[-1]]
                    return MultiVectors(tokens, offsets - offsets[0], scales=scales, dtype=self._storage)
                result = MultiVectors.__new__(MultiVectors)
                result._tokens = tokens
                result._offsets = _read_only(offsets - offsets[0])
                result._scales = result._quantized = None
                result._storage = self._storage
                return result
            index = np.arange(start, stop, step)
        if isinstance(index, (list, tuple, np.ndarray)):
            rows = _validate.int64_array(index, "index")
            if rows.ndim != 1:
                raise IndexError(f"MultiVectors index arrays must be 1-D, got shape {rows.shape}")
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise IndexError(f"an index is out of range for {n} items")
            rows %= max(n, 1)
            if self._quantized is not None:
                lengths = self.lengths[rows]
                offsets = np.zeros(rows.size + 1, np.int64)
                np.cumsum(lengths, out=offsets[1:])
                take = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in rows]) \
                    if rows.size else np.zeros(0, np.int64)
                scales = None if self._scales is None else self._scales[take]
                return MultiVectors(self._tokens[take], offsets, scales=scales, dtype=self._storage)
            return MultiVectors([self[int(i)] for i in rows]) if rows.size else MultiVectors(
                np.zeros((0, self.dim), self.dtype), [0])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"MultiVectors indices must be integers or slices, got {type(index).__name__}")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"item {index} out of range for {n} items")
        i %= n
        if self._quantized is not None:
            return _read_only(self.values(i, i + 1))
        return self._tokens[self._offsets[i] : self._offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"MultiVectors(n={len(self)}, dim={self.dim}, dtype={self._storage}, "
            f"tokens={self._tokens.shape[0]})"
        )

    def __reduce__(self):
        # Pickled (and copied) as the bytes of a latefold container of kind "multivectors".
        return MultiVectors._from_bytes, (_core.multivectors_to_bytes(*core_args(self)),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "MultiVectors":
        tokens, offsets, scales, dtype = _core.multivectors_from_bytes(image)
        if dtype in ("int8", "bfloat16"):
            return cls(tokens, offsets, scales=scales, dtype=dtype)
        return cls(tokens, offsets)


def _quantized_array(data: object) -> bool:
    """Whether `data` is an int8 or bfloat16 array (the storages that need MultiVectors' own
    validation)."""
    dtype = getattr(data, "dtype", None)
    return dtype is not None and getattr(dtype, "name", "") in ("int8", "bfloat16")


def quantize(docs: "MultiVectorsLike", kind: str, *, threads: Optional[int] = None) -> "MultiVectors":
    """``docs`` (any accepted form and storage) in another storage, as a new MultiVectors.

    ``kind``:
      ``"int8"``: symmetric, one float32 scale per token: ``scale = max |x| / 127``, values
      ``x / scale`` rounded to nearest even (each within ``scale / 2``; a token of zeros has
      scale 0). A quarter of float32's bytes.
      ``"bfloat16"``: each value rounded to nearest even (8 bits of mantissa; ``ValueError`` if a
      value would round past 3.39e38). Half of float32's bytes.
      ``"float16"``, ``"float32"``: the values converted with numpy (int8 and bfloat16 sets
      dequantized first).
    ``threads``: for int8 and bfloat16, threads to use (``None``: every core).
    """
    if kind not in ("int8", "bfloat16", "float16", "float32"):
        raise ValueError(f"kind must be 'int8', 'bfloat16', 'float16' or 'float32', got {kind!r}")
    items, single = as_items(docs, "docs")
    if kind in ("int8", "bfloat16"):
        tokens, scales = _core.quantize(*core_args(items), kind, _validate.threads(threads))
        offsets = items._offsets if isinstance(items, MultiVectors) else items.offsets
        return MultiVectors(tokens, offsets, scales=scales, dtype=kind)
    mv = items if isinstance(items, MultiVectors) else as_multivectors(docs, "docs")[0]
    return MultiVectors(mv.values().astype(kind), mv._offsets)


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
        if data._quantized is not None:
            raise TypeError(f"{name}: {data.storage} tokens: convert with lf.quantize(docs, 'float32')")
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
        if items._quantized is not None:
            return items._quantized, None
        return items._tokens, items._offsets
    return items, None


def as_multivectors(value: object, name: str) -> "tuple[MultiVectors, bool]":
    """Any accepted form as MultiVectors; the flag says whether it was a single 2-D array."""
    if isinstance(value, MultiVectors):
        return value, False
    single = not isinstance(value, (list, tuple)) and np.ndim(value) == 2
    result = MultiVectors.__new__(MultiVectors)
    if _quantized_array(value):
        result._set_quantized(value, None, None, None, name)
        return result, single
    result._tokens, result._offsets = _build(value, None, name)
    result._scales = result._quantized = None
    result._storage = result._tokens.dtype.name
    return result, single
