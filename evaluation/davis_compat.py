"""Make davisinteractive 1.0.4 run on numpy 2, networkx 3 and pandas 2+.

The package was last released in 2020. Each patch below restores exactly one thing it relies on
that newer libraries removed, and only where it is missing. Call `apply()` before the first
`import davisinteractive`: some removed names are evaluated at import time (a default argument
`dtype=np.int` in its dataset class).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)

# numpy 1.24 removed these aliases of the builtins; the package uses them throughout.
_NUMPY_ALIASES = (("int", int), ("float", float), ("bool", bool))
_PATCHED_MARK = "_mivos_compat"


def _patch_numpy() -> list[str]:
    patched = []
    for name, builtin in _NUMPY_ALIASES:
        if name not in np.__dict__:
            # np.int etc. were exactly the builtins, so restoring them changes no result.
            setattr(np, name, builtin)
            patched.append(f"numpy.{name}")
    if "trapz" not in np.__dict__ and hasattr(np, "trapezoid"):
        # numpy 2 renamed trapz to trapezoid (same signature); the AUC is computed with trapz.
        np.trapz = np.trapezoid
        patched.append("numpy.trapz")
    return patched


def _patch_networkx() -> list[str]:
    import networkx as nx

    if hasattr(nx, "from_scipy_sparse_matrix"):
        return []
    # networkx 3 removed the *_matrix name; *_array builds the same graph (edge weights under
    # "weight") from the robot's radius-neighbour graph.
    nx.from_scipy_sparse_matrix = nx.from_scipy_sparse_array
    return ["networkx.from_scipy_sparse_matrix"]


def _patch_pandas_summary() -> list[str]:
    from davisinteractive.evaluation.service import EvaluationService

    original = EvaluationService.summarize_report
    if getattr(original, _PATCHED_MARK, False):
        return []

    @functools.wraps(original)
    def summarize_report(self, df):
        # The report's text column session_id makes groupby().mean() raise on pandas >= 2
        # (older pandas silently skipped it). The original drops that column right after the
        # mean, so dropping it first gives the same summary on every pandas version.
        df = df.drop(columns=["session_id"], errors="ignore")
        # Rows are concatenated onto an empty, column-only frame; newer pandas then keeps every
        # column as object dtype, and the curve's np.interp cannot take objects. Re-infer the
        # numeric dtypes the rows were built with.
        return original(self, df.infer_objects())

    setattr(summarize_report, _PATCHED_MARK, True)
    EvaluationService.summarize_report = summarize_report
    return ["EvaluationService.summarize_report"]


def apply() -> list[str]:
    """Apply every patch still needed (idempotent); returns the names patched by this call."""
    patched = _patch_numpy() + _patch_networkx() + _patch_pandas_summary()
    if patched:
        log.debug("davisinteractive compatibility patches: %s", ", ".join(patched))
    return patched
