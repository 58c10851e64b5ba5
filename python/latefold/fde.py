"""MUVERA fixed dimensional encodings (Dhulipala et al. 2024, arXiv:2405.19504)."""

from __future__ import annotations

import numbers
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core, _validate, cuda
from .multivectors import MultiVectorsLike, as_items, core_args

PROJECTIONS = ("identity", "ams_sketch", "dense_sign")
PARAMETERS = ("dimension", "num_repetitions", "num_simhash_projections", "seed", "projection_type",
              "projection_dimension", "fill_empty_partitions", "final_projection_dimension")


def _count(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


class FDE:
    """Encodes a set of token vectors as one vector whose inner product approximates MaxSim.

    Semantics of the authors' reference code (google/graph-mining,
    sketching/point_cloud/fixed_dimensional_encoding.cc), with the reference's parameter names:

    Parameters
    ----------
    dimension
        Token dimension d.
    num_repetitions
        R, independent repetitions (default 20, the paper's retrieval setting).
    num_simhash_projections
        k in [0, 30]: SimHash bits per repetition, B = 2^k partitions (default 5).
    seed
        Seed of every random matrix (latefold-rng-v1, identical on every platform).
    projection_type
        ``"identity"`` (d_proj = d), ``"ams_sketch"`` (the reference's sparse sketch: each input
        coordinate goes to one random output slot with a random sign, unscaled; the default) or
        ``"dense_sign"`` (the paper's dense +-1/sqrt(d_proj) matrix).
    projection_dimension
        d_proj for the sketching projections (default 16); leave ``None`` with identity.
    fill_empty_partitions
        Documents only (queries are never filled, as in the reference): an empty partition takes
        the projected token whose SimHash signs are nearest in Hamming distance (ties: the first
        token). Default True.
    final_projection_dimension
        Optional final count sketch of the R * B * d_proj encoding to this many values.

    R * B * d_proj and final_projection_dimension are at most 2^26 values per item (256 MiB of
    float32); larger settings raise ValueError. The encoding of an item is laid out
    ``[repetition][partition][d_proj]`` (before the final projection). Query partitions hold the SUM of their projected tokens, document partitions
    the AVERAGE. Partition indices follow the reference bit for bit (sign bits read as a Gray
    code: partition p holds the sign pattern ``p ^ (p >> 1)``).
    """

    def __init__(
        self,
        dimension: int,
        num_repetitions: int = 20,
        num_simhash_projections: int = 5,
        *,
        seed: int = 1,
        projection_type: str = "ams_sketch",
        projection_dimension: Optional[int] = None,
        fill_empty_partitions: bool = True,
        final_projection_dimension: Optional[int] = None,
    ) -> None:
        if not isinstance(projection_type, str):
            raise TypeError(f"projection_type must be a str, got {type(projection_type).__name__}")
        if projection_type not in PROJECTIONS:
            raise ValueError(f"projection_type must be one of {PROJECTIONS}, got {projection_type!r}")
        if projection_type != "identity" and projection_dimension is None:
            projection_dimension = 16
        if not isinstance(fill_empty_partitions, (bool, np.bool_)):
            raise TypeError("fill_empty_partitions must be a bool")
        self._params: Dict[str, Any] = {
            "dimension": _count(dimension, "dimension", 1, 2**31),
            "num_repetitions": _count(num_repetitions, "num_repetitions", 1, 2**31),
            "num_simhash_projections": _count(num_simhash_projections, "num_simhash_projections", 0, 30),
            "seed": _count(seed, "seed", 0, 2**64 - 1),
            "projection_type": projection_type,
            "projection_dimension": None if projection_dimension is None
            else _count(projection_dimension, "projection_dimension", 1, 2**32 - 1),
            "fill_empty_partitions": bool(fill_empty_partitions),
            "final_projection_dimension": None if final_projection_dimension is None
            else _count(final_projection_dimension, "final_projection_dimension", 1, 2**32 - 1),
        }
        p = self._params
        try:
            self._encoder = _core.FdeEncoder(
                p["dimension"], p["num_repetitions"], p["num_simhash_projections"], p["seed"],
                p["projection_type"], p["projection_dimension"] or 0, p["fill_empty_partitions"],
                p["final_projection_dimension"] or 0,
            )
        except (ValueError, OverflowError) as error:
            raise ValueError(str(error)) from None

    # ------------------------------------------------------------------ properties
    @property
    def params(self) -> Dict[str, Any]:
        """The constructor's arguments (a copy)."""
        return dict(self._params)

    @property
    def output_dim(self) -> int:
        """Length of one encoding: final_projection_dimension, else R * 2^k * d_proj."""
        return int(self._encoder.output_dim)

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"FDE({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FDE) and other._params == self._params

    # ------------------------------------------------------------------ encoding
    def _encode(self, items: MultiVectorsLike, name: str, documents: bool,
                threads: Optional[int], dtype: Any, out: Optional[np.ndarray], device: str) -> np.ndarray:
        out_dtype = np.dtype(dtype)
        if out_dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise TypeError(f"dtype must be float32 or float16, got {out_dtype}")
        t = _validate.threads(threads)
        if cuda.device_index(device) is not None:
            if out is not None:
                raise TypeError("out is for device='cpu'")
            d, single, keep = self._items(items, name, device)
            if keep and out_dtype != np.float32:
                raise TypeError("results on the device are float32")
            result = cuda.result(_core.cuda_fde_encode(self._encoder, d, documents), single, keep)
            return result if keep else result.astype(out_dtype, copy=False)
        mv, single, _ = self._items(items, name, device)
        target = None
        if out is not None:
            if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out_dtype != np.float32:
                raise TypeError("out must be a float32 numpy array (and dtype float32)")
            if not out.flags.c_contiguous:
                raise ValueError("out must be C-contiguous")
            # One item may be written into a 1-D out (through a view of the encoder's shape).
            target = out.reshape(1, -1) if single and out.ndim == 1 else out
        encode = self._encoder.encode_documents if documents else self._encoder.encode_queries
        result = encode(*core_args(mv), t, target)
        if out is not None:
            return out
        result = result.astype(out_dtype, copy=False)
        return result[0] if single else result

    def encode_queries(self, queries: MultiVectorsLike, *, threads: Optional[int] = None,
                       dtype: Any = np.float32, out: Optional[np.ndarray] = None,
                       device: str = "cpu") -> np.ndarray:
        """Query encodings (partition SUMs), ``(n, output_dim)``; ``(output_dim,)`` for one
        2-D array. ``queries``: ``MultiVectors``, a list of 2-D arrays (read where they lie, no
        copy of the corpus, as for `latefold.maxsim`) or one 2-D array. ``dtype`` float32
        (default) or float16. ``out``: a float32 C-contiguous array of that shape to write into
        (and return): reusing one saves allocating and first-touching a large output on every
        call; it is written only once every value has been checked. ``device="cuda"`` (or
        ``"cuda:N"``) encodes on a GPU with the same partitions bit for bit and values within
        float32 rounding (`latefold.cuda`; items may be device arrays or `DeviceMultiVectors`,
        whose results stay on the device as a `DeviceArray`)."""
        return self._encode(queries, "queries", False, threads, dtype, out, device)

    def encode_documents(self, docs: MultiVectorsLike, *, threads: Optional[int] = None,
                         dtype: Any = np.float32, out: Optional[np.ndarray] = None,
                         device: str = "cpu") -> np.ndarray:
        """Document encodings (partition AVERAGEs, empty ones filled if configured); ``docs``,
        ``dtype``, ``out`` and ``device`` as for `encode_queries`."""
        return self._encode(docs, "docs", True, threads, dtype, out, device)

    def partition_indices(self, items: MultiVectorsLike, *, threads: Optional[int] = None,
                          device: str = "cpu") -> np.ndarray:
        """The SimHash partition of every token in every repetition: uint32 ``(T, R)``, rows in
        the order of ``MultiVectors(items).tokens`` (``device`` as for `encode_queries`)."""
        t = _validate.threads(threads)
        d, _, keep = self._items(items, "items", device)
        if cuda.device_index(device) is not None:
            return cuda.result(_core.cuda_fde_partitions(self._encoder, d), False, keep)
        return self._encoder.partition_indices(*core_args(d), t)

    def _items(self, items: MultiVectorsLike, name: str, device: str) -> Tuple[Any, bool, bool]:
        """(items as the call reads them: host items for device='cpu', device items otherwise;
        one 2-D array given; results stay on the device), their dimension checked."""
        if cuda.device_index(device) is not None:
            d, single, keep = cuda.device_items(items, name, device)
        else:
            if cuda.on_device(items):
                raise TypeError(f"{name} are in CUDA device memory: pass device='cuda'")
            (d, single), keep = as_items(items, name), False
        if len(d) and d.dim != self._params["dimension"]:
            raise ValueError(f"{name} have token dimension {d.dim}, the encoder expects "
                             f"{self._params['dimension']}")
        return d, single, keep

    # ------------------------------------------------------------------ the random matrices
    def _repetition(self, r: object) -> int:
        return _count(r, "repetition", 0, self._params["num_repetitions"] - 1)

    def simhash_matrix(self, repetition: int) -> np.ndarray:
        """The Gaussian SimHash matrix of a repetition, float32 ``(dimension, k)``."""
        return self._encoder.simhash_matrix(self._repetition(repetition))

    def projection_matrix(self, repetition: int) -> np.ndarray:
        """The projection of a repetition as a dense float32 ``(dimension, d_proj)`` matrix."""
        return self._encoder.projection_matrix(self._repetition(repetition))

    def final_projection(self) -> Tuple[np.ndarray, np.ndarray]:
        """The final count sketch: output slot (uint32) and sign (float32) of each of the
        R * 2^k * d_proj values; empty arrays without a final projection."""
        return self._encoder.final_projection()

    # ------------------------------------------------------------------ persistence
    def save(self, path: "os.PathLike[str] | str") -> None:
        """Writes the encoder (its parameters and generator version: the matrices follow) to one
        checksummed file, atomically (README, "Files")."""
        self._encoder.save(os.fspath(path))

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "FDE":
        """Reads an encoder written by :meth:`save` (or by latefold 0.1.0). ValueError for a file
        that is damaged, of another kind, or from a newer latefold."""
        return cls._wrap(_core.FdeEncoder.load(os.fspath(path)))

    def __reduce__(self):
        # Pickled (and copied) as the bytes save() writes.
        return FDE._from_bytes, (self._encoder.to_bytes(),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "FDE":
        return cls._wrap(_core.FdeEncoder.from_bytes(image))

    @classmethod
    def _wrap(cls, encoder: Any) -> "FDE":
        """An FDE around a compiled encoder (its parameters read from it)."""
        fde = cls.__new__(cls)
        params = encoder.params()
        fde._params, fde._encoder = {name: params[name] for name in PARAMETERS}, encoder
        return fde

