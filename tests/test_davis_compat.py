"""The davisinteractive compatibility layer: each patch restores what it should, only if missing."""

from __future__ import annotations

from unittest import mock

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from evaluation import davis_compat


def test_numpy_aliases_and_trapz_restored_when_missing(monkeypatch):
    for name in ("int", "float", "bool", "trapz"):
        # Recorded as absent first, so the teardown removes what the patch added.
        monkeypatch.setattr(np, name, None, raising=False)
        monkeypatch.delattr(np, name)
    patched = davis_compat._patch_numpy()
    assert {"numpy.int", "numpy.float", "numpy.bool", "numpy.trapz"} <= set(patched)
    assert np.int is int and np.float is float and np.bool is bool
    assert np.trapz([0.0, 1.0, 1.0], x=[0.0, 1.0, 3.0]) == pytest.approx(2.5)
    assert davis_compat._patch_numpy() == []  # idempotent


def test_numpy_left_alone_where_present(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(np, "trapz", sentinel, raising=False)
    davis_compat._patch_numpy()
    assert np.trapz is sentinel


def test_networkx_sparse_constructor(monkeypatch):
    monkeypatch.setattr(nx, "from_scipy_sparse_matrix", None, raising=False)
    monkeypatch.delattr(nx, "from_scipy_sparse_matrix")
    assert davis_compat._patch_networkx() == ["networkx.from_scipy_sparse_matrix"]
    matrix = scipy.sparse.csr_matrix(np.array([[0, 1.5, 0], [1.5, 0, 2.0], [0, 2.0, 0]]))
    graph = nx.from_scipy_sparse_matrix(matrix)
    assert sorted(graph.edges(data="weight")) == [(0, 1, 1.5), (1, 2, 2.0)]
    assert davis_compat._patch_networkx() == []


def _report(service_columns) -> pd.DataFrame:
    """A report built as the package's LocalStorage does: rows concatenated onto an empty frame."""
    rows = []
    for interaction, timing, jaccard in ((1, 2.0, 0.5), (2, 1.0, 0.7)):
        for frame in range(2):
            rows.append(pd.DataFrame({
                "session_id": ["abc"], "sequence": ["seq"], "scribble_idx": [1],
                "interaction": [interaction], "timing": [timing], "object_id": [1],
                "frame": [frame], "jaccard": [jaccard], "contour": [1.0],
                "j_and_f": [(jaccard + 1.0) / 2],
            }, columns=service_columns))  # fmt: skip
    report = pd.DataFrame(columns=service_columns)
    for row in rows:
        report = pd.concat([report, row], ignore_index=True)
    return report


def test_summary_of_a_report_with_a_text_column():
    pytest.importorskip("davisinteractive")
    davis_compat.apply()
    from davisinteractive.dataset import Davis
    from davisinteractive.evaluation import EvaluationService
    from davisinteractive.storage import LocalStorage

    from evaluation.dataset import SequenceInfo, registered

    with registered([SequenceInfo("seq", 2, 1, (8, 8), 1)], "val"):
        with mock.patch.object(Davis, "check_files", return_value=True):
            service = EvaluationService("val", davis_root="/nonexistent-davis", max_i=2, max_t=10)
        summary = service.summarize_report(_report(LocalStorage.COLUMNS))
    # Curve: (0, 0), cumulative mean timings 2 and 3 s, then (global timeout 10 s, last value).
    assert summary["curve"]["time"] == [0.0, 2.0, 3.0, 10.0]
    assert summary["curve"]["J_AND_F"] == pytest.approx([0.0, 0.75, 0.85, 0.85])
    expected_auc = (0.75 * 2 / 2 + (0.75 + 0.85) / 2 * 1 + 0.85 * 7) / 10
    assert summary["auc"] == pytest.approx(expected_auc)
    assert summary["metric_at_threshold"]["J_AND_F"] == pytest.approx(0.85)  # 60 s > timeout


def test_apply_is_idempotent():
    pytest.importorskip("davisinteractive")
    davis_compat.apply()
    assert davis_compat.apply() == []
