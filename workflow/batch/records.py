"""What makes a batch restartable: an item's fingerprint and its record.

OUTPUT/.mivos_batch.json is written when an item starts ("running") and again, last, when
it is finished ("done"), atomically both times, after every mask (written atomically by
workflow.mask_writer), the project file and every export. An item is finished when its
record says "done", names the fingerprint the item has now, and every file it lists still
exists: a run killed at any point leaves either a finished item or one the next run redoes.

A record also marks the folder as the batch's: when the batch redoes an item there (it was
interrupted, or its inputs or settings changed), it first removes what its earlier run wrote
(the project file, the masks, the exports), so the item comes out as
`python -m inference_core` writes it into a new folder, whatever happened before; a mask
file since deleted from the masks folder leaves no imported annotation behind. Never when
the folder holds a person's work (GUI annotations, an interaction log, a first-release
session, a project file it cannot read): there the batch does what the headless command
does, keeping that work as annotations.

The fingerprint is a SHA-256 over the item's inputs and settings:
- the frames: a video's path, size and modification time (ns); an image folder's file names,
  sizes and modification times. Not their content: reading a whole dataset again just to
  skip it would cost as much as a large part of the work.
- the masks: every PNG's name and SHA-1 of its content (small files, and the ones people edit);
- the settings: every option of the item's headless command line (start, end, num_objects,
  resolution, mem_freq, top_k, no_amp, full_masks, exports, fps and any option added later),
  with the weights as path, size and modification time. The device is recorded, not part of
  the fingerprint: the same weights give the same masks up to float noise on another device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from util.mask_io import list_mask_files
from workflow.headless import export_targets
from workflow.mask_files import file_sha1
from workflow.state import LEGACY_STATE_FILE, LOG_FILE, STATE_FILE

RECORD_FILE = ".mivos_batch.json"
RECORD_FORMAT = "mivos-batch-record"
RECORD_VERSION = 1
# Where the item's files are, not what it computes: left out of the settings.
_NOT_SETTINGS = {"video", "images", "masks", "output", "device", "s2m_model", "export"}


def _stat(path: Path) -> dict[str, Any]:
    """{"path", "bytes", "mtime_ns"} of a file, or {"path", "missing": true}."""
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _folder_listing(folder: Path) -> list[list[Any]] | dict[str, Any]:
    """[[name, bytes, mtime_ns], ...] of a folder's visible files, sorted by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return {"path": str(folder), "missing": True}
    return [
        [e.name, e.stat().st_size, e.stat().st_mtime_ns]
        for e in entries
        if e.is_file() and not e.name.startswith(".")
    ]


def inputs_of(args: argparse.Namespace) -> dict[str, Any]:
    """The item's inputs as JSON-able data (see the module docstring for what is read)."""
    if args.video:
        frames: Any = _stat(Path(args.video))
    else:
        frames = {"path": str(args.images), "files": _folder_listing(Path(args.images))}
    masks_dir = Path(args.masks)
    try:
        masks: Any = [[p.name, file_sha1(p)] for p in list_mask_files(masks_dir)]
    except OSError:
        masks = {"path": str(masks_dir), "missing": True}
    return {"frames": frames, "masks": {"path": str(masks_dir), "files": masks}}


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """Every option of the item's command line that changes what it computes, JSON-able.

    Exports are listed relative to the output folder when inside it (the default places).
    """
    out_dir = Path(args.output)
    settings: dict[str, Any] = {}
    for key, value in sorted(vars(args).items()):
        if key in _NOT_SETTINGS:
            continue
        if key in ("prop_model", "fusion_model"):
            value = _stat(Path(value))
        elif not isinstance(value, (str, int, float, bool, type(None))):
            value = repr(value)  # an option added later with a type JSON cannot hold
        settings[key] = value
    settings["export"] = [
        [kind, _relative(path, out_dir)] for kind, path in export_targets(args, out_dir)
    ]
    return settings


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def fingerprint(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(hex SHA-256 of the inputs and settings, the settings) of one item's command line."""
    data = {"inputs": inputs_of(args), "settings": settings_of(args)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), data["settings"]


def read_record(out_dir: str | Path) -> dict[str, Any] | None:
    """out_dir's record (running or done), or None when absent, unreadable or of another
    format or version."""
    try:
        record = json.loads((Path(out_dir) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    if record.get("version") != RECORD_VERSION:
        return None
    return record


def is_finished(out_dir: str | Path, digest: str) -> bool:
    """Whether out_dir holds a finished item with this fingerprint (its record says done,
    matches, and every file it lists still exists)."""
    record = read_record(out_dir)
    if record is None or record.get("status") != "done" or record.get("fingerprint") != digest:
        return False
    folder = Path(out_dir)
    names = [*record.get("outputs", []), *record.get("exports", [])]
    return all((folder / name).exists() for name in names)


def holds_persons_work(out_dir: str | Path) -> bool:
    """Whether out_dir holds work the batch did not make and must keep: an annotation that is
    not an imported mask file, the GUI's interaction log, a first-release session, or a
    project file that cannot be read (the headless command then names it)."""
    folder = Path(out_dir)
    if (folder / LOG_FILE).exists() or (folder / LEGACY_STATE_FILE).exists():
        return True
    try:
        data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(annotations, dict):
        return True
    return any(not isinstance(a, dict) or a.get("kind") != "imported" for a in annotations.values())


def clear_outputs(out_dir: str | Path, record: dict[str, Any], exports: list[str]) -> None:
    """Remove what an earlier batch run wrote in out_dir: the project file, the masks its
    `record` lists (file names, nothing else: the folder may hold other PNGs), the exports
    it lists and `exports` (paths relative to out_dir, files or folders). Nothing outside
    out_dir is touched. Only for a folder with a record and no person's work (see the module
    docstring); OSError when something cannot be removed.
    """
    folder = Path(out_dir)
    root = folder.resolve()

    def inside(path: Path) -> bool:
        resolved = path.resolve()
        return resolved != root and resolved.is_relative_to(root)

    (folder / STATE_FILE).unlink(missing_ok=True)
    for name in record.get("outputs", []):
        path = folder / name
        if Path(name).name == name and name.endswith(".png") and inside(path):
            path.unlink(missing_ok=True)
    for name in {*record.get("exports", []), *exports}:
        path = folder / name
        if not inside(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_record(out_dir: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write `record` (with the format, version, host:pid and time added) as out_dir's
    record, atomically: temporary file, fsync, rename, fsync of the folder, so a power cut
    leaves the old record or the new one. Returns the record written; OSError on failure."""
    folder = Path(out_dir)
    record = {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        **record,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    target = folder / RECORD_FILE
    tmp = folder / f"{RECORD_FILE}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return record


def running_record(
    digest: str, line: int, outputs: list[str], exports: list[str]
) -> dict[str, Any]:
    """The record of an item that started: the folder is the batch's, the item unfinished.
    outputs: the mask files it writes ([] until its frames are known), exports: its exports,
    both relative to the folder: what a redo clears first."""
    return {
        "status": "running", "fingerprint": digest, "line": line, "outputs": outputs,
        "exports": exports,
    }  # fmt: skip


def done_record(
    digest: str,
    line: int,
    settings: dict[str, Any],
    frames: int,
    outputs: list[str],
    exports: list[str],
    seconds: float,
    device: str,
) -> dict[str, Any]:
    """The completion record: frames written, the settings, the mask files (`outputs`) and
    exports (files or folders) that must exist, relative to the output folder, the item's
    wall time (s) and device."""
    return {
        "status": "done", "fingerprint": digest, "line": line, "frames": frames,
        "seconds": round(seconds, 3), "device": device, "settings": settings,
        "outputs": outputs, "exports": exports,
    }  # fmt: skip


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; not possible on every system (Windows), where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
