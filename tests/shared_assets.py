"""Locating ../shared (spec, schemas, synthetic-weight tool, parity vectors) for tests.

Tests that need it skip with a reason when it is absent, so a bare clone still runs the rest.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIVOS_SHARED", REPO.parent / "shared"))


def require(relative: str) -> Path:
    """Path under ../shared, or skip the test with a clear reason."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present (set MIVOS_SHARED to the shared folder)")
    return path


def synth_module():
    """The shared synthetic-weights tool, imported from its file."""
    path = require("tools/synth_weights.py")
    spec = importlib.util.spec_from_file_location("synth_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_synthetic_checkpoint(schema: str, out: Path, salt: int = 0) -> Path:
    """torch.save a synthetic state dict for `schema` (e.g. 'stcn') to `out`."""
    sd = synth_module().synth_state_dict(str(require(f"checkpoints/schema/{schema}.json")), salt)
    torch.save(sd, out)
    return out
