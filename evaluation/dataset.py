"""A DAVIS-2017-format folder on disk, and telling davisinteractive about its sequences.

Layout (the folder the official evaluation calls `davis_root`):

    JPEGImages/480p/<seq>/00000.jpg ...   Annotations/480p/<seq>/00000.png ...
    Scribbles/<seq>/001.json ...          ImageSets/2017/{train,val}.txt

davisinteractive only knows the sequences of its bundled metadata (the official DAVIS 2017),
and would try to download files it finds missing. Registering the sequences found on disk, as
the package's own tests do, lets it evaluate any folder of this layout offline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from util.mask_io import read_index_mask

log = logging.getLogger(__name__)

RESOLUTION = "480p"
SUBSETS = ("train", "val", "trainval")
VOID_ID = 255  # DAVIS marks unlabelled pixels with 255; they are no object


class DavisLayoutError(ValueError):
    """A folder that is not (or not completely) in the DAVIS layout; the message says why."""


@dataclass(frozen=True)
class DavisFolder:
    """The root holding JPEGImages, Annotations, Scribbles and ImageSets."""

    root: Path

    @classmethod
    def locate(cls, path: str | Path) -> DavisFolder:
        """`path` itself or, as the original expected, `path`/trainval."""
        path = Path(path)
        if not path.is_dir():
            raise DavisLayoutError(f"{path}: folder not found")
        for candidate in (path, path / "trainval"):
            if all((candidate / sub).is_dir() for sub in ("JPEGImages", "Annotations")):
                folder = cls(candidate)
                folder._require_dirs()
                return folder
        raise DavisLayoutError(
            f"{path}: not a DAVIS folder (expected JPEGImages/{RESOLUTION}, "
            f"Annotations/{RESOLUTION}, Scribbles and ImageSets in it or in {path / 'trainval'})"
        )

    def _require_dirs(self) -> None:
        for sub in (self.root / "JPEGImages" / RESOLUTION, self.root / "Annotations" / RESOLUTION):
            if not sub.is_dir():
                raise DavisLayoutError(f"{sub}: folder not found")
        for sub in ("Scribbles", "ImageSets"):
            if not (self.root / sub).is_dir():
                raise DavisLayoutError(f"{self.root / sub}: folder not found")

    def images(self, sequence: str) -> Path:
        return self.root / "JPEGImages" / RESOLUTION / sequence

    def annotations(self, sequence: str) -> Path:
        return self.root / "Annotations" / RESOLUTION / sequence

    def scribbles(self, sequence: str) -> Path:
        return self.root / "Scribbles" / sequence

    def _image_set(self, subset: str) -> Path | None:
        for path in (
            self.root / "ImageSets" / "2017" / f"{subset}.txt",
            self.root / "ImageSets" / f"{subset}.txt",
        ):
            if path.is_file():
                return path
        return None

    def list_sequences(self, subset: str) -> list[str]:
        """Sequence names of `subset` in ImageSets order (trainval = train + val if not listed)."""
        if subset not in SUBSETS:
            raise DavisLayoutError(f"unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
        path = self._image_set(subset)
        if path is None and subset == "trainval":
            return self.list_sequences("train") + self.list_sequences("val")
        if path is None:
            raise DavisLayoutError(f"{self.root / 'ImageSets' / '2017' / subset}.txt: not found")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise DavisLayoutError(f"{path}: lists no sequence")
        return names


def sequences_folder(root: str | Path, kind: str) -> Path:
    """The folder of per-sequence folders under a DAVIS root (kind: JPEGImages or Annotations).

    Accepts the root itself, root/<kind>, or root/<kind>/480p.
    """
    root = Path(root)
    if not root.is_dir():
        raise DavisLayoutError(f"{root}: folder not found")
    for candidate in (root / kind / RESOLUTION, root / kind):
        if candidate.is_dir():
            return candidate
    return root


def sequence_names(folder: Path) -> list[str]:
    """Sorted names of the sub-folders (sequences) of `folder`; hidden ones skipped."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DavisLayoutError(f"{folder}: holds no sequence folder")
    return names


@dataclass(frozen=True)
class SequenceInfo:
    """What davisinteractive needs to know about a sequence, read from the files."""

    name: str
    num_frames: int
    num_objects: int
    image_size: tuple[int, int]  # (W, H), the package's order
    num_scribbles: int


def _numbered(folder: Path, suffix: str) -> list[Path]:
    if not folder.is_dir():
        raise DavisLayoutError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix and p.stem.isdigit())


def object_ids(mask: np.ndarray) -> list[int]:
    """The object ids present in an index mask (background 0 and void 255 excluded)."""
    return [int(v) for v in np.unique(mask) if 0 < v < VOID_ID]


def describe_sequence(folder: DavisFolder, name: str) -> SequenceInfo:
    """Check a sequence's files are complete and consistent; read its frame and object counts."""
    annotations = _numbered(folder.annotations(name), ".png")
    frames = _numbered(folder.images(name), ".jpg")
    if not annotations:
        raise DavisLayoutError(f"{folder.annotations(name)}: no annotation PNGs")
    expected = [f"{t:05d}" for t in range(len(annotations))]
    if [p.stem for p in annotations] != expected:
        raise DavisLayoutError(
            f"{folder.annotations(name)}: frames must be 00000.png, 00001.png..."
        )
    if [p.stem for p in frames] != expected:
        raise DavisLayoutError(
            f"{folder.images(name)}: needs one JPEG per annotation (00000.jpg..{expected[-1]}.jpg)"
        )
    scribbles = _numbered(folder.scribbles(name), ".json")
    if [p.stem for p in scribbles] != [f"{i:03d}" for i in range(1, len(scribbles) + 1)]:
        raise DavisLayoutError(
            f"{folder.scribbles(name)}: needs scribble files 001.json, 002.json..."
        )
    first = read_index_mask(annotations[0])
    ids = object_ids(first)
    if not ids:
        raise DavisLayoutError(f"{annotations[0]}: the first frame holds no object")
    with Image.open(frames[0]) as image:
        if image.size != (first.shape[1], first.shape[0]):
            raise DavisLayoutError(f"{frames[0]}: size {image.size} differs from its annotation")
    return SequenceInfo(name, len(annotations), max(ids), (first.shape[1], first.shape[0]),
                        len(scribbles))  # fmt: skip


@contextmanager
def registered(infos: Sequence[SequenceInfo], subset: str) -> Iterator[None]:
    """Within the block, davisinteractive's `subset` is exactly `infos`, described from disk.

    Needs evaluation.davis_compat.apply() first. The package's class-level metadata is restored
    on exit, so one process can evaluate several folders.
    """
    from davisinteractive.dataset import Davis

    saved_sets = {key: list(value) for key, value in Davis.sets.items()}
    saved_dataset = {key: dict(value) for key, value in Davis.dataset.items()}
    try:
        for info in infos:
            bundled = Davis.dataset.get(info.name)
            entry = dict(bundled or {"attributes": [], "eval_t": False, "year": 2017})
            entry.update(asdict(info), set=subset, image_size=list(info.image_size))
            if bundled and any(bundled.get(k) != entry[k] for k in ("num_frames", "num_objects")):
                log.info("%s: using the files on disk, not the bundled metadata", info.name)
            Davis.dataset[info.name] = entry
        Davis.sets[subset] = [info.name for info in infos]
        yield
    finally:
        Davis.sets.clear()
        Davis.sets.update(saved_sets)
        Davis.dataset.clear()
        Davis.dataset.update(saved_dataset)
