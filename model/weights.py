"""The official weight files: where each comes from and how to tell a good copy from a bad one.

A file is valid only when it loads with `weights_only=True` and matches its network strictly:
stcn.pth, fusion_stcn.pth and s2m.pth load into our own networks (model.build.load_network);
fbrs.pth loads into our f-BRS network (model.fbrs.load), which tolerates exactly the real
file's known differences (no num_batches_tracked, an aspp_dropout scalar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.build import FUSION, PROPAGATION, S2M, NetworkSpec, load_network
from model.checkpoint import CheckpointError
from model.fbrs.load import validate_fbrs_file

_MAX_LISTED = 5


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: its name, what it is, its mirrors in order, and its validator."""

    name: str  # registry key, e.g. "stcn"
    filename: str  # file name on disk, e.g. "stcn.pth"
    description: str
    urls: tuple[str, ...]  # mirrors, tried in this order
    validate: Callable[[Path], None]  # raises CheckpointError when the file is unusable


def gdrive_url(file_id: str) -> str:
    """The direct-download form of a Google Drive file id (model.download hands it to gdown)."""
    return f"https://drive.google.com/uc?id={file_id}"


def _onedrive(share_link: str) -> str:
    # A OneDrive share link answers with an HTML viewer unless asked for the bytes.
    return share_link + "&download=1"


def _network_validator(net: NetworkSpec) -> Callable[[Path], None]:
    def validate(path: Path) -> None:
        # Loading strictly on the CPU is the schema check: every key, every shape, nothing extra.
        load_network(net, path, "cpu")

    return validate


def validate_fbrs(path: Path) -> None:
    """Load fbrs.pth into our f-BRS network the way the application does; CheckpointError if off."""
    validate_fbrs_file(path)


STCN_WEIGHTS = WeightSpec(
    "stcn",
    PROPAGATION.filename,
    PROPAGATION.description,
    (
        gdrive_url("1mRrE0uCI2ktdWlUgapJI_KmgeIiF2eOm"),
        _onedrive(
            "https://uillinoisedu-my.sharepoint.com/:u:/g/personal/hokeikc2_illinois_edu/"
            "Eav35v3GZIZFiq6dv9BM8n0BHtR1hD7QU9tcxH7hylG3dA?e=ZQmPJh"
        ),
    ),
    _network_validator(PROPAGATION),
)
FUSION_WEIGHTS = WeightSpec(
    "fusion_stcn",
    FUSION.filename,
    FUSION.description,
    (
        gdrive_url("1MAbWHrOjlze9vPQdW-HxMnvjPpaZlfLv"),
        _onedrive(
            "https://uillinoisedu-my.sharepoint.com/:u:/g/personal/hokeikc2_illinois_edu/"
            "Eflt9urRY2VBgXMKzk0Or8QBFXdV-CVUSDhjuOa9zJJ0Gw?e=jLfHVN"
        ),
    ),
    _network_validator(FUSION),
)
S2M_WEIGHTS = WeightSpec(
    "s2m",
    S2M.filename,
    S2M.description,
    (gdrive_url("1HKwklVey3P2jmmdmrACFlkXtcvNxbKMM"),),
    _network_validator(S2M),
)
FBRS_WEIGHTS = WeightSpec(
    "fbrs",
    "fbrs.pth",
    "the f-BRS click network (fbrs.pth)",
    # The f-BRS authors' v1.0 release asset, saved under our name.
    (
        "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/"
        "resnet50_dh128_lvis.pth",
    ),
    validate_fbrs,
)

WEIGHTS: tuple[WeightSpec, ...] = (STCN_WEIGHTS, FUSION_WEIGHTS, S2M_WEIGHTS, FBRS_WEIGHTS)


def weight_spec(name: str) -> WeightSpec:
    """Look a weight file up by file name ("stcn.pth") or registry name ("stcn")."""
    for spec in WEIGHTS:
        if name in (spec.name, spec.filename):
            return spec
    known = ", ".join(s.filename for s in WEIGHTS)
    raise KeyError(f"unknown weight file {name!r}; known: {known}")


def fetch_hint(spec: WeightSpec) -> str:
    """The command that fetches (or replaces) this one file."""
    return f"python download_model.py --only {spec.filename}"


def validate_file(spec: WeightSpec, path: str | Path) -> None:
    """Raise CheckpointError naming `path`, the problem and what to do, unless it is valid."""
    path = Path(path)
    try:
        spec.validate(path)
    except CheckpointError as exc:
        problem = exc.problem
        if "download_model.py" not in problem:
            problem += f"; fetch a good copy with `{fetch_hint(spec)}`"
        elif "--only" not in problem:  # the loader's generic hint: name this one file
            problem = problem.replace("python download_model.py", fetch_hint(spec))
        raise CheckpointError(path, problem) from exc


def missing_weights(
    folder: str | Path, specs: tuple[WeightSpec, ...] = WEIGHTS, *, validate: bool = False
) -> list[WeightSpec]:
    """The files absent from `folder` (with validate=True, also those present but invalid).

    The default only looks for the files, which is instant; validating loads every network.
    """
    folder = Path(folder)
    out = []
    for spec in specs:
        path = folder / spec.filename
        if not path.is_file():
            out.append(spec)
        elif validate:
            try:
                spec.validate(path)
            except CheckpointError:
                out.append(spec)
    return out
