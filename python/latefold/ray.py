"""Scale-out on Ray: a `MultiVectorIndex` sharded over Ray actors (`ShardedIndex`), searched by
fanning queries out to every shard and merging their top-k on the driver, and FDE encoding of Ray
Datasets (`encode_fde`). Needs the optional extra ``latefold[ray]``; ``import latefold`` never
imports ray.

Design (README.md, "Scale-out on Ray"):

* Shards: one `MultiVectorIndex` per actor, every one built with the same parameters (the FDE
  encoder is a pure function of its parameters, so candidates agree across shards). Stage-2
  token centroids are trained by each shard on its own tokens as it grows, as a single index
  does: the scores that leave a shard are exact MaxSim over its stored tokens, so they compare
  across shards whatever each shard's centroids are; centroids only choose which candidates a
  shard scores exactly, and shard-local ones fit the shard's data and cost no extra pass.
* Routing: document ``id`` lives on shard ``shard_of(id, num_shards)``, the splitmix64 mix of
  the id's 64 bits modulo the number of shards (a fixed function: the same on every machine,
  Python version and run, unlike ``hash()``).
* Changes are validated on the driver before anything is sent; ids that must (not) exist are
  checked by their shards first, and only then is the change sent (all-or-nothing against bad
  input; one driver changes an index at a time).
* A Ray Dataset can instead be added by the shards themselves (``add(ds, parallel=True)``): each
  selects its rows by id from the whole Dataset and adds them, so no document passes through the
  driver; each shard checks its own rows, so an error stops that shard only.
* Every shard counts its changes (a generation). The driver knows each shard's generation, and
  every answer carries the shard's own, so a shard that restarted from an older file is noticed
  instead of answering without the documents added since.
"""

from __future__ import annotations

import json
import numbers
import os
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import ray
import ray.exceptions

from . import _validate
from .fde import FDE
from .graph import Filter, attribute_columns
from .index import MultiVectorIndex, _is_batch, _storage_tokens
from .multivectors import MultiVectors, as_multivectors

MANIFEST = "manifest.json"
FORMAT = "latefold.ShardedIndex"
FORMAT_VERSION = 1
ROUTING = "splitmix64(id) mod num_shards"
_INT64_MAX = 2**63 - 1

__all__ = ["ShardError", "ShardedIndex", "encode_fde", "shard_of"]


class ShardError(RuntimeError):
    """A shard cannot answer for what the driver knows it holds (dead, or restarted without its
    latest documents). ``shard`` is its number."""

    def __init__(self, shard: int, message: str) -> None:
        super().__init__(f"shard {shard}: {message}")
        self.shard = shard


def shard_of(ids: object, num_shards: int) -> np.ndarray:
    """The shard of each id: splitmix64's finalizer of the id's 64 bits (two's complement),
    modulo ``num_shards``.

    Parameters
    ----------
    ids : int64 ids (any shape).
    num_shards : number of shards (at least 1).

    Returns
    -------
    int64 array of ids' shape, values in ``[0, num_shards)``.
    """
    num_shards = _validate.positive_int(num_shards, "num_shards")
    array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64)
    # 1-D: numpy scalars (a 0-d input's arithmetic) warn on the wrap-around that arrays do silently.
    z = array.reshape(-1).astype(np.uint64)  # wraps
    z += np.uint64(0x9E3779B97F4A7C15)  # uint64 arrays wrap silently: the arithmetic is mod 2**64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z % np.uint64(num_shards)).astype(np.int64).reshape(array.shape)


# ------------------------------------------------------------------------------------- shard actor

def _index_from_params(params: Mapping[str, Any]) -> MultiVectorIndex:
    kwargs = dict(params)
    dim = kwargs.pop("dim")
    if "fde" in kwargs:
        kwargs["fde"] = FDE(**kwargs["fde"])
    return MultiVectorIndex(dim, **kwargs)


class _Shard:
    """One shard: a MultiVectorIndex in a Ray actor, with the count of changes it has applied.

    Ray restarts a dead shard by running ``__init__`` again with the same arguments: from its
    file when it was loaded from one, else empty; the driver then compares generations."""

    def __init__(self, params: Dict[str, Any], path: Optional[str], generation: int) -> None:
        if path is None:
            self.index, self.generation = _index_from_params(params), 0
        else:
            self.index, self.generation = MultiVectorIndex.load(path, mmap=True), generation
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed

    def state(self) -> Tuple[int, int, bool]:
        return self.generation, len(self.index), self.restarted

    # Every answer ends with the shard's generation: the driver checks it is the one it knows.
    def missing(self, ids: np.ndarray, present: bool) -> Tuple[np.ndarray, int]:
        """The ids that are not in the index (present=True) or that are (present=False)."""
        return np.array([i for i in ids.tolist() if (i in self.index) != present], dtype=np.int64), self.generation

    def change(self, expected: int, kind: str, ids: np.ndarray, tokens: Optional[np.ndarray],
               offsets: Optional[np.ndarray], attributes: Optional[dict],
               threads: Optional[int]) -> Tuple[bool, int, int]:
        """Applies an add, update or delete if this shard is at the generation the driver
        expects (else nothing: a shard restarted from an older state must not take changes on
        top of it); returns whether it did, and the generation and size after."""
        if self.generation != expected:
            return False, self.generation, len(self.index)
        if kind == "delete":
            self.index.delete(ids, threads=threads)
        elif kind == "update":
            self.index.update(ids, MultiVectors(tokens, offsets), attributes, threads=threads)
        else:
            self.index.add(MultiVectors(tokens, offsets), ids, attributes, threads=threads)
        self.generation += 1
        return True, self.generation, len(self.index)

    def build(self, expected: int, dataset: Any, shard: int, num_shards: int, batch_size: int,
              threads: Optional[int], columns: Dict[str, str], has_rows: bool) -> tuple:
        """Adds this shard's rows of a Ray Dataset (those whose id routes here), read here batch
        by batch: the documents never pass through the driver. Each batch is checked (ids
        distinct and new, attribute columns those of the index) and added as one change; the
        first bad batch stops the build, and the batches before it stay.

        Returns whether it ran (not at the generation the driver expects: nothing done), the
        generation and size after, the ids added, the index's columns, and the error that
        stopped it (``(type name, message)``) or None."""
        if self.generation != expected:
            return False, self.generation, len(self.index), np.zeros(0, dtype=np.int64), {}, None
        added: List[np.ndarray] = []
        error = None
        try:
            rows = dataset.map_batches(_rows_of_shard, batch_format="pyarrow", batch_size=None,
                                       zero_copy_batch=True, fn_kwargs={"shard": shard, "num_shards": num_shards})
            for docs, ids, attributes in _dataset_batches(rows, batch_size, need_ids=True):
                if ids.dtype.kind not in "iu":  # missing values make a float or object column
                    raise TypeError(f"add: column 'id' must hold integers without missing values, got {ids.dtype}")
                ids = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64).reshape(-1)
                if (shard_of(ids, num_shards) != shard).any():  # the selection above was skipped
                    raise ValueError("add: a Dataset batch's ids could not be routed to shards")
                _no_repeats(ids, " in the Dataset")
                old = np.array([i for i in ids.tolist() if i in self.index], dtype=np.int64)
                if len(old):  # added by an earlier batch of this build, or before it
                    earlier = np.isin(old, np.concatenate(added)) if added else np.zeros(len(old), dtype=bool)
                    if earlier.any():
                        raise ValueError(f"ids: {_some(old[earlier])} repeated in the Dataset")
                    raise ValueError(f"ids: {_some(old)} {'is' if len(old) == 1 else 'are'} already in the index")
                if has_rows:  # the index's columns, though this shard may hold no rows yet
                    attribute_columns(attributes, len(ids), columns, True)
                self.index.add(docs, ids, attributes, threads=threads)
                self.generation += 1
                added.append(ids)
        except Exception as caught:  # reported with the state it left, which the driver records
            error = _error_of(caught)
        ids_added = np.concatenate(added) if added else np.zeros(0, dtype=np.int64)
        return True, self.generation, len(self.index), ids_added, self.index.columns, error

    def search(self, queries: Tuple[np.ndarray, np.ndarray], filters: "_Filters", k: int,
               options: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray, int]:
        scores, ids = self.index.search(MultiVectors(*queries), k, filter=filters.build(), **options)
        return scores, ids, self.generation

    def stats(self) -> Tuple[Dict[str, Any], int]:
        return self.index.stats(), self.generation

    def save(self, path: str) -> Tuple[int, int]:
        self.index.save(path)
        return len(self.index), self.generation

    def restore(self, path: str, generation: int) -> Tuple[int, int]:
        self.index, self.generation = MultiVectorIndex.load(path, mmap=True), generation
        return self.generation, len(self.index)


# ---------------------------------------------------------------------------------- sharded index

class ShardedIndex:
    """A `MultiVectorIndex` split over ``num_shards`` Ray actors, searched as one.

    Parameters
    ----------
    num_shards : number of shards (actors), at least 1.
    dim : token dimension.
    actor_options : options of every shard actor (``ray.remote(...).options``), e.g.
        ``{"num_cpus": 8}`` or a ``scheduling_strategy``; default ``{"scheduling_strategy":
        "SPREAD"}`` (shards spread over the cluster's nodes).
    max_restarts : how often Ray restarts a dead shard (``-1``: always). A restarted shard
        reloads its last saved file; if documents changed since, searches raise `ShardError`.
    restart_timeout : seconds to wait for a restarting shard before raising `ShardError`.
    **index_params : the `MultiVectorIndex` parameters, the same for every shard (``candidates``,
        ``fde``, ``token_storage``, ``centroids``, ...).

    Documents are routed to shards by id (`shard_of`). Default ids are assigned by the driver:
    consecutive, from one past the largest id ever added, never reused. The first add fixes the
    attribute columns of every shard. Searches return what `MultiVectorIndex.search` on the
    union of the shards returns: ``exact=True`` searches are identical; approximate ones search
    ``candidates`` per shard (at least as many in all as one index would).
    """

    def __init__(self, num_shards: int, dim: int, *, actor_options: Optional[Mapping[str, Any]] = None,
                 max_restarts: int = 3, restart_timeout: float = 60.0, **index_params: Any) -> None:
        num_shards = _validate.positive_int(num_shards, "num_shards")
        params = MultiVectorIndex(dim, **index_params).params  # validated here, before any actor
        self._setup(num_shards, params, actor_options, max_restarts, restart_timeout)
        self._start([None] * num_shards, [0] * num_shards)

    def _setup(self, num_shards: int, params: Dict[str, Any], actor_options: Optional[Mapping[str, Any]],
               max_restarts: int, restart_timeout: float) -> None:
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, numbers.Integral) or max_restarts < -1:
            raise ValueError(f"max_restarts must be an int >= -1, got {max_restarts!r}")
        if isinstance(restart_timeout, bool) or not isinstance(restart_timeout, numbers.Real) or not restart_timeout > 0:
            raise ValueError(f"restart_timeout must be a positive number of seconds, got {restart_timeout!r}")
        if actor_options is not None and not isinstance(actor_options, Mapping):
            raise TypeError(f"actor_options must be a dict, got {type(actor_options).__name__}")
        self._num_shards, self._params = num_shards, params
        self._options = {"scheduling_strategy": "SPREAD", **(actor_options or {}),
                         "max_restarts": int(max_restarts), "max_task_retries": 0}
        self._restart_timeout = float(restart_timeout)
        self._generation = [0] * num_shards  # changes applied, per shard, as the driver knows
        self._sent = [0] * num_shards        # ... and sent (in flight during a streamed add)
        self._counts = [0] * num_shards      # documents per shard
        self._saved: List[Optional[Tuple[str, int]]] = [None] * num_shards  # last file, its generation
        self._columns: Dict[str, str] = {}
        self._has_rows = False  # any add ever succeeded: columns are fixed
        self._next_id = 0

    def _start(self, paths: Sequence[Optional[str]], generations: Sequence[int]) -> None:
        remote = ray.remote(_Shard).options(**self._options)
        self._actors = [remote.remote(self._params, p, g) for p, g in zip(paths, generations)]
        states = []
        for s, actor in enumerate(self._actors):
            try:
                states.append(ray.get(actor.state.remote()))
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as error:
                self.close()
                raise ShardError(s, f"did not start{'' if paths[s] is None else ' from ' + paths[s]}: {error}") from None
        for s, (generation, count, _) in enumerate(states):
            self._generation[s], self._counts[s] = generation, count
        self._sent = list(self._generation)

    # ------------------------------------------------------------------ properties
    @property
    def num_shards(self) -> int:
        return self._num_shards

    @property
    def dim(self) -> int:
        return int(self._params["dim"])

    @property
    def params(self) -> Dict[str, Any]:
        """Every shard's `MultiVectorIndex` parameters."""
        return dict(self._params)

    @property
    def columns(self) -> Dict[str, str]:
        return dict(self._columns)

    @property
    def actors(self) -> List[Any]:
        """The shard actors' handles, in shard order."""
        return list(self._actors)

    def __len__(self) -> int:
        return sum(self._counts)

    def __repr__(self) -> str:
        return f"ShardedIndex(num_shards={self._num_shards}, dim={self.dim}, size={len(self)})"

    def stats(self) -> Dict[str, Any]:
        """The shards' `MultiVectorIndex.stats` summed (counts and bytes), with each shard's own
        under ``"shards"``."""
        answers, _ = self._gather("stats", {s: () for s in range(self._num_shards)})
        shards = [answers[s][0] for s in range(self._num_shards)]
        total: Dict[str, Any] = {key: sum(s[key] for s in shards) for key in shards[0]
                                 if key not in ("centroids", "centroid_levels", "bytes_per_document")}
        total["bytes_per_document"] = (total["token_bytes"] + total["memory_bytes"]) / max(1, total["documents"])
        total["num_shards"], total["shards"] = self._num_shards, shards
        return total

    def close(self) -> None:
        """Ends the shard actors (their saved files stay)."""
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []

    # ------------------------------------------------------------------ changes
    def add(self, docs: object, ids: object = None, attributes: Optional[Mapping[str, object]] = None, *,
            threads: Optional[int] = None, batch_size: int = 1024, in_flight: int = 2,
            parallel: bool = False) -> np.ndarray:
        """Adds documents; returns their ids.

        Parameters
        ----------
        docs : a `MultiVectors`, a list of 2-D arrays or one 2-D array; or an iterable of batches,
            each one of those or ``(docs, ids)`` / ``(docs, ids, attributes)``; or a Ray Dataset
            with a column ``"tokens"`` (one ``(L, dim)`` array per row), optionally ``"id"``, and
            attribute columns (numbers, or arrays of labels).
        ids : int64 ids, new and distinct (ValueError naming the others); default: assigned.
        attributes : per-document attribute columns, as for `MultiVectorIndex.add`.
        threads : threads of each shard's add (default: all its cores).
        batch_size : rows per batch read from a Ray Dataset (by the driver, or by each shard).
        in_flight : batches of an iterable or Dataset sent before the oldest must be done: the
            shards add their parts of a batch concurrently while the driver routes the next.
        parallel : with a Ray Dataset only. False (default): the driver reads the Dataset and
            routes each batch, as for an iterable of batches. True: every shard reads its own
            partition of the Dataset, all shards at once, and the documents never pass through
            the driver (see below).

        A batch is all-or-nothing against bad input: validated on the driver, its ids checked by
        their shards, then sent. With several batches, an error in one raises after the batches
        before it were added.

        ``parallel=True``: the Dataset must have an ``"id"`` column (default ids would need a
        pass over the data; ValueError otherwise). Shard ``s`` runs ``map_batches`` over the
        Dataset keeping the rows with ``shard_of(id, num_shards) == s`` and adds them batch by
        batch, so each shard reads the whole source and keeps its part (the source is read
        ``num_shards`` times; only ids and the batches' results reach the driver). The driver
        checks the Dataset's columns when its schema is known without executing it; each shard
        checks its batches: dimension, attribute columns, and ids distinct and new (repeats of
        an id all route to one shard, so it sees them). An error stops that shard's build at
        the bad batch and raises once every shard is done, naming the shard; the other shards'
        documents, and that shard's batches before the bad one, stay added. A shard whose actor
        dies during the build is restarted and rebuilt if it can be brought back to its state
        before the build (`ShardError` otherwise, naming it; the shards that finished keep their
        documents). Returns the ids added, sorted. Dataset tasks need free CPUs: shards that
        reserve every core (``actor_options={"num_cpus": ...}``) leave none for them.
        """
        in_flight = _validate.positive_int(in_flight, "in_flight")
        if not isinstance(parallel, (bool, np.bool_)):
            raise TypeError(f"parallel must be a bool, got {type(parallel).__name__}")
        if parallel:
            if not isinstance(docs, ray.data.Dataset):
                raise TypeError(f"add: parallel=True reads a Ray Dataset, got {type(docs).__name__}")
            if ids is not None or attributes is not None:
                raise TypeError("add: with a Dataset, ids and attributes are its columns")
            return self._build(docs, _validate.positive_int(batch_size, "batch_size"), _validate.threads(threads))
        if _is_batch(docs):
            return self._change(docs, ids, attributes, False, threads)
        if ids is not None or attributes is not None:
            raise TypeError("add: with an iterable of batches or a Dataset, give ids and attributes in each batch")
        if isinstance(docs, ray.data.Dataset):
            docs = _dataset_batches(docs, _validate.positive_int(batch_size, "batch_size"))
        out: List[np.ndarray] = []
        pending: List[Dict[int, Any]] = []
        try:
            for batch in docs:  # type: ignore[attr-defined]
                parts = batch if isinstance(batch, tuple) else (batch,)
                if not 1 <= len(parts) <= 3:
                    raise TypeError("add: a batch is docs, (docs, ids) or (docs, ids, attributes)")
                plan = self._plan(*parts, *(None,) * (3 - len(parts)), False)
                if plan.checked:  # its shards must see the batches before it first
                    self._finish(pending)
                    pending.clear()
                self._check(plan)
                pending.append(self._send_plan(plan, threads))
                out.append(plan.ids)
                if len(pending) >= in_flight:
                    self._finish(pending[:1])
                    del pending[:1]
        finally:
            self._finish(pending)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _build(self, dataset: Any, batch_size: int, threads: Optional[int]) -> np.ndarray:
        """add(dataset, parallel=True): every shard builds from its own partition at once."""
        self._check_schema(dataset)
        columns, has_rows = dict(self._columns), self._has_rows

        def call(s: int) -> Any:
            return self._actors[s].build.remote(self._generation[s], dataset, s, self._num_shards, batch_size,
                                                threads, columns, has_rows)

        refs = {s: call(s) for s in range(self._num_shards)}
        answers: Dict[int, tuple] = {}
        failed: List[Tuple[int, str]] = []
        for s, ref in refs.items():
            try:
                try:
                    answer = ray.get(ref)
                except ray.exceptions.RayActorError:  # restarting, or dead: _recover tells which
                    answer = (False,)
                if not answer[0]:  # restarted: rebuilt if it is back at its state before the build
                    self._recover(s)
                    answer = ray.get(call(s))
                    if not answer[0]:
                        raise ShardError(s, f"at generation {answer[1]} after recovery, expected {self._generation[s]}")
            except ShardError as error:
                failed.append((s, str(error)))
                continue
            except ray.exceptions.RayActorError as error:
                failed.append((s, f"shard {s} (actor lost: {type(error).__name__})"))
                continue
            except ray.exceptions.RayTaskError as error:
                failed.append((s, f"shard {s} ({error.cause!r})"))
                continue
            answers[s] = answer
        # What the shards did, recorded before any error is raised: the next change expects it.
        added = []
        for s, (_, generation, count, ids, columns, _) in answers.items():
            self._generation[s], self._counts[s] = generation, count
            if len(ids):
                added.append(ids)
                self._next_id = max(self._next_id, int(ids.max()) + 1)
                if not self._has_rows:
                    self._columns, self._has_rows = dict(columns), True
                elif columns != self._columns:  # shards that started empty fixed theirs from their data
                    failed.append((s, f"shard {s} (attribute columns {columns}, the others' {self._columns})"))
        self._sent = list(self._generation)
        if failed:
            raise ShardError(failed[0][0], "the parallel build failed on " + "; ".join(f for _, f in failed) +
                             "; the other shards added their documents")
        errors = [(s, answer[5]) for s, answer in answers.items() if answer[5] is not None]
        if errors:
            (s, (kind, message)), others = errors[0], [e[0] for e in errors[1:]]
            text = f"shard {s}: {message}" + (f" (also failed: shards {others})" if others else "")
            exception = {"ValueError": ValueError, "TypeError": TypeError, "KeyError": KeyError}.get(kind)
            if exception is None:
                raise ShardError(s, f"the parallel build stopped: {kind}: {message}")
            raise exception(text)
        return np.sort(np.concatenate(added)) if added else np.zeros(0, dtype=np.int64)

    def _check_schema(self, dataset: Any) -> None:
        """The checks of a Dataset that need no pass over it: its columns, and the token
        dimension when the column's type fixes it (a schema that needs execution is skipped:
        the shards check every batch)."""
        schema = dataset.schema(fetch_if_missing=False)
        if schema is None:
            return
        names = list(schema.names)
        for column in ("tokens", "id"):
            if column not in names:
                raise ValueError(f"add: parallel=True needs columns 'tokens' and 'id', the Dataset has {names}")
        import pyarrow  # Ray Data's own dependency

        kind = schema.types[names.index("id")]
        if isinstance(kind, pyarrow.DataType) and not pyarrow.types.is_integer(kind):
            raise TypeError(f"add: column 'id' must hold integers, got {kind}")
        shape = getattr(schema.types[names.index("tokens")], "shape", None)
        if isinstance(shape, tuple) and len(shape) == 2 and shape[1] is not None and shape[1] != self.dim:
            raise ValueError(f"docs: tokens have dimension {shape[1]}, the index {self.dim}")
        attributes = set(names) - {"tokens", "id"}
        if self._has_rows and attributes != set(self._columns):
            missing, extra = sorted(set(self._columns) - attributes), sorted(attributes - set(self._columns))
            raise ValueError(f"attributes: every add must give the index's columns {sorted(self._columns)}"
                             + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))

    def update(self, ids: object, docs: object, attributes: Optional[Mapping[str, object]] = None, *,
               threads: Optional[int] = None) -> None:
        """Replaces the documents with these ids (tokens, and attributes where the index has
        columns). Unknown or repeated ids raise ValueError and change nothing."""
        if ids is None:
            raise TypeError("update: ids are required")
        self._change(docs, ids, attributes, True, threads)

    def delete(self, ids: object, *, threads: Optional[int] = None) -> None:
        """Removes documents by id. Unknown or repeated ids raise ValueError and delete nothing."""
        if np.ndim(ids) > 1:
            raise ValueError(f"ids must be 1-D, got shape {np.shape(ids)}")
        array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64).reshape(-1)
        _no_repeats(array)
        route = shard_of(array, self._num_shards)
        parts = {s: array[route == s] for s in np.unique(route).tolist()}
        self._check_ids(parts, True)
        self._finish([self._send({s: ("delete", part, None, None, None) for s, part in parts.items()}, threads)])

    def _change(self, docs: object, ids: object, attributes: Optional[Mapping[str, object]], update: bool,
                threads: Optional[int]) -> np.ndarray:
        plan = self._plan(docs, ids, attributes, update)
        self._check(plan)
        self._finish([self._send_plan(plan, threads)])
        return plan.ids

    def _plan(self, docs: object, ids: object, attributes: Optional[Mapping[str, object]], update: bool) -> "_Plan":
        """A batch validated on the driver and split by shard (nothing sent yet)."""
        mv, _ = as_multivectors(docs, "docs")
        n = len(mv)
        if mv.dim != self.dim:
            raise ValueError(f"docs: tokens have dimension {mv.dim}, the index {self.dim}")
        if ids is None:
            if self._next_id + n - 1 > _INT64_MAX:
                raise ValueError(f"ids: no default ids left after {self._next_id - 1}; give ids")
            id_array, checked = np.arange(self._next_id, self._next_id + n, dtype=np.int64), False
        else:
            id_array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64).reshape(-1) \
                if np.ndim(ids) <= 1 else np.zeros((0, 0))
            if id_array.shape != (n,):
                raise ValueError(f"ids must have shape ({n},), got {np.shape(ids)}")
            _no_repeats(id_array)
            checked = True
        columns = attribute_columns(attributes, n, self._columns, self._has_rows)  # raises as the shards would
        tokens = _storage_tokens(mv.values(), self._params["token_storage"], copy=False)
        offsets = np.asarray(mv.offsets, dtype=np.int64)
        route = shard_of(id_array, self._num_shards)
        parts = {}
        for s in np.unique(route).tolist():
            rows = np.flatnonzero(route == s)
            parts[s] = (*_take(tokens, offsets, rows), id_array[rows], _take_attributes(attributes, rows))
        return _Plan(id_array, parts, checked, update, {c[0]: c[1] for c in columns})

    def _check(self, plan: "_Plan") -> None:
        if plan.checked:
            self._check_ids({s: part[2] for s, part in plan.parts.items()}, plan.update)

    def _check_ids(self, parts: Mapping[int, np.ndarray], present: bool) -> None:
        """Raises ValueError naming the ids that are not in the index (present) or are already."""
        answers, _ = self._gather("missing", {s: (ids, present) for s, ids in parts.items()})
        bad = np.sort(np.concatenate([a[0] for a in answers.values()])) if answers else np.zeros(0, dtype=np.int64)
        if len(bad):
            what = "not in the index" if present else "already in the index"
            raise ValueError(f"ids: {_some(bad)} {'is' if len(bad) == 1 else 'are'} {what}")

    def _send_plan(self, plan: "_Plan", threads: Optional[int]) -> Dict[int, "_Sent"]:
        kind = "update" if plan.update else "add"
        sent = self._send({s: (kind, ids, tokens, offsets, attributes)
                           for s, (tokens, offsets, ids, attributes) in plan.parts.items()}, threads)
        if len(plan.ids):
            # Fixed when sent (the next batch is planned before this one is done): a batch that
            # then fails on a shard leaves its ids used, never reused, and its columns fixed.
            self._next_id = max(self._next_id, int(plan.ids.max()) + 1)
            if not self._has_rows:
                self._columns, self._has_rows = dict(plan.columns), True
        return sent

    def _send(self, parts: Mapping[int, tuple], threads: Optional[int]) -> Dict[int, "_Sent"]:
        """Sends each shard its part of a change, expecting the generation its earlier changes
        (done or in flight) lead to."""
        sent = {}
        for s, args in parts.items():
            sent[s] = _Sent(self._actors[s].change.remote(self._sent[s], *args, threads), (*args, threads))
            self._sent[s] += 1
        return sent

    def _finish(self, pending: Sequence[Mapping[int, "_Sent"]]) -> None:
        """Waits for sent changes, in order, and records each shard's generation and size. A
        shard that refused a change (restarted from an older state) is recovered and sent it
        again; a shard that fails raises ShardError once the rest are done."""
        failed: List[Tuple[int, str]] = []
        for sent in pending:
            for s, call in sent.items():
                try:
                    try:
                        done, generation, count = ray.get(call.ref)
                    except ray.exceptions.ActorUnavailableError:  # restarting: its state is rebuilt
                        done = False
                    if not done:
                        if failed:
                            raise ShardError(s, "not sent again after the failures before")
                        self._recover(s)
                        done, generation, count = ray.get(self._actors[s].change.remote(self._generation[s], *call.args))
                        if not done:
                            raise ShardError(s, f"at generation {generation} after recovery, expected {self._generation[s]}")
                    self._generation[s], self._counts[s] = generation, count
                except ShardError as error:
                    failed.append((s, str(error)))
                except ray.exceptions.RayActorError as error:  # its state is now its last file's, if any
                    failed.append((s, f"shard {s} (actor lost: {type(error).__name__})"))
                except ray.exceptions.RayTaskError as error:  # the index's change is all-or-nothing
                    failed.append((s, f"shard {s} ({error.cause!r})"))
        self._sent = list(self._generation)
        if failed:
            raise ShardError(failed[0][0], "a change failed on " + "; ".join(f for _, f in failed) +
                             "; the other shards of its batch applied it")

    # ------------------------------------------------------------------ search
    def search(self, queries: object, k: int = 10, *, filter: object = None, candidates: Optional[int] = None,
               rerank: Optional[int] = None, ef: Optional[int] = None, probe: Optional[int] = None, exact: bool = False,
               query_ball: Optional[float] = None, threads: Optional[int] = None,
               partial: bool = False) -> Any:
        """Top-k documents by MaxSim over every shard, as `MultiVectorIndex.search` on their union.

        Parameters
        ----------
        queries : a `MultiVectors`, a list of 2-D arrays, or one 2-D array (one query: 1-D results).
        k : results per query.
        filter : as for `MultiVectorIndex.search` (a `Filter`, a bool mask indexed by id, an int
            array of allowed ids, or a list of these per query), applied on every shard.
        candidates, rerank, ef, probe, exact, query_ball, threads : each shard's search
            (`MultiVectorIndex.search`); ``threads``: per shard.
        partial : False (default): a shard that cannot answer raises `ShardError`. True: the
            shards that can answer do, and a third value lists the shards missing from the result.

        Returns
        -------
        ``(scores, ids)``: float32 and int64 arrays ``(n_queries, k)`` (1-D for one 2-D query),
        best first, ties by lower id, padded with ``-inf`` and ``-1`` when fewer than k documents
        match (``k`` capped at the index's size, as `MultiVectorIndex.search` does); with
        ``partial=True`` also the list of missing shards (empty: complete).

        The queries are put in Ray's object store once; each shard gets one call per batch and
        returns its own top k; the driver merges them.
        """
        q, single = as_multivectors(queries, "queries")
        k = _validate.positive_int(k, "k")
        options = {"candidates": None if candidates is None else _validate.positive_int(candidates, "candidates"),
                   "rerank": None if rerank is None else _validate.positive_int(rerank, "rerank"),
                   "ef": None if ef is None else _validate.positive_int(ef, "ef"),
                   "probe": None if probe is None else _validate.non_negative_int(probe, "probe"),
                   "exact": exact, "query_ball": query_ball, "threads": _validate.threads(threads)}
        if query_ball is not None and (isinstance(query_ball, bool) or not isinstance(query_ball, numbers.Real)
                                       or not 0 < float(query_ball) <= 1e30):
            raise ValueError(f"query_ball must be a positive number, got {query_ball!r}")
        for name, flag in (("exact", exact), ("partial", partial)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool")
        if q.dim != self.dim:
            raise ValueError(f"queries: tokens have dimension {q.dim}, the index {self.dim}")
        filters = self._filters(filter, len(q))
        width = min(k, max(len(self), 1))
        shards = [s for s in range(self._num_shards) if self._counts[s] > 0]
        query_ref = ray.put((np.ascontiguousarray(q.values(), dtype=np.float32), np.asarray(q.offsets)))
        filter_refs = self._filter_refs(filters, shards)

        answers, missing = self._gather("search", {s: (query_ref, filter_refs[s], k, options) for s in shards},
                                        bool(partial))
        scores, ids = _merge([a[:2] for a in answers.values()], len(q), width)
        if single:
            scores, ids = scores[0], ids[0]
        return (scores, ids, missing) if partial else (scores, ids)

    def _filters(self, spec: object, nq: int) -> "_Filters":
        """The filter as nodes, validated against the columns and, for ids, against the shards
        that hold no documents (and are not asked)."""
        if spec is None:
            return _Filters(None)
        if isinstance(spec, (list, tuple)):
            if len(spec) != nq:
                raise ValueError(f"filter: a list of filters needs one per query ({nq}), got {len(spec)}")
            return _Filters([None if f is None else self._filters(f, 1).nodes for f in spec], per_query=True)
        if isinstance(spec, np.ndarray):
            array = _validate.mask_or_ids(spec, "filter")
            spec = Filter.mask(array) if array.dtype == np.bool_ else Filter.ids(array)
        if not isinstance(spec, Filter):
            raise TypeError(f"filter must be a Filter, a bool mask, an integer id array or a list of these, "
                            f"got {type(spec).__name__}")
        nodes = spec._nodes()
        for op, *args in nodes:
            if op in ("any", "all", "range", "isin") and args[0] not in self._columns:
                raise ValueError(f"filter: unknown attribute {args[0]!r} (this index has: "
                                 f"{', '.join(sorted(self._columns)) or 'none'})")
            if op == "ids" and len(args[0]):
                empty = np.array([self._counts[s] == 0 for s in range(self._num_shards)])
                absent = args[0][empty[shard_of(args[0], self._num_shards)]]
                if len(absent):
                    raise ValueError(f"filter: id {int(absent[0])} is not in the index")
        return _Filters(nodes)

    def _filter_refs(self, filters: "_Filters", shards: Sequence[int]) -> Dict[int, Any]:
        """Each shard's filter in the object store: one for all, unless the filter lists ids,
        which are cut to each shard's own (a shard rejects ids it does not hold)."""
        if not filters.has_ids():
            shared = ray.put(filters)
            return {s: shared for s in shards}
        return {s: ray.put(filters.cut(s, self._num_shards)) for s in shards}

    # ------------------------------------------------------------------ faults
    def _gather(self, method: str, args: Mapping[int, tuple], partial: bool = False) -> Tuple[Dict[int, Any], List[int]]:
        """Calls `method` on each shard in `args` at once, and returns their answers. A shard that
        fails, or answers from another generation than the driver knows, is recovered
        (`_recover`) and asked once more; one that cannot be raises ShardError, or with
        `partial` is listed in the second value."""
        def call(s: int) -> Any:
            return getattr(self._actors[s], method).remote(*args[s])

        refs = {s: call(s) for s in args}
        answers: Dict[int, Any] = {}
        missing: List[int] = []
        for s, ref in refs.items():
            try:
                try:
                    answer = ray.get(ref)
                    current = answer[-1] == self._generation[s]
                except ray.exceptions.RayActorError:  # restarting, or dead: _recover tells which
                    current = False
                if not current:
                    self._recover(s)
                    answer = ray.get(call(s))
                    if answer[-1] != self._generation[s]:
                        raise ShardError(s, f"at generation {answer[-1]} after recovery, expected {self._generation[s]}")
            except ShardError:
                if not partial:
                    raise
                missing.append(s)
                continue
            except ray.exceptions.RayActorError as error:
                if not partial:
                    raise ShardError(s, f"lost during {method} ({type(error).__name__})") from None
                missing.append(s)
                continue
            except ray.exceptions.RayTaskError as error:
                raise _remote_error(s, error) from None
            answers[s] = answer
        return answers, missing

    def _recover(self, s: int) -> None:
        """Brings shard s back to the generation the driver knows: waits for a restart, then
        reloads its last saved file if that file holds this generation; else ShardError."""
        deadline = time.monotonic() + self._restart_timeout
        while True:
            try:
                generation, count, _ = ray.get(self._actors[s].state.remote(), timeout=self._restart_timeout)
                break
            except ray.exceptions.ActorDiedError:
                raise ShardError(s, f"its actor is dead (max_restarts = {self._options['max_restarts']} "
                                    "used up, or its file could not be loaded)") from None
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                if time.monotonic() > deadline:
                    raise ShardError(s, f"did not come back within {self._restart_timeout} s") from None
                time.sleep(0.1)
        expected = self._generation[s]
        if generation == expected:
            return
        saved = self._saved[s]
        if saved is not None and saved[1] == expected:
            try:
                ray.get(self._actors[s].restore.remote(*saved))
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as error:
                raise ShardError(s, f"could not reload {saved[0]}: {error}") from None
            return
        since = "it was never saved" if saved is None else \
            f"its last save ({saved[0]}) holds generation {saved[1]}"
        raise ShardError(s, f"restarted holding {count} documents at generation {generation}, but it had "
                            f"{self._counts[s]} documents at generation {expected} and {since}: the changes "
                            "since would be missing from its answers. Save after changes to make shards "
                            "recoverable, or load the index again.")

    # ------------------------------------------------------------------ persistence
    def save(self, directory: "os.PathLike[str] | str") -> None:
        """Writes one index file per shard (``shard-00000.lf``, ...) and ``manifest.json`` into
        `directory` (made if needed; on a multi-node cluster a path every node sees). Each shard
        writes its own file, all at once; the manifest is written last, atomically."""
        directory = os.path.abspath(os.fspath(directory))
        os.makedirs(directory, exist_ok=True)
        for s, actor in enumerate(self._actors):  # a shard that restarted comes back first, or raises
            if ray.get(actor.state.remote())[0] != self._generation[s]:
                self._recover(s)
        paths = [os.path.join(directory, _shard_file(s)) for s in range(self._num_shards)]
        self._gather("save", {s: (path,) for s, path in enumerate(paths)})
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, "num_shards": self._num_shards, "routing": ROUTING,
            "params": self._params, "next_id": self._next_id, "columns": self._columns,
            "has_rows": self._has_rows,
            "shards": [{"file": _shard_file(s), "generation": self._generation[s], "documents": self._counts[s]}
                       for s in range(self._num_shards)],
        }
        temporary = os.path.join(directory, f".{MANIFEST}.{os.getpid()}.tmp")
        with open(temporary, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, os.path.join(directory, MANIFEST))
        self._saved = [(p, g) for p, g in zip(paths, self._generation)]

    @classmethod
    def load(cls, directory: "os.PathLike[str] | str", *, actor_options: Optional[Mapping[str, Any]] = None,
             max_restarts: int = 3, restart_timeout: float = 60.0) -> "ShardedIndex":
        """Reads an index written by `save`: new actors, each mapping its own shard file
        (`MultiVectorIndex.load(path, mmap=True)`). Parameters as for the constructor."""
        directory = os.path.abspath(os.fspath(directory))
        with open(os.path.join(directory, MANIFEST)) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT or manifest.get("routing") != ROUTING:
            raise ValueError(f"{directory}: not a latefold ShardedIndex (format {manifest.get('format')!r}, "
                             f"routing {manifest.get('routing')!r})")
        if manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: manifest version {manifest.get('version')!r}, this latefold reads "
                             f"{FORMAT_VERSION}")
        shards = manifest["shards"]
        paths = [os.path.join(directory, entry["file"]) for entry in shards]
        for path in paths:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{directory}: shard file {path} is missing")
        index = cls.__new__(cls)
        index._setup(len(shards), manifest["params"], actor_options, max_restarts, restart_timeout)
        index._next_id, index._columns, index._has_rows = manifest["next_id"], manifest["columns"], manifest["has_rows"]
        index._start(paths, [entry["generation"] for entry in shards])
        for s, entry in enumerate(shards):
            if index._counts[s] != entry["documents"]:
                index.close()
                raise ValueError(f"{paths[s]} holds {index._counts[s]} documents, the manifest says "
                                 f"{entry['documents']}")
        index._saved = [(p, e["generation"]) for p, e in zip(paths, shards)]
        return index


# ------------------------------------------------------------------------------------------ helpers

class _Plan:
    """One validated batch: its ids and its part per shard (tokens, offsets, ids, attributes)."""

    def __init__(self, ids: np.ndarray, parts: Dict[int, tuple], checked: bool, update: bool,
                 columns: Dict[str, str]) -> None:
        self.ids, self.parts, self.checked, self.update, self.columns = ids, parts, checked, update, columns


class _Sent:
    """A change sent to a shard: its reply, and its arguments to send it again."""

    def __init__(self, ref: Any, args: tuple) -> None:
        self.ref, self.args = ref, args


class _Filters:
    """A search's filter as `Filter` nodes: one filter for every query, or one (or None) per
    query."""

    def __init__(self, nodes: Any, per_query: bool = False) -> None:
        self.nodes, self.per_query = nodes, per_query

    def _each(self) -> List[Optional[list]]:
        return self.nodes if self.per_query else [self.nodes]

    def has_ids(self) -> bool:
        return any(op == "ids" for nodes in self._each() if nodes for op, *_ in nodes)

    def cut(self, shard: int, num_shards: int) -> "_Filters":
        """The filter with each id list cut to the ids of `shard` (the others cannot match there)."""
        def cut(nodes: Optional[list]) -> Optional[list]:
            return None if nodes is None else \
                [(op, args[0][shard_of(args[0], num_shards) == shard]) if op == "ids" else (op, *args)
                 for op, *args in nodes]
        return _Filters([cut(n) for n in self.nodes] if self.per_query else cut(self.nodes), self.per_query)

    def build(self) -> Any:
        """The `MultiVectorIndex.search` filter argument."""
        if self.per_query:
            return [None if n is None else Filter._from_nodes(n) for n in self.nodes]
        return None if self.nodes is None else Filter._from_nodes(self.nodes)


def _shard_file(s: int) -> str:
    return f"shard-{s:05d}.lf"


def _no_repeats(ids: np.ndarray, where: str = "") -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"ids: {_some(values[counts > 1])} repeated{where}")


def _some(ids: np.ndarray, most: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:most])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > most else "")


def _take(tokens: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The documents `rows` of a (tokens, offsets) set, as a set of their own."""
    lengths = offsets[rows + 1] - offsets[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # Token r of the result comes from offsets[row] + (r - new_offsets[its document]).
    picks = np.repeat(offsets[rows] - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return np.ascontiguousarray(tokens[picks]), new_offsets


def _take_attributes(attributes: Optional[Mapping[str, object]], rows: np.ndarray) -> Optional[dict]:
    if not attributes:
        return None
    return {name: [column[i] for i in rows.tolist()] if isinstance(column, (list, tuple)) else np.asarray(column)[rows]
            for name, column in attributes.items()}


def _merge(parts: Sequence[Tuple[np.ndarray, np.ndarray]], nq: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """The best `width` of every shard's top k per query: by score, then lower id; padding
    (id -1) last."""
    if not parts:
        return np.full((nq, width), -np.inf, dtype=np.float32), np.full((nq, width), -1, dtype=np.int64)
    scores = np.concatenate([np.asarray(p[0], dtype=np.float32).reshape(nq, -1) for p in parts], axis=1)
    ids = np.concatenate([np.asarray(p[1], dtype=np.int64).reshape(nq, -1) for p in parts], axis=1)
    order = np.lexsort((ids, -scores, ids == -1), axis=1)[:, :width]
    scores, ids = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    if scores.shape[1] < width:  # fewer results than width in all shards together
        pad = width - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    return scores, ids


def _remote_error(s: int, error: Any) -> Exception:
    """A shard's ValueError / TypeError raised again on the driver, naming the shard."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, (ValueError, TypeError, KeyError, FileNotFoundError)):
        return type(cause)(f"shard {s}: {cause}")
    return ShardError(s, str(error))


def _dataset_batches(ds: Any, batch_size: int, need_ids: bool = False) -> Iterable[tuple]:
    """A Ray Dataset's rows as (docs, ids, attributes) batches: column "tokens", optional "id",
    the other columns as attributes (object columns of arrays as label columns)."""
    for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
        if "tokens" not in batch:
            raise ValueError(f"add: a Dataset needs a 'tokens' column, got columns {sorted(batch)}")
        if need_ids and "id" not in batch:
            raise ValueError(f"add: parallel=True needs an 'id' column, got columns {sorted(batch)}")
        docs = list(batch["tokens"])
        ids = batch.get("id")
        attributes = {name: list(column) if column.dtype == object else column
                      for name, column in batch.items() if name not in ("tokens", "id")}
        yield docs, ids, attributes or None


def _rows_of_shard(table: Any, shard: int, num_shards: int) -> Any:
    """The rows of an Arrow batch whose "id" routes to `shard`: a mask computed on the id column
    alone, so the token column is never converted (Arrow's filter copies the kept rows).

    A batch without a usable id column is passed whole: the shard's check of its first batch
    raises then, with the error's own type (an error raised here reaches the shard wrapped in
    Ray Data's exceptions, its type lost)."""
    import pyarrow  # Ray Data's own dependency

    if "id" not in table.column_names:
        return table
    column = table.column("id")
    if not table.num_rows or column.null_count or not pyarrow.types.is_integer(column.type):
        return table
    return table.filter(shard_of(column.to_numpy(), num_shards) == shard)


def _error_of(error: BaseException) -> Tuple[str, str]:
    """An error as (type name, message), for the driver to raise again: the user's own
    ValueError / TypeError when Ray wrapped it (a Dataset's tasks raise through several layers),
    else the error's type and text."""
    seen: Optional[BaseException] = error
    for _ in range(20):  # a chain of causes, not a cycle
        if seen is None:
            break
        if type(seen) in (ValueError, TypeError, KeyError):
            return type(seen).__name__, str(seen)
        seen = getattr(seen, "cause", None) or seen.__cause__
    return type(error).__name__, str(error)


# ----------------------------------------------------------------------------- dataset encoding

class _FdeBatchEncoder:
    """Encodes one column of token sets in Dataset batches; Ray keeps one per actor, so each
    actor builds the encoder once."""

    def __init__(self, params: Dict[str, Any], column: str, output: str, documents: bool,
                 threads: Optional[int]) -> None:
        self.fde, self.column, self.output, self.documents, self.threads = FDE(**params), column, output, documents, threads

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        items = list(batch[self.column])
        encode = self.fde.encode_documents if self.documents else self.fde.encode_queries
        batch[self.output] = encode(items, threads=self.threads) if items else \
            np.zeros((0, self.fde.output_dim), dtype=np.float32)
        return batch


def encode_fde(ds: Any, fde: FDE, *, column: str = "tokens", output_column: str = "fde",
               kind: str = "documents", batch_size: int = 256, concurrency: int = 1,
               threads: Optional[int] = None) -> Any:
    """FDE-encodes a Ray Dataset's token sets with ``map_batches`` on a pool of actors.

    Parameters
    ----------
    ds : a ``ray.data.Dataset`` with a column of token sets (one ``(L, dim)`` float32 or
        float16 array per row).
    fde : the `FDE` encoder (its parameters travel; each actor builds it once).
    column, output_column : the column read and the column written (one ``fde.output_dim``
        float32 vector per row).
    kind : ``"documents"`` (`FDE.encode_documents`) or ``"queries"`` (`FDE.encode_queries`).
    batch_size : rows per batch.
    concurrency : actors in the pool.
    threads : threads of each actor's encoding (default: all its cores).

    Returns
    -------
    The Dataset with `output_column` added (lazy, as every Dataset transform).
    """
    if not isinstance(fde, FDE):
        raise TypeError(f"fde must be a latefold.FDE, got {type(fde).__name__}")
    if kind not in ("documents", "queries"):
        raise ValueError(f"kind must be 'documents' or 'queries', got {kind!r}")
    for name, value in (("column", column), ("output_column", output_column)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return ds.map_batches(
        _FdeBatchEncoder, batch_format="numpy", batch_size=_validate.positive_int(batch_size, "batch_size"),
        fn_constructor_kwargs={"params": fde.params, "column": column, "output": output_column,
                               "documents": kind == "documents", "threads": _validate.threads(threads)},
        compute=ray.data.ActorPoolStrategy(size=_validate.positive_int(concurrency, "concurrency")))
