"""Locating ../shared (spec, schemas, synthetic-weight tool, parity vectors) for tests.

Tests that need it skip with a reason when it is absent, so a bare clone still runs the rest.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
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


_GENERATED: dict[tuple[str, int], Path] = {}


def _generated(schema: str, salt: int) -> Path:
    """The synthetic checkpoint for (schema, salt), made once per test process: making one
    (hundreds of MB for stcn and s2m) costs seconds, copying it a fraction of that."""
    key = (schema, salt)
    if key not in _GENERATED:
        folder = Path(tempfile.mkdtemp(prefix="mivos-test-synthetic-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        schema_path = require(f"checkpoints/schema/{schema}.json")
        sd = synth_module().synth_state_dict(str(schema_path), salt)
        torch.save(sd, folder / f"{schema}.pth")
        _GENERATED[key] = folder / f"{schema}.pth"
    return _GENERATED[key]


def write_synthetic_checkpoint(schema: str, out: Path, salt: int = 0) -> Path:
    """Put the synthetic checkpoint for `schema` (e.g. 'stcn') at `out` and return `out`.

    A hard link to the one generated file where the file system allows (else a copy): a suite
    run placed ~20 sets of ~360 MB in the temporary folder, enough to fill a CI disk. Never
    write into `out`; a test that needs a damaged checkpoint writes a new file from its bytes.
    """
    source = _generated(schema, salt)
    out.unlink(missing_ok=True)
    try:
        os.link(source, out)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(source, out)
    return out
