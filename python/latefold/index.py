"""`MultiVectorIndex`: multi-vector documents searched by MaxSim, with filters, stable ids,
updates and one memory-mappable file.

Search runs in three stages (cpp/include/latefold/index.h): one candidate vector per document
(the mean of its tokens, or its MUVERA FDE) in a filtered proximity graph, or in large indexes
the inverted lists of the token centroids (PLAID's candidate generation), give ``candidates``
documents; an approximate MaxSim from the tokens' centroid codes (PLAID's centroid interaction,
Santhanam et al. 2022) keeps the best ``rerank``; exact MaxSim over their stored tokens gives the
top k. README.md, "MultiVectorIndex", says how to choose the parameters.
"""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _core, _validate
from .fde import FDE
from .graph import attribute_columns, query_filters
from .multivectors import MultiVectors, as_multivectors

CANDIDATES = ("mean", "fde")
STORAGES = ("float32", "float16")
TOKEN_STORAGES = ("float16", "float32", "bfloat16", "int8")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

SearchResult = Union[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray, List[Dict[str, Any]]]]


class MultiVectorIndex:
    """An index of multi-vector documents (token matrices), searched by MaxSim.

    Parameters
    ----------
    dim : token dimension.
    candidates : the one vector per document the graph holds: ``"mean"`` (the mean of its
        tokens: ``dim`` floats; the default, as good as FDE on transformer hidden states and
        cheapest) or ``"fde"`` (a MUVERA fixed dimensional encoding: better on models trained for
        late interaction, ``fde.output_dim`` floats per document).
    fde : with ``candidates="fde"``, the encoder (an `FDE` of dimension ``dim``); default
        ``FDE(dim, 20, 5, projection_dimension=16, final_projection_dimension=1024)``.
    token_storage : ``"float16"`` (default: half the memory; MaxSim from the rounded values),
        ``"float32"``, ``"bfloat16"`` (half; 8 bits of mantissa) or ``"int8"`` (a quarter, plus a
        float32 scale per token; as ``lf.quantize``). The exact stage runs the storage's kernels
        (int8 / bfloat16: queries quantized inside the search, as in ``lf.maxsim``). Tokens given
        in another type are converted (float16 and bfloat16 reject values beyond their range).
    vector_storage : storage of the candidate vectors in the graph (``"float32"`` or ``"float16"``).
    degree, ef_construction : the graph's (`GraphIndex`).
    centroids : most token centroids per level for stage 2 (0: no stage 2, every candidate is
        scored exactly). The index trains them (k-means over a sample of its tokens) when it first
        holds 16 tokens per centroid for 16 centroids per level, and again each time it has grown
        enough for 4x as many (a power of two, 16 tokens per centroid), up to this number, and
        then each time its live tokens reach 4x those of its last training (centroids trained on
        the first batches of a streamed build know only the clusters those hold), recoding
        every token then: a build costs about that of coding every token twice. More
        centroids approximate MaxSim better in stage 2 and cost more per query (a table of
        ``centroid_levels * centroids`` rows of query-token similarities).
    centroid_levels : codes per token, 1 to 3: its nearest centroid, then per further level the
        nearest residual centroid to what remains (a closer approximation: two bytes a token and
        ``centroids`` table rows per level).
    kmeans_iterations : Lloyd iterations of each centroid training.
    seed : the centroid training's sample and start.
    pool_factor : token pooling at add time (off at 1): each document keeps ceil(L / pool_factor)
        tokens, the means of clusters of similar tokens (hierarchical clustering by cosine, in
        windows of 1,024 tokens; Clavie et al. 2024). Memory and exact-stage time shrink by about
        the factor; scores become MaxSim against the pooled tokens (``get`` returns those).
    compact_fraction : deleted tokens (not counting those a compaction left in a mapped file), as
        a fraction of all stored ones, from which a delete or update compacts the index once it
        has succeeded (Ctrl-C does not stop that compaction;
        one that runs out of memory is left for a later change).

    Documents are token matrices given as a `MultiVectors`, a list of 2-D arrays (one per
    document) or one 2-D array (one document). Ids are int64 chosen by the user (default:
    consecutive, from the number of documents ever stored). Attributes are given per document
    as for `GraphIndex`: ``{"year": int array, "score": float array, "tags": [label array per
    document]}``; the first add fixes the columns.

    Every change is all-or-nothing: an add, update or delete that fails (bad input, out of
    memory, Ctrl-C) leaves the index as it was. Searches may run from many threads at once;
    changes wait for them and they for changes.
    """

    def __init__(self, dim: int, *, candidates: str = "mean", fde: Optional[FDE] = None,
                 token_storage: str = "float16", vector_storage: str = "float32", degree: int = 32,
                 ef_construction: int = 128, centroids: int = 2048, centroid_levels: int = 2,
                 kmeans_iterations: int = 4, seed: int = 0, compact_fraction: float = 0.25,
                 pool_factor: int = 1) -> None:
        dim = _validate.positive_int(dim, "dim")
        if candidates not in CANDIDATES:
            raise ValueError(f"candidates must be one of {CANDIDATES}, got {candidates!r}")
        if token_storage not in TOKEN_STORAGES:
            raise ValueError(f"token_storage must be one of {TOKEN_STORAGES}, got {token_storage!r}")
        if vector_storage not in STORAGES:
            raise ValueError(f"vector_storage must be 'float32' or 'float16', got {vector_storage!r}")
        degree = _validate.positive_int(degree, "degree")
        if not 2 <= degree <= 1024:
            raise ValueError(f"degree must be in [2, 1024], got {degree}")
        centroids = _validate.non_negative_int(centroids, "centroids")
        if centroids > 65536:
            raise ValueError(f"centroids must be at most 65536, got {centroids}")
        levels = _validate.positive_int(centroid_levels, "centroid_levels")
        if levels > 3:
            raise ValueError(f"centroid_levels must be 1, 2 or 3, got {levels}")
        if levels * centroids > 65536:
            raise ValueError(f"centroid_levels * centroids must be at most 65536, got {levels * centroids}")
        iterations = _validate.positive_int(kmeans_iterations, "kmeans_iterations")
        if iterations > 1000:
            raise ValueError(f"kmeans_iterations must be at most 1000, got {iterations}")
        seed = _validate.non_negative_int(seed, "seed")
        if seed > 2**64 - 1:
            raise ValueError("seed must be below 2**64")
        pool_factor = _validate.positive_int(pool_factor, "pool_factor")
        if pool_factor > 16:
            raise ValueError(f"pool_factor must be in [1, 16], got {pool_factor}")
        if isinstance(compact_fraction, bool) or not isinstance(compact_fraction, numbers.Real) \
                or not 0 < float(compact_fraction) <= 1:
            raise ValueError(f"compact_fraction must be in (0, 1], got {compact_fraction!r}")
        params: Dict[str, Any] = {
            "dim": dim, "candidates": candidates, "token_storage": token_storage,
            "vector_storage": vector_storage, "degree": degree,
            "ef_construction": _validate.positive_int(ef_construction, "ef_construction"),
            "centroids": centroids, "centroid_levels": levels, "kmeans_iterations": iterations, "seed": seed,
            "compact_fraction": float(compact_fraction), "pool_factor": pool_factor,
        }
        if candidates == "fde":
            if fde is None:
                fde = FDE(dim, 20, 5, projection_dimension=16, final_projection_dimension=1024)
            if not isinstance(fde, FDE):
                raise TypeError(f"fde must be a latefold.FDE, got {type(fde).__name__}")
            if fde.dimension != dim:
                raise ValueError(f"fde: its dimension {fde.dimension} is not the index's dim {dim}")
            params["fde"] = fde.params
        elif fde is not None:
            raise ValueError("fde is only used with candidates='fde'")
        self._index = _core.MultiVectorIndex(params)
        self._params = self._index.params()  # fixed for the index's life

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return int(self._params["dim"])

    @property
    def params(self) -> Dict[str, Any]:
        """The constructor's arguments (``fde`` as its parameters)."""
        return dict(self._params)

    @property
    def columns(self) -> Dict[str, str]:
        """Attribute column name -> kind (``"int64"``, ``"float64"`` or ``"labels"``)."""
        return dict(self._index.columns())

    @property
    def ids(self) -> np.ndarray:
        """The ids of the documents in the index (in the order they were stored)."""
        return self._index.ids()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, numbers.Integral) and not isinstance(id, bool) and \
            _INT64_MIN <= int(id) <= _INT64_MAX and self._index.contains(int(id))

    def __repr__(self) -> str:
        p = self._params
        return (f"MultiVectorIndex(dim={p['dim']}, candidates={p['candidates']!r}, "
                f"token_storage={p['token_storage']!r}, size={len(self)})")

    def get(self, id: int) -> np.ndarray:
        """The stored tokens of document ``id`` (a copy, in the token storage's dtype; bfloat16
        and int8 storage: their float32 values)."""
        if isinstance(id, bool) or not isinstance(id, numbers.Integral) or not _INT64_MIN <= int(id) <= _INT64_MAX:
            raise TypeError(f"id must be an int64 integer, got {id!r}")
        found = self._index.get(int(id))
        if found is None:
            raise KeyError(id)
        tokens, scales = found
        storage = self._params["token_storage"]
        if storage == "float16":
            return tokens.view(np.float16)
        if storage == "bfloat16":
            return (tokens.astype(np.uint32) << 16).view(np.float32)
        if storage == "int8":
            return tokens.astype(np.float32) * scales[:, None]
        return tokens

    def stats(self) -> Dict[str, Any]:
        """Counts (documents, tokens, deleted tokens, centroids) and the bytes of each part:
        tokens, their centroid codes, the centroids (with their bfloat16 copy, made on loading),
        the centroids' inverted lists (built from the codes, not saved), the candidate vectors, the
        graph's edges and the ids. ``memory_bytes``: what searches keep touching (all but the
        tokens, which a mapped index reads from the file)."""
        s = self._index.stats()
        s["memory_bytes"] = sum(s[part] for part in ("code_bytes", "centroid_bytes", "list_bytes", "vector_bytes",
                                                     "graph_bytes", "id_bytes"))
        s["bytes_per_document"] = (s["token_bytes"] + s["memory_bytes"]) / max(1, s["documents"])
        return s

    # ------------------------------------------------------------------ changes
    def add(self, docs: object, ids: object = None, attributes: Optional[Mapping[str, object]] = None, *,
            progress: bool = False, threads: Optional[int] = None) -> np.ndarray:
        """Adds documents; returns their ids.

        ``docs``: a `MultiVectors`, a list of 2-D arrays, one 2-D array, or an iterable of
        batches (a generator, ...), each one of those or a tuple ``(docs, ids)`` / ``(docs, ids,
        attributes)``: batches are added one at a time, so memory holds one batch besides the
        index (its token rows go into blocks allocated once and never moved; its other arrays, a
        few percent of the token bytes, grow by doubling, at most 1 GiB at a time). Each batch is all-or-nothing; an error in a batch raises
        after the batches before it were added. ``progress=True`` shows a progress bar (tqdm when installed, else a line
        on stderr). Ids must be new and distinct (ValueError naming them)."""
        if _is_batch(docs):
            return self._add(docs, ids, attributes, False, threads)
        if ids is not None or attributes is not None:
            raise TypeError("add: with an iterable of batches, give ids and attributes in each batch")
        out: List[np.ndarray] = []
        with _Progress(progress) as bar:
            for batch in docs:  # type: ignore[attr-defined]
                parts = batch if isinstance(batch, tuple) else (batch,)
                if not 1 <= len(parts) <= 3:
                    raise TypeError("add: a batch is docs, (docs, ids) or (docs, ids, attributes)")
                out.append(self._add(*parts, *(None,) * (3 - len(parts)), False, threads))
                bar.update(len(out[-1]))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def update(self, ids: object, docs: object, attributes: Optional[Mapping[str, object]] = None, *,
               threads: Optional[int] = None) -> None:
        """Replaces the documents with these ids (their tokens, and their attributes, which an
        index with attribute columns needs again). Unknown ids raise ValueError."""
        if ids is None:
            raise TypeError("update: ids are required")
        self._add(docs, ids, attributes, True, threads)

    def delete(self, ids: object, *, threads: Optional[int] = None) -> None:
        """Removes documents by id: they leave every result at once. Unknown or repeated ids raise
        ValueError and delete nothing."""
        array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64, copy=True).reshape(-1) \
            if np.ndim(ids) <= 1 else None
        if array is None:
            raise ValueError(f"ids must be 1-D, got shape {np.shape(ids)}")
        self._index.remove(array, _validate.threads(threads))

    def compact(self, *, threads: Optional[int] = None) -> None:
        """Repairs the graph around deleted documents and frees their tokens now (deletes and
        updates do it on their own once ``compact_fraction`` of the tokens are deleted). Tokens
        in a mapped file (``load(mmap=True)``) stay there, and in ``stats()["deleted_tokens"]``,
        until the index is saved: a saved index holds no deleted token."""
        self._index.compact(_validate.threads(threads))

    # ------------------------------------------------------------------ search
    def search(self, queries: object, k: int = 10, *, filter: object = None, candidates: Optional[int] = None,
               rerank: Optional[int] = None, ef: Optional[int] = None, probe: Optional[int] = None,
               exact: bool = False, query_ball: Optional[float] = None, threads: Optional[int] = None,
               explain: bool = False) -> SearchResult:
        """Top-k documents by MaxSim for each query: ``(scores, ids)``, float32 / int64 arrays
        ``(n_queries, k)`` (1-D for one 2-D array), best first (ties: lower id first), padded with
        ``-inf`` and ``-1`` only when fewer than k documents match.

        ``filter``: a `Filter`, a bool mask indexed by id, an int array of allowed ids, or a list
        with one of these (or None) per query.

        Stage 1 takes its documents from one of two sources. ``probe``: each query token probes
        the inverted lists of its ``probe`` nearest centroids (PLAID's candidate generation), and
        the documents found go on (a query whose lists hold fewer than k matching documents probes
        4x as many, then takes the graph's); ``0``: the graph of candidate vectors; default
        (None): the lists from 50,000 documents on, where one vector per document loses recall
        (bench/README.md, "Scaling"), the graph below. ``candidates``:
        the most documents stage 1 gives (default: 256 from the graph, 8,192 from the lists,
        ranked there by the summed similarity of the query tokens that probed them); ``ef``: the
        graph's beam width (default ``candidates``). ``rerank``: the documents stage 2 (the
        centroid interaction) keeps for exact MaxSim, at least k (default: 3 sqrt(n) of the
        query's n stage-1 documents, at least 48). More of any of them: higher recall, slower.

        ``exact=True`` scores every document that passes the filter. ``query_ball`` (off by
        default): stage 2 scores each query as its balls of this inner-product radius (MUVERA's
        ball carving: tokens with <q, q'> >= query_ball merged into their sum), fewer query tokens
        for the centroid table; stage 3 still uses every query token. ``explain=True`` adds a
        list with, per query, stage 1's path ("graph", "gated", "acorn", "exact" when it took
        every match, "lists"), matches, vectors scored or list entries read, nodes visited or
        lists probed, the documents of each stage, and each stage's seconds (stage 1 from the
        graph: the batch's time over its queries)."""
        q, single = as_multivectors(queries, "queries")
        k = _validate.positive_int(k, "k")
        candidates = None if candidates is None else _validate.positive_int(candidates, "candidates")
        rerank = None if rerank is None else _validate.positive_int(rerank, "rerank")
        ef = 0 if ef is None else _validate.positive_int(ef, "ef")
        probe = -1 if probe is None else min(_validate.non_negative_int(probe, "probe"), 65536)
        ball = 0.0
        if query_ball is not None:
            if isinstance(query_ball, bool) or not isinstance(query_ball, numbers.Real) or not 0 < float(query_ball) <= 1e30:
                raise ValueError(f"query_ball must be a positive number, got {query_ball!r}")
            ball = float(query_ball)
        if not isinstance(exact, (bool, np.bool_)) or not isinstance(explain, (bool, np.bool_)):
            raise TypeError("exact and explain must be bools")
        if q.dim != self.dim:
            raise ValueError(f"queries: tokens have dimension {q.dim}, the index {self.dim}")
        size = len(self)
        # Beyond the index's size every value means the same; capping keeps the buffers small.
        k, candidates, rerank, ef = (-1 if v is None else min(v, max(size, 1)) for v in (k, candidates, rerank, ef))
        filters = query_filters(filter, len(q))
        tokens = np.ascontiguousarray(q.values(), dtype=np.float32)  # int8 / bfloat16: their values
        scores, ids, info = self._index.search(tokens, np.array(q.offsets, dtype=np.int64), filters, k, candidates,
                                               ef, rerank, probe, ball, bool(exact), 0, 0.0,
                                               _validate.threads(threads))
        if single:
            scores, ids = scores[0], ids[0]
        if not explain:
            return scores, ids
        keys = ("path", "matches", "distances", "visited", "candidates", "rescored", "exact",
                "seconds_candidates", "seconds_rescore", "seconds_exact")
        return scores, ids, [dict(zip(keys, entry)) for entry in info]

    # ------------------------------------------------------------------ persistence
    def save(self, path: "os.PathLike[str] | str") -> None:
        """Writes the index to one checksummed file, atomically (README, "Files"). Searches may
        run meanwhile; changes wait until it is written."""
        self._index.save(os.fspath(path))

    @classmethod
    def load(cls, path: "os.PathLike[str] | str", *, mmap: bool = False, verify: bool = True) -> "MultiVectorIndex":
        """Reads an index written by :meth:`save`. ``mmap=True`` leaves the tokens, graph and
        codes in the mapped file (an index larger than memory can be searched; the first change
        copies the codes and graph into memory, never the mapped token rows: added rows are
        held in memory beside them; the file is never written). ``verify=False`` skips the
        checksums of the array sections (everything a search follows is still checked)."""
        if not isinstance(mmap, (bool, np.bool_)) or not isinstance(verify, (bool, np.bool_)):
            raise TypeError("mmap and verify must be bools")
        return cls._wrap(_core.MultiVectorIndex.load(os.fspath(path), bool(mmap), bool(verify)))

    def __reduce__(self):
        return MultiVectorIndex._from_bytes, (self._index.to_bytes(),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "MultiVectorIndex":
        return cls._wrap(_core.MultiVectorIndex.from_bytes(image))

    @classmethod
    def _wrap(cls, core: Any) -> "MultiVectorIndex":
        index = cls.__new__(cls)
        index._index = core
        index._params = core.params()
        return index

    # ------------------------------------------------------------------ helpers
    def _add(self, docs: object, ids: object, attributes: Optional[Mapping[str, object]], update: bool,
             threads: Optional[int]) -> np.ndarray:
        mv, _ = as_multivectors(docs, "docs")
        n = len(mv)
        slots = self._index.stats()["slots"]
        if mv.dim != self.dim:
            raise ValueError(f"docs: tokens have dimension {mv.dim}, the index {self.dim}")
        if ids is None:
            id_array = np.arange(slots, slots + n, dtype=np.int64)
        else:
            id_array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64, copy=True).reshape(-1) \
                if np.ndim(ids) <= 1 else np.zeros((0, 0))
            if id_array.shape != (n,):
                raise ValueError(f"ids must have shape ({n},), got {np.shape(ids)}")
        columns = attribute_columns(attributes, n, self.columns, slots > 0)  # the binding copies them
        # A list was concatenated into arrays of our own, and int8 / bfloat16 sets are read as their
        # values (a new array); other inputs are copied (the core reads them twice, checks then
        # stores, without the GIL), unless nothing can change them (a read-only memory map: a
        # corpus larger than memory is then not held twice).
        values = mv.values()
        own = isinstance(docs, (list, tuple)) or mv.storage in ("int8", "bfloat16") or _validate.frozen(values)
        tokens = _storage_tokens(values, self._params["token_storage"], copy=not own)
        self._index.add(tokens, np.array(mv.offsets, dtype=np.int64), id_array, columns, update,
                        _validate.threads(threads))
        return id_array


def _is_batch(docs: object) -> bool:
    """Whether `docs` is one batch of documents rather than an iterable of batches."""
    return isinstance(docs, (MultiVectors, list, tuple, np.ndarray)) or hasattr(docs, "__array__")


def _storage_tokens(tokens: np.ndarray, storage: str, copy: bool) -> np.ndarray:
    """Tokens in the storage type, in an array of our own (the core reads it without the GIL):
    copied when `copy` or when the type changes."""
    if storage != "float16":  # float32; bfloat16 and int8 are converted from float32 by the core
        return np.array(tokens, dtype=np.float32, order="C", copy=True if copy else None)
    with np.errstate(over="ignore"):
        half = np.array(tokens, dtype=np.float16, order="C", copy=True if copy else None)
    if tokens.dtype != np.float16:
        bad = ~np.isfinite(half).all(axis=1) & np.isfinite(tokens).all(axis=1)
        if bad.any():
            raise ValueError(f"docs: token row {int(np.argmax(bad))} overflows float16 storage")
    return half


class _Progress:
    """A progress bar over documents added: tqdm when installed, else a line on stderr."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        self._count = 0
        self._enabled = bool(enabled)
        if self._enabled:
            try:
                from tqdm import tqdm
                self._bar = tqdm(unit="doc", desc="adding")
            except ImportError:
                self._bar = None

    def __enter__(self) -> "_Progress":
        return self

    def update(self, n: int) -> None:
        self._count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled:
            sys.stderr.write(f"\radded {self._count} documents")
            sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            sys.stderr.write("\n")
