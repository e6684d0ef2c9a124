"""A small JSON file beside the masks with what a resume needs besides them."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = ".mivos_session.json"
LOG_FILE = "interactions.jsonl"


def read_state(folder: Path) -> dict:
    """The saved state, or {} when there is none or it is unreadable."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def update_state(folder: Path, **fields) -> None:
    """Merge `fields` into the state file atomically (temp file + rename)."""
    state = {**read_state(folder), **fields}
    tmp = folder / f"{STATE_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, folder / STATE_FILE)
