"""The official weight files: where each comes from, where it lives, how to tell a good copy.

A file is valid only when it loads with `weights_only=True` and matches its network strictly:
stcn.pth, fusion_stcn.pth and s2m.pth load into our own networks (model.build.load_network);
fbrs.pth loads into our f-BRS network (model.fbrs.load), which tolerates exactly the real
file's known differences (no num_batches_tracked, an aspp_dropout scalar). A download is also
checked against the file's pinned SHA-256 where the official file's hash is known
(`WeightSpec.sha256`, recorded here and nowhere else).

Where the files live (`weights_dir`, `find_weight`): one weights folder, by priority
`--weights_dir` (an explicit folder), then `$MIVOS_WEIGHTS`, then `<per-user data folder>/weights`
(platformdirs: ~/.local/share/mivos-studio/weights on Linux, ~/Library/Application Support/
mivos-studio/weights on macOS, %LOCALAPPDATA%/mivos-studio/weights on Windows). The first
release kept them in `./saves` (relative to the current folder): a file found there is still used
when the weights folder lacks it. Downloads always go to the weights folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from model.build import FUSION, PROPAGATION, S2M, NetworkSpec, load_network
from model.checkpoint import CheckpointError
from model.fbrs.load import validate_fbrs_file

_MAX_LISTED = 5

APP_NAME = "mivos-studio"  # the per-user data folder's name
ENV_WEIGHTS_DIR = "MIVOS_WEIGHTS"  # a folder that replaces the per-user weights folder
# The first release's folder, relative to the current folder (where it told people to run from).
LEGACY_DIR = Path("saves")


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: its name, what it is, its mirrors in order, its validator and hash.

    `size_mb` (MiB, approximate) and `purpose` are for people (the first-run dialog);
    `required`: the application cannot open without it (s2m.pth and fbrs.pth only enable
    scribbles and clicks). `sha256` (64 lowercase hex digits) is the official file's hash, or
    None where it is not known: a download is then accepted on strict loading alone.
    """

    name: str  # registry key, e.g. "stcn"
    filename: str  # file name on disk, e.g. "stcn.pth"
    description: str
    urls: tuple[str, ...]  # mirrors, tried in this order
    validate: Callable[[Path], None]  # raises CheckpointError when the file is unusable
    purpose: str = ""  # what it does for the person, e.g. "scribbles"
    required: bool = True
    size_mb: int = 0
    sha256: str | None = None


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
    purpose="propagation",
    size_mb=208,
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
    purpose="merging corrections",
    size_mb=1,
)
S2M_WEIGHTS = WeightSpec(
    "s2m",
    S2M.filename,
    S2M.description,
    (gdrive_url("1HKwklVey3P2jmmdmrACFlkXtcvNxbKMM"),),
    _network_validator(S2M),
    purpose="scribbles",
    required=False,
    size_mb=152,
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
    purpose="clicks",
    required=False,
    size_mb=120,
)
# Sizes: float32 parameter counts of our networks (a bare state dict is that big); fbrs.pth's
# agrees with the 120 MB its authors publish. sha256 stays None for all four: the official
# hashes are published nowhere we could find (the authors' READMEs give links only) and these
# files could not be fetched where this was written. Record a hash here once it is known from
# a trusted copy (`python download_model.py` logs the SHA-256 of every file it accepts).

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


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of the file at `path`, as 64 lowercase hex digits (reads it in chunks).

    Raises OSError when the file cannot be read.
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_sha256(spec: WeightSpec, path: str | Path) -> str:
    """Compare `path` with the official hash; return the file's SHA-256.

    Raises CheckpointError naming `path`, its hash and the pinned one when `spec.sha256` is set
    and differs. With no pinned hash (None) any file passes: strict loading is then the check.
    """
    actual = sha256_of(path)
    if spec.sha256 is not None and actual != spec.sha256.lower():
        raise CheckpointError(
            Path(path),
            f"has SHA-256 {actual}, but the official {spec.filename} has {spec.sha256.lower()}",
        )
    return actual


def user_weights_dir() -> Path:
    """`<per-user data folder>/weights` (platformdirs; honours $XDG_DATA_HOME on Linux)."""
    # appauthor=False: no vendor folder level on Windows (the app name alone names the folder).
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "weights"


def weights_dir(
    override: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The weights folder: `override` (--weights_dir), else $MIVOS_WEIGHTS, else the user's.

    Downloads go here and files are looked for here first. `environ` defaults to os.environ;
    `~` is expanded. The folder need not exist.
    """
    if override:
        return Path(override).expanduser()
    env = (os.environ if environ is None else environ).get(ENV_WEIGHTS_DIR, "").strip()
    return Path(env).expanduser() if env else user_weights_dir()


def find_weight(
    filename: str,
    override: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Where `filename` is: the weights folder's copy, else `./saves`'s, else where it will go.

    The weights folder is `weights_dir(override, environ)`. The last answer (a path that does
    not exist yet, in the weights folder) is where the first-run download puts it. An explicit
    `--prop_model PATH` and the like are taken as given and never go through here.
    """
    primary = weights_dir(override, environ) / filename
    if primary.is_file():
        return primary
    legacy = LEGACY_DIR / filename
    return legacy if legacy.is_file() else primary
