"""Fetch the model weights into the weights folder (or --dir), or check them (--verify).

    python download_model.py                      # stcn.pth, fusion_stcn.pth, s2m.pth, fbrs.pth
    python download_model.py --only s2m.pth --mirror http://cache.local/weights/{name}
    python download_model.py --verify             # check what is on disk; download nothing

The weights folder is the one the application reads (model.weights.weights_dir): $MIVOS_WEIGHTS,
else the per-user data folder's `weights/` (e.g. ~/.local/share/mivos-studio/weights), whatever
the current folder. Files already present and valid are skipped (--force fetches them again).
Mirrors given with --mirror or MIVOS_WEIGHTS_MIRROR are tried before the built-in ones (see
model/download.py). Exit status 0 only when every requested file is valid at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model.checkpoint import CheckpointError
from model.download import ENV_MIRRORS, DownloadError, download
from model.weights import (
    ENV_WEIGHTS_DIR,
    WEIGHTS,
    WeightSpec,
    fetch_hint,
    validate_file,
    weight_spec,
    weights_dir,
)

log = logging.getLogger("download_model")


def _weight_arg(name: str) -> WeightSpec:
    try:
        return weight_spec(name)
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Resolved when parsing, not at import: $MIVOS_WEIGHTS may be set by the caller until then.
    p.add_argument(
        "--dir",
        type=Path,
        default=weights_dir(),
        help=f"target folder (default: ${ENV_WEIGHTS_DIR}, else the per-user weights folder, "
        "here %(default)s)",
    )
    names = ", ".join(s.filename for s in WEIGHTS)
    p.add_argument("--only", nargs="+", type=_weight_arg, metavar="FILE", help=f"some of: {names}")
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="extra mirror, tried first; {name} becomes the file name, e.g. "
        f"http://host/weights/{{name}} (repeatable; also ${ENV_MIRRORS}, comma-separated)",
    )
    p.add_argument("--verify", action="store_true", help="check the files; download nothing")
    p.add_argument("--force", action="store_true", help="download even files that are valid")
    p.add_argument(
        "--no-default-mirrors",
        action="store_true",
        help="only use --mirror / $" + ENV_MIRRORS + " (no Google Drive, OneDrive, GitHub)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def verify(specs: list[WeightSpec], folder: Path) -> bool:
    """Print one line per file (OK / MISSING / INVALID + reason); True when all are valid."""
    all_ok = True
    for spec in specs:
        path = folder / spec.filename
        if not path.is_file():
            print(f"MISSING {path}: fetch it with `{fetch_hint(spec)}`", file=sys.stderr)
            all_ok = False
            continue
        try:
            validate_file(spec, path)
        except CheckpointError as exc:
            print(f"INVALID {exc}", file=sys.stderr)
            all_ok = False
            continue
        print(f"OK      {path}")
    return all_ok


def fetch(specs: list[WeightSpec], folder: Path, args: argparse.Namespace) -> bool:
    """Download what is missing or invalid; print one line per failed file; True when all OK."""
    failed = []
    for spec in specs:
        path = folder / spec.filename
        if path.is_file() and not args.force:
            try:
                validate_file(spec, path)
            except CheckpointError as exc:
                log.warning("%s is invalid (%s); downloading a fresh copy", path, exc.problem)
            else:
                print(f"OK      {path} (already present and valid; skipped)")
                continue
        try:
            download(
                spec,
                folder,
                args.mirror,
                progress=not args.quiet,
                default_mirrors=not args.no_default_mirrors,
            )
        except DownloadError as exc:
            failed.append(exc.summary)
        except OSError as exc:  # the folder itself: permissions, a full disk
            failed.append(f"{path}: {exc.strerror or exc}")
        else:
            print(f"OK      {path} (downloaded and verified)")
    for line in failed:
        print(f"FAILED  {line}", file=sys.stderr)
    return not failed


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    specs = list(dict.fromkeys(args.only)) if args.only else list(WEIGHTS)
    try:
        ok = verify(specs, args.dir) if args.verify else fetch(specs, args.dir, args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
