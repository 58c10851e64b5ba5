"""Product quantization with 8-bit codes and 4-bit fast-scan codes (Jegou et al., TPAMI 2011;
André et al., VLDB 2015), and the k-means that trains it."""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core, _validate, cuda

METRICS = ("ip", "l2")
ROTATIONS = (None, "random", "opq")
MAX_ROTATED_DIM = 4096


def kmeans(x: object, k: int, *, iterations: int = 25, seed: int = 1,
           init: Optional[np.ndarray] = None, threads: Optional[int] = None
           ) -> Tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means from k-means++ seeds (or from `init`), deterministic for a seed and
    independent of the thread count.

    Returns ``(centroids (k, d) float32, assignment (n,) uint32, objective)`` where objective is
    the sum of squared distances to the nearest centroid. ``iterations=0`` returns the seeds."""
    data = _validate.float_matrix(x, "x")
    k = _validate.positive_int(k, "k")
    if k > data.shape[0]:
        raise ValueError(f"k = {k} is larger than the number of points ({data.shape[0]})")
    iterations = _validate.non_negative_int(iterations, "iterations")
    start = None if init is None else _validate.float_matrix(init, "init", data.shape[1])
    if start is not None and start.shape[0] != k:
        raise ValueError(f"init has {start.shape[0]} rows, expected k = {k}")
    return _core.kmeans(data, k, iterations, _seed(seed), start, _validate.threads(threads))


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError("seed must be an int in [0, 2^64)")
    return int(seed)


class PackedCodes:
    """4-bit codes with their fast-scan layout, made by :meth:`ProductQuantizer.pack`.

    The fast scan reads codes in blocks of 32 vectors with their bytes transposed; a search of
    plain codes builds that layout on every call, which costs about as much as scanning them
    once (it dominates single-query searches). Packing once removes that cost; the plain codes
    are kept too (by reference, not copied) for the re-scoring of the shortlist, so the packed
    form adds about one code size per vector. ``len`` is the number of vectors; ``codes`` the
    plain ``(n, code_size)`` codes (a read-only view). The array given to ``pack`` must not be
    changed afterwards (pack again if it is): the two forms would then disagree.
    """

    __slots__ = ("_codes", "_data")

    def __init__(self, codes: np.ndarray, data: np.ndarray) -> None:
        codes = codes.view()
        codes.setflags(write=False)
        data.setflags(write=False)
        self._codes, self._data = codes, data

    def __len__(self) -> int:
        return int(self._codes.shape[0])

    @property
    def codes(self) -> np.ndarray:
        """The plain codes ``(n, code_size)`` (a read-only view)."""
        return self._codes

    @property
    def nbytes(self) -> int:
        """Bytes of the fast-scan layout (beside the plain codes)."""
        return int(self._data.nbytes)

    def __repr__(self) -> str:
        return f"PackedCodes(n={len(self)}, code_size={self._codes.shape[1]})"

    def __reduce__(self):
        # Pickled (and copied) as the bytes of a latefold container of kind "packed_codes".
        return PackedCodes._from_bytes, (_core.packed_codes_to_bytes(self._codes, self._data),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "PackedCodes":
        return cls(*_core.packed_codes_from_bytes(image))


class ProductQuantizer:
    """Product quantizer: ``m`` sub-vectors, each replaced by the nearest of 2^nbits centroids.

    Parameters
    ----------
    dim
        Vector dimension.
    m
        Number of sub-vectors, ``1 <= m <= dim``. When ``m`` does not divide ``dim`` the first
        ``dim % m`` sub-vectors are one coordinate wider than the others.
    nbits
        8 (256 centroids per sub-vector, one byte each) or 4 (16 centroids, two sub-vectors per
        byte, scanned with SIMD shuffles: "fast scan").
    metric
        ``"ip"`` (scores = inner products with the decoded vectors, higher is better) or
        ``"l2"`` (squared distances, lower is better).
    rotation
        ``None`` (default), ``"random"`` or ``"opq"``: an orthogonal dim x dim rotation R chosen
        by :meth:`train` and applied before quantization (x is quantized as ``x @ R``; queries
        too, so scores keep their meaning; :meth:`decode` rotates back). ``"random"`` is a
        seeded random rotation, which evens out the variance of the sub-vectors (Jegou et al.,
        ICASSP 2010; on the embeddings of bench/README.md it changed recall by -0.05 to +0.01).
        ``"opq"`` learns R (Ge, He, Ke, Sun, "Optimized Product Quantization", CVPR 2013,
        non-parametric form: alternating PQ training and an orthogonal Procrustes step from a
        random start): the lowest reconstruction error of the three, at several trainings'
        cost (there: +0.03 to +0.09 recall on the pooled embeddings at 5-20x the training
        time, nothing on isotropic synthetic vectors).
        Encoding, tables and decoding then cost one dim x dim product per vector (dim at most
        4096 with a rotation).

    Codes are uint8 arrays ``(n, code_size)``; ``code_size = m`` for 8 bits and ``ceil(m / 2)``
    for 4 bits (low nibble = even sub-vector).
    """

    def __init__(self, dim: int, m: int, nbits: int = 8, metric: str = "ip",
                 rotation: Optional[str] = None) -> None:
        if not isinstance(metric, str):
            raise TypeError("metric must be a str")
        if metric not in METRICS:
            raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}")
        dim = _validate.positive_int(dim, "dim")
        m = _validate.positive_int(m, "m")
        if isinstance(nbits, bool) or not isinstance(nbits, numbers.Integral):
            raise TypeError("nbits must be an int")
        if nbits not in (4, 8):
            raise ValueError(f"nbits must be 4 or 8, got {nbits}")
        if m > dim:
            raise ValueError(f"m = {m} is larger than dim = {dim}")
        if rotation is not None and not isinstance(rotation, str):
            raise TypeError(f"rotation must be None or a str, got {type(rotation).__name__}")
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be None, 'random' or 'opq', got {rotation!r}")
        if rotation is not None and dim > MAX_ROTATED_DIM:
            raise ValueError(f"a rotation is a dense dim x dim matrix (dim^2 multiply-adds per vector): "
                             f"dim must be at most {MAX_ROTATED_DIM}, got {dim}")
        self._params: Dict[str, Any] = {"dim": dim, "m": m, "nbits": int(nbits), "metric": metric}
        if rotation is not None:
            self._params["rotation"] = rotation
        self._pq = _core.ProductQuantizer(dim, m, int(nbits), metric, rotation or "none")

    # ------------------------------------------------------------------ description
    dim = property(lambda self: self._params["dim"])
    m = property(lambda self: self._params["m"])
    nbits = property(lambda self: self._params["nbits"])
    metric = property(lambda self: self._params["metric"])

    @property
    def rotation(self) -> Optional[np.ndarray]:
        """The trained rotation R, float32 ``(dim, dim)`` (a copy), or None."""
        return self._pq.rotation()

    @property
    def ksub(self) -> int:
        return 1 << self._params["nbits"]

    @property
    def code_size(self) -> int:
        return int(self._pq.code_size)

    @property
    def is_trained(self) -> bool:
        return bool(self._pq.trained)

    @property
    def subspace_bounds(self) -> np.ndarray:
        """Sub-vector s covers coordinates ``bounds[s]:bounds[s + 1]``."""
        return np.asarray(self._pq.subspace_bounds(), dtype=np.int64)

    @property
    def centroids(self) -> list:
        """Per sub-vector, a float32 ``(ksub, width)`` array (copies)."""
        self._require_trained()
        flat = self._pq.centroids()
        b = self.subspace_bounds
        return [flat[self.ksub * b[s]: self.ksub * b[s + 1]].reshape(self.ksub, b[s + 1] - b[s])
                for s in range(self.m)]

    def __repr__(self) -> str:
        state = "trained" if self.is_trained else "untrained"
        rotation = f", rotation={self._params['rotation']!r}" if "rotation" in self._params else ""
        return (f"ProductQuantizer(dim={self.dim}, m={self.m}, nbits={self.nbits}, metric={self.metric!r}"
                f"{rotation}, {state})")

    def _require_trained(self) -> None:
        if not self._pq.trained:
            raise ValueError("the quantizer is not trained: call train() first")

    # ------------------------------------------------------------------ training and codes
    def train(self, x: object, *, iterations: int = 25, seed: int = 1,
              max_training_points: Optional[int] = None, opq_iterations: int = 8,
              threads: Optional[int] = None) -> "ProductQuantizer":
        """k-means (k-means++ seeds, Lloyd) per sub-vector on float32/float16 ``x`` ``(n, dim)``,
        ``n >= 2^nbits``; at most ``max_training_points`` rows (default 256 * 2^nbits, a seeded
        sample). With a rotation, R is chosen first, in the C++ core, on that sample:
        ``"random"`` is the Q of a Householder QR of a Gaussian matrix from the portable
        generator latefold-rng-v1, signs fixed so that it is uniformly distributed;
        ``"opq"`` does ``opq_iterations`` alternations of a 4-iteration PQ training and a
        Procrustes step from that start. Returns self.

        Deterministic for a seed and independent of ``threads``. The ``"random"`` rotation is
        the same bits on every platform and SIMD path (float64 arithmetic in a fixed order);
        the centroids, and an ``"opq"`` rotation, also depend on float32 products whose
        summation order differs between SIMD paths (``lf.simd_info()``), so across machines
        they agree to rounding, not bit for bit."""
        data = _validate.float_matrix(x, "x", self.dim)
        if data.shape[0] < self.ksub:
            raise ValueError(f"training needs at least {self.ksub} vectors, got {data.shape[0]}")
        iterations = _validate.non_negative_int(iterations, "iterations")
        opq_iterations = _validate.non_negative_int(opq_iterations, "opq_iterations")
        limit = 256 * self.ksub if max_training_points is None else _validate.positive_int(
            max_training_points, "max_training_points")
        # A new core, swapped in once trained: a failed training leaves the quantizer as it was,
        # and calls running meanwhile on other threads keep the old one.
        core = _core.ProductQuantizer(self.dim, self.m, self.nbits, self.metric,
                                      self._params.get("rotation", "none"))
        core.train(data, iterations, _seed(seed), limit, _validate.threads(threads), opq_iterations)
        self._pq = core
        return self

    def encode(self, x: object, *, threads: Optional[int] = None) -> np.ndarray:
        """uint8 codes ``(n, code_size)``: each sub-vector's nearest centroid (L2)."""
        self._require_trained()
        return self._pq.encode(_validate.float_matrix(x, "x", self.dim), _validate.threads(threads))

    def _codes(self, codes: object) -> np.ndarray:
        array = np.asarray(codes)
        if array.dtype != np.uint8:
            raise TypeError(f"codes must be uint8, got {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.code_size:
            raise ValueError(f"codes must have shape (n, {self.code_size}), got {array.shape}")
        array = np.require(array, requirements=["C", "A"])
        if self.nbits == 4 and self.m % 2 and array.size and (array[:, -1] >> 4).any():
            raise ValueError("codes: the unused high nibble of the last byte must be 0")
        return array

    def pack(self, codes: object, *, threads: Optional[int] = None) -> PackedCodes:
        """4-bit codes in the fast-scan layout, for repeated :meth:`search` calls (see
        :class:`PackedCodes`)."""
        if self.nbits != 4:
            raise ValueError("only 4-bit codes have a fast-scan layout (nbits=8 searches row-major codes)")
        c = self._codes(codes)
        return PackedCodes(c, self._pq.pack(c, _validate.threads(threads)))

    def decode(self, codes: object, *, threads: Optional[int] = None) -> np.ndarray:
        """The vectors the codes (row-major or packed) stand for, float32 ``(n, dim)``."""
        self._require_trained()
        if isinstance(codes, PackedCodes):
            codes = codes.codes
        return self._pq.decode(self._codes(codes), _validate.threads(threads))

    def _packed(self, packed: PackedCodes) -> PackedCodes:
        size = packed.codes.shape[1]
        if self.nbits != 4 or size != self.code_size:
            raise ValueError(f"packed codes of {size} bytes per vector do not fit this "
                             f"quantizer ({self.nbits}-bit, {self.code_size} bytes per vector)")
        return packed

    def reconstruction_error(self, x: object) -> float:
        """Mean squared L2 error of encode-decode over the rows of ``x``."""
        data = _validate.float_matrix(x, "x", self.dim)
        decoded = self.decode(self.encode(data))
        return float(np.mean(np.sum((decoded.astype(np.float64) - data) ** 2, axis=1)))

    def lut(self, queries: object, *, threads: Optional[int] = None) -> np.ndarray:
        """ADC lookup tables, float32 ``(n_queries, m, ksub)``: ``<q_s, c>`` (ip) or
        ``||q_s - c||^2`` (l2) for every sub-vector s and centroid c."""
        self._require_trained()
        return self._pq.lut(_validate.float_matrix(queries, "queries", self.dim), _validate.threads(threads))

    def search(self, codes: object, queries: object, k: int, *, allowed: object = None,
               rescore: int = 4, vectors: object = None,
               threads: Optional[int] = None, device: str = "cpu") -> Tuple[np.ndarray, np.ndarray]:
        """Top-k of the coded vectors by asymmetric distance (queries are not quantized).

        Parameters
        ----------
        codes
            uint8 ``(n, code_size)``, or 4-bit codes packed by :meth:`pack` (faster: the
            row-major ones are laid out for the fast scan on every call).
        allowed
            Optional filter: a bool mask ``(n,)`` or an array of allowed row ids (any integer
            type of 16 bits or more; 8-bit integer arrays, ambiguous, raise TypeError); only
            those vectors are scored.
        rescore
            4-bit codes: the fast scan uses 7-bit quantized tables (each score off by at most
            ``m * delta / 2``, delta = the widest table's range / 127, or the sum of the
            tables' ranges / (65535 - m) where that is larger: the scan adds in 16 bits, so
            4-bit searches take m <= 32767); the best ``rescore * k`` candidates are then
            re-scored with the float tables. 0 returns the fast-scan estimates. 8-bit codes
            are scored with the float tables directly.
        vectors
            Optional float32 ``(n, dim)``, the vectors the codes stand for: the best
            ``rescore * k`` candidates (both code widths; ``rescore`` >= 1) are then re-scored
            exactly from them, and the scores returned are exact.
        device
            ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``: the scan on a GPU (`latefold.cuda`)
            with the float tables for both code widths (exact ADC scores: ``rescore`` is not
            needed and ``vectors`` is not taken), the top k selected on the device. ``codes`` may
            then also be a uint8 device array, read in place; results are numpy arrays, or
            `DeviceArray` for device codes.

        Returns
        -------
        ``(scores, ids)`` float32 / int64 ``(n_queries, k)``, best first (ip: descending, l2:
        ascending); ids ``-1`` (and NaN scores) where fewer than k vectors are allowed. A k
        larger than the number of codes only pads: no more than the codes are selected.
        """
        self._require_trained()
        index = cuda.device_index(device)
        if cuda.is_device_array(codes):
            if index is None:
                raise TypeError("codes are in CUDA device memory: pass device='cuda'")
            packed, c = None, codes
            n = int(cuda.array_shape(codes)[0])
        else:
            packed = self._packed(codes)._data if isinstance(codes, PackedCodes) else None
            c = codes.codes if packed is not None else self._codes(codes)
            n = c.shape[0]
        q = _validate.float_matrix(queries, "queries", self.dim)
        k = _validate.result_count(k, "k", q.shape[0])
        rescore = min(_validate.non_negative_int(rescore, "rescore"), sys.maxsize)  # beyond n, the same
        mask = None
        if allowed is not None:
            a = _validate.mask_or_ids(allowed, "allowed")
            if a.dtype == bool:
                if a.shape != (n,):
                    raise ValueError(f"allowed mask must have shape ({n},), got {a.shape}")
                bits = a
            else:
                if a.ndim != 1:
                    raise ValueError("allowed ids must be 1-D")
                if a.size and (a.min() < 0 or a.max() >= n):
                    raise ValueError(f"allowed ids must lie in [0, {n})")
                bits = np.zeros(n, dtype=bool)
                bits[a] = True
            mask = np.packbits(bits, bitorder="little")
        t = _validate.threads(threads)
        if index is not None:
            if vectors is not None:
                raise TypeError("vectors (exact re-scoring) is for device='cpu': the GPU scan is exact ADC")
            cuda.require(index)
            scores, ids = _core.cuda_pq_search(self._pq, c, q, k, mask, index)
            keep = cuda.is_device_array(codes)
            return cuda.result(scores, False, keep), cuda.result(ids, False, keep)
        rows = None
        if vectors is not None:
            # Only the candidates' rows are read, and checked for NaN / infinity in C++.
            rows = _validate.float_matrix(vectors, "vectors", self.dim, finite=False)
            if rows.shape[0] != n:
                raise ValueError(f"vectors must have one row per code ({n}), got {rows.shape[0]}")
        return self._pq.search(c, q, k, rescore, mask, t, packed, rows)

    # ------------------------------------------------------------------ persistence
    def _copy(self) -> "ProductQuantizer":
        """An independent copy (parameters and trained state)."""
        return ProductQuantizer._wrap(self._pq.copy())

    @classmethod
    def _wrap(cls, core: Any) -> "ProductQuantizer":
        """A quantizer around a compiled one (its parameters read from it)."""
        pq = cls.__new__(cls)
        params = core.params()
        pq._params = {name: params[name] for name in ("dim", "m", "nbits", "metric", "rotation") if name in params}
        pq._pq = core
        return pq

    def save(self, path: "os.PathLike[str] | str") -> None:
        """Writes parameters, centroids and rotation to one checksummed file, atomically
        (README, "Files")."""
        self._pq.save(os.fspath(path))

    def __reduce__(self):
        # Pickled (and copied) as the bytes save() writes.
        return ProductQuantizer._from_bytes, (self._pq.to_bytes(),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "ProductQuantizer":
        return cls._wrap(_core.ProductQuantizer.from_bytes(image))

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "ProductQuantizer":
        """Reads a quantizer written by :meth:`save` (or by latefold 0.1.0)."""
        return cls._wrap(_core.ProductQuantizer.load(os.fspath(path)))

