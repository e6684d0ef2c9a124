"""The batch manifest: one JSON object per line, each an item the headless command could run.

    {"video": "clips/a.mp4", "masks": "masks/a", "output": "out/a"}
    {"images": "frames/b", "masks": "masks/b", "output": "out/b", "start": 10, "end": 200,
     "num_objects": 2, "resolution": 360}

`video` or `images` (exactly one), `masks` and `output` are required; `start`, `end`,
`num_objects` and `resolution` are optional (null = the default). Relative paths are relative
to the manifest's folder, so a manifest travels with its dataset. Blank lines are skipped.
The whole manifest is checked before any work starts: the first bad line raises
ManifestError naming the file and the line (an output folder that is the line's frames or
masks folder, or another line's output folder, is a bad line too). Whether the files exist
is not checked here: a missing video or mask folder fails that item only, when it runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("masks", "output")
SOURCES = ("video", "images")
OPTIONAL_INTS = ("start", "end", "num_objects", "resolution")
KNOWN = {*SOURCES, *REQUIRED, *OPTIONAL_INTS}


class ManifestError(ValueError):
    """A manifest that cannot be run; the message names the file and, when it applies, the
    1-based line: "manifest.jsonl:3: ..."."""

    def __init__(self, path: Path, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


@dataclass(frozen=True)
class Item:
    """One manifest line; paths are absolute (resolved against the manifest's folder)."""

    line: int  # 1-based line of the manifest: the item's name in reports
    video: str | None
    images: str | None
    masks: str
    output: str
    start: int = 0
    end: int | None = None  # None = to the last frame
    num_objects: int | None = None  # None = the ids present in the masks
    resolution: int | None = None  # None = the run's --resolution

    @property
    def source(self) -> str:
        """The video file or frames folder."""
        return self.video or self.images or ""

    @property
    def name(self) -> str:
        """How reports name the item: 'line 3 (/data/clips/a.mp4)'."""
        return f"line {self.line} ({self.source})"


def _path(base: Path, value: str) -> str:
    # Not resolve(): symlinked dataset folders keep the names the person wrote.
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _int_field(key: str, value: object) -> int | None:
    """An optional integer field's value; ValueError (without the line) when it is not one."""
    if value is None:
        return None
    # bool is an int in Python, but `true` is never a frame number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'"{key}" must be an integer or null, got {json.dumps(value)}')
    if key == "start" and value < 0:
        raise ValueError(f'"start" must be >= 0, got {value}')
    if key == "num_objects" and value < 1:
        raise ValueError(f'"num_objects" must be >= 1, got {value}')
    if key == "resolution" and not (value > 0 or value == -1):
        raise ValueError(f'"resolution" must be > 0 or -1 (the source size), got {value}')
    return value


def parse_line(text: str, line: int, base: Path) -> Item:
    """One manifest line -> Item; ValueError saying what is wrong (the caller adds where)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object {{...}}, got {type(obj).__name__}")
    unknown = sorted(set(obj) - KNOWN)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(map(json.dumps, unknown))} "
            f"(known: {', '.join(sorted(KNOWN))})"
        )
    given = [k for k in SOURCES if obj.get(k) is not None]
    if len(given) != 1:
        raise ValueError('give exactly one of "video" or "images"')
    for key in (*given, *REQUIRED):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f'"{key}" must be a non-empty path string')
    ints = {key: _int_field(key, obj.get(key)) for key in OPTIONAL_INTS}
    output = Path(_path(base, obj["output"])).resolve()
    if "images" in given and output == Path(_path(base, obj["images"])).resolve():
        raise ValueError('"output" is the "images" folder: masks would be mixed with the frames')
    if output == Path(_path(base, obj["masks"])).resolve():
        raise ValueError('"output" is the "masks" folder: the given masks would be overwritten')
    start = ints["start"] or 0
    if ints["end"] is not None and ints["end"] <= start:
        raise ValueError(f'"end" ({ints["end"]}) must be greater than "start" ({start})')
    return Item(
        line=line,
        video=_path(base, obj["video"]) if "video" in given else None,
        images=_path(base, obj["images"]) if "images" in given else None,
        masks=_path(base, obj["masks"]),
        output=_path(base, obj["output"]),
        start=start,
        end=ints["end"],
        num_objects=ints["num_objects"],
        resolution=ints["resolution"],
    )


def read_manifest(path: str | Path) -> list[Item]:
    """Every item of the manifest, in line order.

    Raises ManifestError (a ValueError) naming the file and line for the first bad line, for
    two items sharing an output folder (their masks and project files would clash), and for
    a manifest without items; OSError when the file cannot be read.
    """
    path = Path(path)
    base = path.absolute().parent
    items: list[Item] = []
    outputs: dict[Path, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                item = parse_line(text, line, base)
            except ValueError as exc:
                raise ManifestError(path, str(exc), line) from None
            key = Path(item.output).resolve()
            if key in outputs:
                raise ManifestError(
                    path, f'"output" {item.output} is also line {outputs[key]}\'s output', line
                )
            outputs[key] = line
            items.append(item)
    if not items:
        raise ManifestError(path, "no items (one JSON object per line)")
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N; ValueError otherwise (argparse shows it)."""
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard takes i/N with 0 <= i < N (e.g. 0/4), got {text!r}")
    return index, count


def shard(items: list[Item], index: int, count: int) -> list[Item]:
    """Shard `index` of `count`: every count-th item from the index-th, in manifest order.

    Static and independent of what is finished, so N processes given the same manifest
    (Slurm array tasks, torchrun ranks) split it without talking to each other.
    """
    return items[index::count]
