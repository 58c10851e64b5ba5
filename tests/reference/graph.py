"""numpy oracles for filtered search: filter evaluation and brute-force filtered top-k."""

from __future__ import annotations

import math

import numpy as np


def evaluate(spec, ids, columns):
    """Bool mask over rows for a filter spec written as nested tuples:
    ("any"|"all", column, labels), ("range", column, lo, hi), ("mask", bool array),
    ("ids", int array), ("isin", column, numbers), ("and"|"or", a, b, ...), ("not", a).
    `columns`: name -> numeric array or list of label arrays (by row); `ids`: the row ids."""
    op = spec[0]
    if op in ("and", "or"):
        out = evaluate(spec[1], ids, columns)
        for child in spec[2:]:
            out = out & evaluate(child, ids, columns) if op == "and" else out | evaluate(child, ids, columns)
        return out
    if op == "not":
        return ~evaluate(spec[1], ids, columns)
    if op == "mask":
        mask = spec[1]
        inside = (ids >= 0) & (ids < len(mask))
        out = np.zeros(len(ids), dtype=bool)
        out[inside] = mask[ids[inside]]
        return out
    if op == "ids":
        return np.isin(ids, spec[1])
    if op in ("any", "all"):
        wanted = set(int(v) for v in spec[2])
        rows = columns[spec[1]]
        if op == "any":
            return np.array([bool(wanted & set(int(v) for v in r)) for r in rows], dtype=bool)
        return np.array([wanted <= set(int(v) for v in r) for r in rows], dtype=bool)
    values = np.asarray(columns[spec[1]])
    if op == "isin":  # exact comparisons of Python numbers, as for ranges
        wanted = set(spec[2])
        return np.array([v in wanted for v in values.tolist()], dtype=bool)
    lo = -math.inf if spec[2] is None else spec[2]
    hi = math.inf if spec[3] is None else spec[3]
    # Compare exactly (Python numbers), not through a float64 cast of int64 values.
    return np.array([lo <= v <= hi for v in values.tolist()], dtype=bool)


def filtered_topk(x, ids, queries, k, mask, metric="ip"):
    """Exact top-k among the rows where `mask` holds, float64; ties to the lower id.
    Returns (scores, ids) padded with -inf/+inf and -1."""
    x64, q64 = x.astype(np.float64), queries.astype(np.float64)
    if metric == "ip":
        s = q64 @ x64.T
        key = -s
    else:
        s = (q64 ** 2).sum(1)[:, None] + (x64 ** 2).sum(1)[None, :] - 2 * q64 @ x64.T
        key = s
    pad = -np.inf if metric == "ip" else np.inf
    out_s = np.full((len(queries), k), pad)
    out_i = np.full((len(queries), k), -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    for qi in range(len(queries)):
        order = rows[np.lexsort((ids[rows], key[qi, rows]))][:k]
        out_s[qi, :len(order)] = s[qi, order]
        out_i[qi, :len(order)] = ids[order]
    return out_s, out_i


def recall(found, truth):
    hits = total = 0
    for f, t in zip(found, truth):
        t = set(int(v) for v in t if v >= 0)
        hits += len(t & set(int(v) for v in f if v >= 0))
        total += len(t)
    return hits / total if total else 1.0
