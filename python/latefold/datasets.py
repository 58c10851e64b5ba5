"""Small real datasets shipped with the package."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from typing import List, Set

import numpy as np

from .multivectors import MultiVectors


@dataclass(frozen=True)
class RetrievalDataset:
    """Documents and queries as token-vector sets, with relevance labels.

    ``relevant[i]`` is the set of document rows relevant to query i; ``docs_pooled`` and
    ``queries_pooled`` are the single-vector (pooled) embeddings of the same texts.
    """

    name: str
    docs: MultiVectors
    queries: MultiVectors
    doc_ids: List[str]
    query_texts: List[str]
    relevant: List[Set[int]]
    docs_pooled: np.ndarray
    queries_pooled: np.ndarray


def load_limit_small() -> RetrievalDataset:
    """LIMIT-small (Weller et al. 2025, CC BY 4.0): 46 documents, 1,000 queries, 128-d float16
    token vectors of all-MiniLM-L6-v2. Single-vector retrieval fails on it; MaxSim does not."""
    root = resources.files("latefold") / "data" / "limit_small"

    def array(name: str) -> np.ndarray:
        with (root / f"{name}.npy").open("rb") as f:
            return np.load(f, allow_pickle=False)

    doc_ids = (root / "doc_ids.txt").read_text(encoding="utf-8").splitlines()
    rows = list(csv.reader((root / "queries.tsv").read_text(encoding="utf-8").splitlines()[1:],
                           delimiter="\t"))
    query_ids = [r[0] for r in rows]
    doc_row = {d: i for i, d in enumerate(doc_ids)}
    query_row = {q: i for i, q in enumerate(query_ids)}
    relevant: List[Set[int]] = [set() for _ in query_ids]
    qrels = (root / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for query, doc, score in csv.reader(qrels, delimiter="\t"):
        if float(score) > 0:
            relevant[query_row[query]].add(doc_row[doc])
    return RetrievalDataset(
        name="LIMIT-small",
        docs=MultiVectors(array("docs_tokens"), array("docs_offsets")),
        queries=MultiVectors(array("queries_tokens"), array("queries_offsets")),
        doc_ids=doc_ids,
        query_texts=[r[1] for r in rows],
        relevant=relevant,
        docs_pooled=array("docs_pooled"),
        queries_pooled=array("queries_pooled"),
    )
