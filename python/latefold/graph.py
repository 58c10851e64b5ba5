"""Filtered approximate nearest-neighbour search on a proximity graph (`GraphIndex`), and the
filter expressions it takes (`Filter`).

The graph is Vamana's (Subramanya et al., NeurIPS 2019) with FreshDiskANN's deletions; filtered
queries follow a per-query plan (exact scan, ACORN-style two-hop traversal, or gated traversal)
chosen from the filter's exact match count. See cpp/include/latefold/graph.h for the design.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _validate
from .pq import ProductQuantizer

METRICS = ("ip", "l2")
STORAGES = ("float32", "float16")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# ---------------------------------------------------------------------------------------- filters

class Filter:
    """A filter over a GraphIndex's attributes: data, evaluated in C++ for each query.

    >>> f = lf.Filter.labels("tags").any([3, 7]) & lf.Filter.range("year", 1990, 1999)
    >>> f = ~lf.Filter.eq("year", 2001) | lf.Filter.ids(np.array([4, 8]))
    >>> f = lf.Filter.isin("year", [1990, 1995, 2001])

    ``range`` is inclusive at both ends (``None``: unbounded; NaN raises ``ValueError``); ``eq``
    is ``range(v, v)``; ``isin(c, values)`` keeps vectors whose numeric column ``c`` equals one
    of ``values`` (for a label column use ``labels(c).any(values)``); ``labels(c).any(v)`` keeps
    vectors holding at least one of the labels ``v``, ``.all(v)`` those holding every one
    (``all([])`` keeps everything, ``any([])`` nothing); ``mask(m)`` keeps the ids ``i`` with
    ``m[i]`` true (ids outside the mask fail); ``ids(a)`` keeps the listed ids. Arrays are copied:
    changing them later does not change the filter.

    Combine with ``&``, ``|`` and ``~``. ``&`` and ``|`` are n-ary (``a | b | c`` is one OR of
    three filters) and ``~~f`` is ``f``, so a filter of any width stays shallow; nesting deeper
    than ``Filter.MAX_DEPTH`` (1000) levels raises ``ValueError``.
    """

    __slots__ = ("_op", "_args", "_depth", "_built")

    MAX_DEPTH: int = _core.FILTER_MAX_DEPTH

    def __init__(self, op: str, expr: Any, *args: Any) -> None:
        # Combinations ("and" / "or": args (left, right); "not": (operand,)) come with expr None
        # and are built on first use (_expr). The n-ary children of & and | are read by
        # flattening, so building a chain of n `|` costs O(n), not O(n^2).
        self._op, self._args, self._built = op, args, expr
        if op in ("and", "or"):
            self._depth = max(a._depth if a._op == op else a._depth + 1 for a in args)
        elif op == "not":
            self._depth = args[0]._depth + 1
        else:
            self._depth = 1
        if self._depth > Filter.MAX_DEPTH:
            raise ValueError(f"filter: more than Filter.MAX_DEPTH = {Filter.MAX_DEPTH} levels of nested &, | and ~")

    # constructors
    @staticmethod
    def labels(column: str) -> "_LabelColumn":
        return _LabelColumn(_column_name(column))

    @staticmethod
    def range(column: str, lo: Optional[numbers.Real] = None, hi: Optional[numbers.Real] = None) -> "Filter":
        return _range("Filter.range", column, ("lo", lo), ("hi", hi))

    @staticmethod
    def eq(column: str, value: numbers.Real) -> "Filter":
        if value is None:
            raise TypeError("Filter.eq: value must be a number")
        return _range("Filter.eq", column, ("value", value), ("value", value))

    @staticmethod
    def isin(column: str, values: object) -> "Filter":
        column = _column_name(column)
        if isinstance(values, (set, frozenset)):
            values = sorted(values)
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"Filter.isin: values must be 1-D, got shape {array.shape}")
        if array.size == 0:
            array = array.astype(np.int64)  # np.asarray([]) is float64
        if array.dtype.kind in "iu":
            ints = array[array <= _INT64_MAX].astype(np.int64) if array.dtype.kind == "u" else array.astype(np.int64)
            floats = _exact_floats(array)
        elif array.dtype.kind == "f":
            floats = array.astype(np.float64)
            if np.isnan(floats).any():
                raise ValueError("Filter.isin: values hold NaN")
            # Only whole numbers in the int64 range can equal an int64 value.
            whole = floats[(floats == np.floor(floats)) & (floats >= -(2.0**63)) & (floats < 2.0**63)]
            ints = whole.astype(np.int64)
        else:
            raise TypeError(f"Filter.isin: values must be integers or floats, got dtype {array.dtype}")
        expr = _core.FilterExpr.isin(column, np.ascontiguousarray(ints), np.ascontiguousarray(floats))
        return Filter("isin", expr, column, array.copy())

    @staticmethod
    def mask(mask: object) -> "Filter":
        array = np.asarray(mask)
        if array.dtype != np.bool_ or array.ndim != 1:
            raise TypeError(f"Filter.mask: mask must be a 1-D bool array, got {array.dtype} with shape {array.shape}")
        array = array.astype(np.uint8)  # a copy: later changes to the caller's mask do not leak in
        return Filter("mask", _core.FilterExpr.mask(array), array)

    @staticmethod
    def ids(ids: object) -> "Filter":
        array = _validate.int64_array(ids, "Filter.ids")
        if array.ndim != 1:
            raise ValueError(f"Filter.ids: ids must be 1-D, got shape {array.shape}")
        array = array.copy()  # int64_array returns the caller's array when it is already int64
        return Filter("ids", _core.FilterExpr.ids(array), array)

    # combinators
    def __and__(self, other: "Filter") -> "Filter":
        return Filter("and", None, self, _as_filter(other, "&"))

    def __or__(self, other: "Filter") -> "Filter":
        return Filter("or", None, self, _as_filter(other, "|"))

    def __invert__(self) -> "Filter":
        return self._args[0] if self._op == "not" else Filter("not", None, self)

    @property
    def _expr(self) -> Any:
        """The compiled core's form, which an index resolves against its columns."""
        stack = [self]
        while stack:  # post-order without recursion: children first
            f = stack[-1]
            if f._built is not None:
                stack.pop()
                continue
            children = f._children()
            pending = [c for c in children if c._built is None]
            if pending:
                stack.extend(pending)
                continue
            f._built = _core.FilterExpr.combine(f._op, [c._built for c in children])
            stack.pop()
        return self._built

    def _children(self) -> List["Filter"]:
        """The operands: n-ary for & and | (nested nodes of the same op spliced in)."""
        if self._op == "not":
            return [self._args[0]]
        out: List[Filter] = []
        stack, spliced = [self._args[1], self._args[0]], {id(self)}
        while stack:
            f = stack.pop()
            if f._op != self._op:
                out.append(f)
            elif id(f) not in spliced:  # a shared subtree spliced twice adds nothing (a | a is a)
                spliced.add(id(f))
                stack += [f._args[1], f._args[0]]
        return out

    def __reduce__(self):
        # A filter travels (to processes, to Ray actors) as its flattened nodes: the compiled
        # form does not pickle, and a flat list has no depth for pickle to recurse into.
        return Filter._from_nodes, (self._nodes(),)

    def _nodes(self) -> List[tuple]:
        """The filter in post-order: leaves ``(op, *args)`` (their constructors' arguments) and
        combinations ``(op, number of operands)`` after their operands."""
        out: List[tuple] = []
        stack: List[Tuple[Filter, bool]] = [(self, False)]
        while stack:
            f, expanded = stack.pop()
            if f._op not in ("and", "or", "not"):
                out.append((f._op, *f._args))
            elif expanded:
                out.append((f._op, len(f._children())))
            else:
                stack.append((f, True))
                stack.extend((c, False) for c in reversed(f._children()))
        return out

    @staticmethod
    def _from_nodes(nodes: Sequence[tuple]) -> "Filter":
        """The filter `_nodes` describes."""
        stack: List[Filter] = []
        for op, *args in nodes:
            if op in ("and", "or", "not"):
                operands = stack[len(stack) - args[0]:]
                del stack[len(stack) - args[0]:]
                f = operands[0]
                for other in operands[1:]:
                    f = f & other if op == "and" else f | other
                stack.append(~f if op == "not" else f)
            elif op in ("any", "all"):
                stack.append(getattr(Filter.labels(args[0]), op)(args[1]))
            elif op == "mask":
                stack.append(Filter.mask(np.asarray(args[0]).astype(bool)))
            else:
                stack.append(getattr(Filter, op)(*args))  # range, isin, ids
        if len(stack) != 1:
            raise ValueError("filter: malformed nodes")
        return stack[0]

    def __repr__(self) -> str:
        parts: List[str] = []
        stack: List[Union[str, Filter]] = [self]
        while stack:  # no recursion: any depth, any width
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            elif item._op in ("and", "or"):
                sep = " & " if item._op == "and" else " | "
                words: List[Union[str, Filter]] = ["("]
                for i, child in enumerate(item._children()):
                    words += [sep, child] if i else [child]
                stack += reversed(words + [")"])
            elif item._op == "not":
                stack += [item._args[0], "~"]
            else:
                parts.append(item._leaf_repr())
        return "".join(parts)

    def _leaf_repr(self) -> str:
        if self._op in ("any", "all"):
            return f"Filter.labels({self._args[0]!r}).{self._op}({self._args[1].tolist()!r})"
        if self._op == "range":
            return f"Filter.range({self._args[0]!r}, {self._args[1]!r}, {self._args[2]!r})"
        if self._op == "isin":
            return f"Filter.isin({self._args[0]!r}, {self._args[1].tolist()!r})"
        return f"Filter.{self._op}(<{len(self._args[0])} entries>)"


class _LabelColumn:
    __slots__ = ("_column",)

    def __init__(self, column: str) -> None:
        self._column = column

    def any(self, labels: object) -> Filter:
        array = _labels(labels, "Filter.labels(...).any")
        return Filter("any", _core.FilterExpr.labels(self._column, False, array), self._column, array)

    def all(self, labels: object) -> Filter:
        array = _labels(labels, "Filter.labels(...).all")
        return Filter("all", _core.FilterExpr.labels(self._column, True, array), self._column, array)


def _range(where: str, column: object, lo: Tuple[str, Any], hi: Tuple[str, Any]) -> Filter:
    for name, bound in (lo, hi):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
            raise TypeError(f"{where}: {name} must be a number or None, got {type(bound).__name__}")
        if bound is not None and bound != bound:  # NaN of any float type (float, np.float32, ...)
            raise ValueError(f"{where}: {name} is NaN")
    column, lo, hi = _column_name(column), lo[1], hi[1]
    expr = _core.FilterExpr.range(column, _int_bound(lo, math.ceil, _INT64_MIN), _int_bound(hi, math.floor, _INT64_MAX),
                                  _float_bound(lo, -math.inf), _float_bound(hi, math.inf))
    return Filter("range", expr, column, lo, hi)


def _exact_floats(array: np.ndarray) -> np.ndarray:
    """The integers of `array` that a float64 holds exactly, as float64 (no others can equal a
    float64 value)."""
    floats = array.astype(np.float64)
    keep = floats < (2.0**64 if array.dtype.kind == "u" else 2.0**63)
    keep[keep] = floats[keep].astype(array.dtype) == array[keep]
    return floats[keep]


def _column_name(column: object) -> str:
    if not isinstance(column, str):
        raise TypeError(f"filter: a column name must be a str, got {type(column).__name__}")
    return column


def _labels(labels: object, name: str) -> np.ndarray:
    array = _validate.int64_array(labels, name)
    if array.ndim != 1:
        raise ValueError(f"{name}: labels must be 1-D, got shape {array.shape}")
    return array.copy()  # kept for repr: the caller's later changes must not show


def _as_filter(other: object, op: str) -> Filter:
    if not isinstance(other, Filter):
        raise TypeError(f"Filter {op} {type(other).__name__}: both sides must be Filters")
    return other


def _int_bound(bound: Optional[numbers.Real], rounding: Any, unbounded: int) -> int:
    """A bound on an int64 column as an int64: fractions round inwards, huge values clamp."""
    if bound is None:
        return unbounded
    if isinstance(bound, numbers.Integral):
        value = int(bound)
    elif math.isinf(float(bound)):
        return _INT64_MIN if float(bound) < 0 else _INT64_MAX
    else:
        value = int(rounding(bound))
    return min(max(value, _INT64_MIN), _INT64_MAX)


def _float_bound(bound: Optional[numbers.Real], unbounded: float) -> float:
    """A bound on a float64 column: huge integers become infinities of their sign."""
    if bound is None:
        return unbounded
    try:
        return float(bound)
    except OverflowError:
        return math.inf if bound > 0 else -math.inf


# ------------------------------------------------------------------------------------------ index

class GraphIndex:
    """Approximate top-k search over single vectors (FDEs, pooled embeddings, any dense
    vectors), under filters, at any selectivity.

    Parameters
    ----------
    dim : vector dimension.
    metric : ``"ip"`` (inner product, higher is better) or ``"l2"`` (squared Euclidean
        distance, lower is better).
    storage : ``"float32"`` or ``"float16"`` (half the memory and half the bytes read per scored
        vector: up to 20-30 % more queries per second at the same recall, bench/README.md;
        distances from the rounded values).
    degree : most edges per vector (R). More: higher recall per visited node, more memory.
    ef_construction : beam width while inserting (L). More: a better graph, slower adds.
    alpha : pruning slack (>= 1): larger keeps more long edges.
    quantizer : optional trained `ProductQuantizer` of the same dim and metric. Traversals then
        score the vectors' PQ codes (``code_size`` bytes per vector, kept in memory) instead of
        the stored vectors, which are read only to build the graph, to re-score the best ``ef``
        candidates exactly (``search(rerank=True)``, the default) and for exact scans; with
        ``load(mmap=True)`` they stay on disk until read. ``rerank=False`` returns the ADC
        estimates without touching the vectors. The index keeps its own copy of the quantizer:
        training the given one again later does not change the index's codes or tables.

    Construction involves no randomness and gives the same graph for any thread count.
    Attributes are given per vector at ``add``: ``{"year": int array, "score": float array,
    "tags": [label array per vector]}``; the first ``add`` fixes the columns and their kinds.
    """

    def __init__(self, dim: int, *, metric: str = "ip", storage: str = "float32", degree: int = 32,
                 ef_construction: int = 128, alpha: float = 1.0,
                 quantizer: Optional[ProductQuantizer] = None) -> None:
        dim = _validate.positive_int(dim, "dim")
        if metric not in METRICS:
            raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}")
        if storage not in STORAGES:
            raise ValueError(f"storage must be 'float32' or 'float16', got {storage!r}")
        degree = _validate.positive_int(degree, "degree")
        if not 2 <= degree <= 1024:
            raise ValueError(f"degree must be in [2, 1024], got {degree}")
        ef_construction = _validate.positive_int(ef_construction, "ef_construction")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 1.0 <= float(alpha) <= 4.0:
            raise ValueError(f"alpha must be a number in [1, 4], got {alpha!r}")
        self._params = {"dim": dim, "metric": metric, "storage": storage, "degree": degree,
                        "ef_construction": ef_construction, "alpha": float(alpha)}
        self._index = _core.GraphIndex(dim, metric, storage, degree, ef_construction, float(alpha))
        self._quantizer = None
        if quantizer is not None:
            if not isinstance(quantizer, ProductQuantizer):
                raise TypeError(f"quantizer must be a latefold.ProductQuantizer, got {type(quantizer).__name__}")
            if not quantizer.is_trained:
                raise ValueError("quantizer: train it first")
            if quantizer.dim != dim or quantizer.metric != metric:
                raise ValueError(f"quantizer: dim {quantizer.dim} / metric {quantizer.metric!r} differ from the "
                                 f"index's {dim} / {metric!r}")
            # A copy: codes made with these centroids must be saved with them.
            self._quantizer = quantizer._copy()
            self._index.set_quantizer(self._quantizer._pq)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return self._params["dim"]

    @property
    def metric(self) -> str:
        return self._params["metric"]

    @property
    def params(self) -> Dict[str, Any]:
        return dict(self._params)

    @property
    def quantizer(self) -> Optional[ProductQuantizer]:
        """The index's copy of the product quantizer whose codes the traversals score, or None."""
        return self._quantizer

    @property
    def columns(self) -> Dict[str, str]:
        """Attribute column name -> kind (``"int64"``, ``"float64"`` or ``"labels"``)."""
        return dict(self._index.columns())

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, numbers.Integral) and not isinstance(id, bool) and \
            _INT64_MIN <= int(id) <= _INT64_MAX and self._index.contains(int(id))

    def __repr__(self) -> str:
        p = self._params
        return (f"GraphIndex(dim={p['dim']}, metric={p['metric']!r}, storage={p['storage']!r}, "
                f"degree={p['degree']}, size={len(self)})")

    # ------------------------------------------------------------------ mutation
    def add(self, vectors: object, ids: object = None, attributes: Optional[Mapping[str, object]] = None,
            *, threads: Optional[int] = None) -> np.ndarray:
        """Adds vectors ``(n, dim)`` (float32 or float16) with ids (int64, unique, new; default:
        consecutive from the number of vectors ever added) and attributes. Returns the ids.
        Everything is validated first: a failed add leaves the index unchanged."""
        x = self._vectors(vectors, "vectors")
        n = x.shape[0]
        if ids is None:
            start = self._index.slots
            id_array = np.arange(start, start + n, dtype=np.int64)
        else:
            # A copy: the ids are checked in C++ and then used without the GIL.
            id_array = np.array(_validate.int64_array(ids, "ids"), dtype=np.int64, copy=True)
            if id_array.shape != (n,):
                raise ValueError(f"ids must have shape ({n},), got {id_array.shape}")
        columns = attribute_columns(attributes, n, self.columns, self._index.slots > 0)
        self._index.add(x, id_array, columns, _validate.threads(threads))
        return id_array

    def delete(self, ids: object) -> None:
        """Removes vectors by id: they leave every result at once (``compact`` then repairs the
        graph around them). Unknown or repeated ids raise ValueError and delete nothing."""
        array = _validate.int64_array(ids, "ids")
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {array.shape}")
        self._index.remove(np.ascontiguousarray(array))

    def compact(self, *, threads: Optional[int] = None) -> None:
        """Reconnects the neighbours of deleted vectors to each other and unlinks the deleted
        ones, so that searches stop walking through them."""
        self._index.compact(_validate.threads(threads))

    # ------------------------------------------------------------------ search
    def search(self, queries: object, k: int = 10, *, ef: int = 64, filter: object = None,
               threads: Optional[int] = None, explain: bool = False, exact_below: Optional[int] = None,
               gated_above: Optional[float] = None, rerank: bool = True) -> Union[Tuple[np.ndarray, np.ndarray],
                                                              Tuple[np.ndarray, np.ndarray, List[Dict[str, Any]]]]:
        """Top-k for each query row: ``(scores, ids)`` float32 / int64 ``(n_queries, k)``, best
        first (ip: descending inner product; l2: ascending squared distance), padded with
        ``-inf`` (ip) / ``+inf`` (l2) and id ``-1`` only when fewer than k vectors match.

        ``filter``: a `Filter`, a bool mask indexed by id, an array of allowed ids (any integer
        type of 16 bits or more; 8-bit integer arrays, ambiguous, raise TypeError), or a list
        with one of these (or None) per query. ``ef``: beam width (at least k is used); larger
        gives higher recall. The plan of each query follows its filter's exact match count:
        ``exact_below`` (default ``2 * ef * degree``, and anything under 3% of the index) or fewer
        matches are scored exhaustively;
        from ``gated_above`` (default 0.2) of the index on, a plain traversal keeps only matching
        results; in between, a two-hop traversal of the matching vectors runs. With a
        ``quantizer``, ``rerank`` (default True) re-scores a traversal's best ``ef`` from the
        stored vectors; False returns the codes' estimates (exact scans are always exact). With
        ``explain=True`` a third value lists per query the path taken, the matches, the vectors
        scored and the nodes visited."""
        q = self._vectors(queries, "queries", allow_1d=True)
        k = _validate.result_count(k, "k", q.shape[0])
        ef = min(_validate.positive_int(ef, "ef"), sys.maxsize)  # beyond the index, the same
        exact = 0 if exact_below is None else _validate.non_negative_int(exact_below, "exact_below")
        if gated_above is None:
            gated = 0.0
        elif isinstance(gated_above, bool) or not isinstance(gated_above, numbers.Real) or not 0 < gated_above <= 1:
            raise ValueError(f"gated_above must be in (0, 1], got {gated_above!r}")
        else:
            gated = float(gated_above)
        filters = query_filters(filter, q.shape[0])
        scores, ids, info = self._index.search(q, k, ef, filters, exact, gated, bool(rerank),
                                               _validate.threads(threads))
        if not explain:
            return scores, ids
        stats = [{"path": p, "matches": m, "distances": d, "visited": v} for p, m, d, v in info]
        return scores, ids, stats

    # ------------------------------------------------------------------ persistence
    def save(self, path: "os.PathLike[str] | str") -> None:
        """Writes the index (parameters, vectors, graph, ids, deletions, attributes, quantizer) to
        one checksummed file, atomically (README, "Files"). Searches may run meanwhile; changes
        wait until it is written."""
        self._index.save(os.fspath(path))

    @classmethod
    def load(cls, path: "os.PathLike[str] | str", *, mmap: bool = False, verify: bool = True) -> "GraphIndex":
        """Reads an index written by :meth:`save` (or by latefold 0.1.0).

        ``mmap=True`` maps the file instead of reading it: the vectors, edges, codes and ids are
        used in place (the page cache holds what searches touch, so an index larger than memory
        can be searched) and are copied into memory on the first ``add`` or ``compact``; the
        file is never written. It must not be truncated or rewritten in place while mapped
        (``save`` replaces a file by renaming, which is safe).
        ``verify=True`` checks every section's checksum first, which reads the whole file once;
        ``verify=False`` checks the header, the description and every index the search follows
        (edges, ids, offsets), but not the vectors' bytes."""
        if not isinstance(mmap, (bool, np.bool_)) or not isinstance(verify, (bool, np.bool_)):
            raise TypeError("mmap and verify must be bools")
        return cls._wrap(_core.GraphIndex.load(os.fspath(path), bool(mmap), bool(verify)))

    def __reduce__(self):
        # Pickled (and copied) as the bytes save() writes: self-contained, also for a mapped index.
        return GraphIndex._from_bytes, (self._index.to_bytes(),)

    @classmethod
    def _from_bytes(cls, image: bytes) -> "GraphIndex":
        return cls._wrap(_core.GraphIndex.from_bytes(image))

    @classmethod
    def _wrap(cls, core: Any) -> "GraphIndex":
        """An index around a compiled one (its parameters and quantizer read from it)."""
        index = cls.__new__(cls)
        index._index = core
        params = core.params()
        index._params = {name: params[name] for name in ("dim", "metric", "storage", "degree", "ef_construction", "alpha")}
        quantizer = index._index.quantizer()
        index._quantizer = None if quantizer is None else ProductQuantizer._wrap(quantizer)
        return index

    # ------------------------------------------------------------------ helpers
    def _vectors(self, x: object, name: str, allow_1d: bool = False) -> np.ndarray:
        """Rows as float32 (queries, float32 storage) or float16 bits (float16 storage)."""
        x = np.asarray(x)
        if allow_1d and x.ndim == 1:
            x = x.reshape(1, -1)
        array = _validate.float_matrix(x, name, self.dim, "index")
        if name == "queries" or self._params["storage"] == "float32":
            return array
        with np.errstate(over="ignore"):
            half = array.astype(np.float16)
        bad = ~np.isfinite(half).all(axis=1)
        if bad.any():
            raise ValueError(f"{name}: row {int(np.argmax(bad))} overflows float16 storage")
        return half.view(np.uint16)

def attribute_columns(attributes: Optional[Mapping[str, object]], n: int, existing: Mapping[str, str],
                      has_rows: bool) -> list:
    """The core's form of an add's attributes for n rows; `existing`: the index's columns (name ->
    kind), which every add of an index that has rows must give exactly."""
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a dict of name -> column, got {type(attributes).__name__}")
    columns = []
    for name, column in attributes.items():
        if not isinstance(name, str):
            raise TypeError(f"attributes: column names must be str, got {type(name).__name__}")
        if isinstance(column, (list, tuple)):
            columns.append(_label_column(name, column, n))
        else:
            columns.append(_numeric_column(name, column, n))
        kind = columns[-1][1]
        if name in existing and existing[name] != kind:
            raise TypeError(f"attributes: column {name!r} holds {existing[name]}, got {kind}")
    if has_rows and set(attributes) != set(existing):
        missing = sorted(set(existing) - set(attributes))
        extra = sorted(set(attributes) - set(existing))
        raise ValueError(f"attributes: every add must give the index's columns {sorted(existing)}"
                         + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
    return columns


def query_filters(spec: object, nq: int) -> list:
    """The filters' core forms, one per query (None: unfiltered); [] without a filter."""
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        if len(spec) != nq:
            raise ValueError(f"filter: a list of filters needs one per query ({nq}), got {len(spec)}")
        return [None if f is None else _as_query_filter(f)._expr for f in spec]
    return [_as_query_filter(spec)._expr] * nq


def _as_query_filter(f: object) -> Filter:
    if isinstance(f, Filter):
        return f
    if isinstance(f, np.ndarray):
        array = _validate.mask_or_ids(f, "filter")  # the rule of ProductQuantizer.search(allowed=)
        return Filter.mask(array) if array.dtype == np.bool_ else Filter.ids(array)
    raise TypeError(f"filter must be a Filter, a bool mask, an integer id array or a list of these, "
                    f"got {type(f).__name__}")


def _numeric_column(name: str, column: object, n: int) -> tuple:
    array = np.asarray(column)
    if array.dtype.kind in "iu":
        if array.dtype == np.uint64 and array.size and array.max() > _INT64_MAX:
            raise ValueError(f"attributes: column {name!r} holds values beyond int64")
        values, kind = np.require(array, np.int64, ["C", "A"]), "int64"  # aligned too
    elif array.dtype.kind == "f":
        values, kind = np.require(array, np.float64, ["C", "A"]), "float64"
        if np.isnan(values).any():
            raise ValueError(f"attributes: column {name!r} row {int(np.argmax(np.isnan(values)))} is NaN")
    else:
        raise TypeError(f"attributes: column {name!r} must be an integer or float array, or a list of "
                        f"label arrays; got {array.dtype}")
    if values.shape != (n,):
        raise ValueError(f"attributes: column {name!r} must have shape ({n},), got {values.shape}")
    return (name, kind, values)


def _label_column(name: str, column: Sequence[object], n: int) -> tuple:
    if len(column) != n:
        raise ValueError(f"attributes: column {name!r} must hold one label array per vector ({n}), got {len(column)}")
    rows = []
    for i, labels in enumerate(column):
        array = np.asarray(labels)
        if array.size == 0:
            array = array.astype(np.int64)
        if array.dtype.kind not in "iu":
            raise TypeError(f"attributes: column {name!r} row {i}: labels must be integers, got {array.dtype}")
        if array.ndim > 1:
            raise ValueError(f"attributes: column {name!r} row {i}: labels must be 1-D")
        if array.dtype == np.uint64 and array.size and array.max() > _INT64_MAX:
            raise ValueError(f"attributes: column {name!r} row {i} holds labels beyond int64")
        rows.append(array.reshape(-1).astype(np.int64, copy=False))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    labels = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return (name, "labels", offsets, np.ascontiguousarray(labels, dtype=np.int64))
