"""The demo prints results and reproduces the dataset's published recall figures."""

from __future__ import annotations

import numpy as np

import latefold as lf
from latefold.__main__ import main, pooled_ranking, recall_at


def test_demo_runs(capsys):
    assert main(["demo", "--threads", "2", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "exact MaxSim" in out and "recall@2" in out and "CC BY 4.0" in out
    assert "MultiVectorIndex" in out and "recall@10 against exact MaxSim: 1.0000" in out


def test_demo_recall_matches_reference_figures():
    # Reference values from the dataset card (exact brute force): MaxSim recall@2 = 0.9640,
    # pooled cosine recall@2 = 0.1620 (the pooled vectors ship as float16, hence the tolerance).
    data = lf.datasets.load_limit_small()
    _, ids = lf.maxsim_topk(data.queries, data.docs, 10)
    assert abs(recall_at(ids, data.relevant, 2) - 0.9640) < 1e-9
    pooled = pooled_ranking(data.queries_pooled, data.docs_pooled)
    assert abs(recall_at(pooled, data.relevant, 2) - 0.1620) < 0.01


def test_info_command(capsys):
    assert main(["info"]) == 0
    assert "active" in capsys.readouterr().out


def test_recall_definition():
    ranked = np.array([[3, 1, 2], [0, 1, 2]])
    assert recall_at(ranked, [{1, 2}, {0}], 2) == (0.5 + 1.0) / 2
