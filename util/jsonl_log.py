"""An append-only JSON-lines log that survives a crash: each line is flushed and synced."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class JsonlLog:
    """Appends one JSON object per line, with a wall-clock `time`; never raises on I/O errors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, **fields) -> None:
        record = {"time": round(time.time(), 3), **fields}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # the log must never stop the annotation itself
            log.warning("%s: cannot append to the interaction log (%s)", self.path, exc)

    def read(self) -> list[dict]:
        """Every complete record (a line cut by a crash is skipped)."""
        records = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return records
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records
