"""Background saving of per-frame index masks, so the GUI and the worker never wait on disk.

Frames are marked dirty rather than queued: a frame edited ten times before the writer gets to
it is rendered and written once, with its state at write time. Every submission carries a
per-frame version so `flush` can wait for exactly what was submitted before it was called,
even while new submissions keep arriving.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from util.mask_io import write_index_mask

log = logging.getLogger(__name__)


def _log_error(t: int, exc: Exception) -> None:
    log.error("could not write the mask of frame %d: %s", t, exc)


class MaskWriter:
    """Writes frames' masks to a folder on a background thread, atomically, newest state wins."""

    def __init__(
        self,
        folder: str | Path,
        names: Sequence[str],
        render: Callable[[int], np.ndarray],
        on_error: Callable[[int, Exception], None] | None = None,
    ) -> None:
        """render(t) runs on the writer thread and returns frame t's (H, W) uint8 mask."""
        self._folder = Path(folder)
        self._names = list(names)
        self._render = render
        self._on_error = on_error or _log_error
        self._cond = threading.Condition()
        self._dirty: OrderedDict[int, None] = OrderedDict()  # FIFO set of frames to (re)write
        self._version: dict[int, int] = {}  # bumped by every submit of a frame
        self._settled: dict[int, int] = {}  # version last written (or failed) per frame
        self._failed: set[int] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mask-writer", daemon=True)
        self._thread.start()

    @property
    def folder(self) -> Path:
        with self._cond:
            return self._folder

    def submit(self, t: int) -> None:
        """Frame t changed: (re)write folder/<names[t]>.png soon."""
        if not 0 <= t < len(self._names):
            raise IndexError(f"frame {t} is outside 0..{len(self._names) - 1}")
        with self._cond:
            if self._closed:
                raise RuntimeError("submit() on a closed MaskWriter")
            self._mark(t)
            self._cond.notify_all()

    def retarget(self, folder: str | Path) -> None:
        """Write to `folder` from now on; every frame ever submitted is written there again.

        Resubmitting everything (not only failed frames) gives the new folder the full current
        state, e.g. after the user picks a writable folder once the first one failed.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("retarget() on a closed MaskWriter")
            self._folder = Path(folder)
            for t in list(self._version):
                self._mark(t)
            self._cond.notify_all()

    def pending(self) -> int:
        """Frames submitted but not yet settled (written or failed), the one being written too."""
        with self._cond:
            return sum(1 for t, v in self._version.items() if self._settled.get(t, 0) < v)

    def failed(self) -> set[int]:
        """Frames whose last write failed (cleared by a later successful write)."""
        with self._cond:
            return set(self._failed)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is written; True if so and none failed.

        A failed frame counts as settled (it is not retried until resubmitted or retargeted),
        so flush does not hang on a read-only folder; it returns False and failed() says which.
        """
        with self._cond:
            target = {t: v for t, v in self._version.items() if self._settled.get(t, 0) < v}

            def settled() -> bool:
                return all(self._settled.get(t, 0) >= v for t, v in target.items())

            if not self._cond.wait_for(settled, timeout):
                return False
            return not (self._failed & target.keys())

    def close(self) -> None:
        """Flush, then stop the thread. Later submits raise RuntimeError."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> MaskWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mark(self, t: int) -> None:
        """Caller holds the lock."""
        self._version[t] = self._version.get(t, 0) + 1
        self._dirty[t] = None

    def _take(self) -> tuple[int, int, Path] | None:
        """Next (frame, version, folder) to write; None once closed and drained."""
        with self._cond:
            self._cond.wait_for(lambda: self._dirty or self._closed)
            if not self._dirty:
                return None
            t, _ = self._dirty.popitem(last=False)
            return t, self._version[t], self._folder

    def _run(self) -> None:
        while (job := self._take()) is not None:
            t, version, folder = job
            error: Exception | None = None
            try:
                write_index_mask(folder / f"{self._names[t]}.png", self._render(t))
            except Exception as exc:  # noqa: BLE001 - thread boundary: report, keep running
                error = exc
            if error is not None:
                with self._cond:
                    self._failed.add(t)
                # Report before settling, so a flush() that returns has seen the error reported.
                self._report(t, error)
            with self._cond:
                self._settled[t] = max(self._settled.get(t, 0), version)
                if error is None:
                    self._failed.discard(t)
                self._cond.notify_all()

    def _report(self, t: int, error: Exception) -> None:
        try:
            self._on_error(t, error)
        except Exception:  # noqa: BLE001 - a broken callback must not stop the writer
            log.exception("on_error callback failed for frame %d", t)
