"""Fetching weight files from their mirrors: resumable, validated, renamed into place atomically.

Mirror order for each file:
1. the mirrors passed as `mirrors_extra` (`--mirror URL`), in the order given;
2. the mirrors in the environment variable MIVOS_WEIGHTS_MIRROR (comma-separated);
3. the built-in ones (Google Drive through gdown, then the OneDrive / GitHub links).
Mirrors a person names come first: whoever sets up a local cache or a company proxy wants it
used, not tried only after the public hosts have timed out or hit their quota.

A mirror may contain `{name}` (replaced by the file name, e.g. http://host/weights/{name}); one
ending in "/" gets the file name appended; any other URL is used as it is (one file, --only).
Google Drive links (drive.google.com/uc?id=..., /file/d/<id>/...) go through gdown.

Files in the target folder while downloading:
* `<file>.part`: bytes from an http(s) mirror. Kept when the connection breaks, so the next
  attempt (the same mirror again, the next mirror, or the next run) resumes it with an HTTP Range
  request; deleted as soon as the complete file turns out invalid.
* `<file>.gdown` and gdown's own `<file>.gdownXXXXXXXX.part`: the same for Google Drive.
Only a file that validated is renamed (os.replace, atomic) to the final name, so the final name
never holds a partial or wrong file, and an older file there stays until the new one is good.
Validated means: its SHA-256 equals the pinned official one (WeightSpec.sha256, where known;
a mismatch is refused naming both hashes), and it loads strictly into its network. A file with
no pinned hash is accepted on strict loading alone, with a logged note giving its hash.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tqdm import tqdm

from model.checkpoint import CheckpointError
from model.weights import WeightSpec, check_sha256, validate_file

log = logging.getLogger(__name__)

ENV_MIRRORS = "MIVOS_WEIGHTS_MIRROR"
_TIMEOUT_S = 30.0  # per socket operation: a stalled server fails over instead of hanging
_CHUNK = 1 << 20
_MAX_RESUMES = 5  # reconnections per mirror, each only after the previous one made progress
_USER_AGENT = "mivos-studio-download/1"


class DownloadError(RuntimeError):
    """No mirror produced a valid file; the message names the file, each failure, what to do."""

    def __init__(self, path: Path, failures: Sequence[str], todo: str) -> None:
        self.path = path
        self.failures = tuple(failures)
        self.todo = todo
        lines = [f"{path}: could not download it from any mirror:"]
        lines += [f"  - {line}" for line in self.failures] or ["  - (no mirror to try)"]
        lines.append(f"  What to do: {todo}")
        super().__init__("\n".join(lines))

    @property
    def reason(self) -> str:
        """Why it failed, short: each distinct mirror error once, without the mirror's name."""
        reasons = dict.fromkeys(f.split(": ", 1)[-1] for f in self.failures)
        return "; ".join(reasons) or "no mirror to try"

    @property
    def summary(self) -> str:
        """The whole story on one line (for one-line-per-file reports)."""
        reasons = " | ".join(self.failures) or "no mirror to try"
        return f"{self.path}: download failed ({reasons}); {self.todo}"


class _MirrorFailed(Exception):
    """One mirror did not produce a valid file; the message is the reason, on one line."""


class _ConnectionLost(_MirrorFailed):
    """The transfer broke off; what arrived is in the .part file."""


def expand_mirror(template: str, filename: str) -> str:
    """Turn a user mirror into the URL of `filename` ({name} placeholder or trailing slash)."""
    if "{name}" in template:
        return template.replace("{name}", filename)
    if template.endswith("/"):
        return template + filename
    return template


def mirrors_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The comma-separated mirrors in MIVOS_WEIGHTS_MIRROR (empty entries ignored)."""
    return tuple(m.strip() for m in environ.get(ENV_MIRRORS, "").split(",") if m.strip())


def mirror_urls(
    spec: WeightSpec,
    mirrors_extra: Sequence[str] = (),
    *,
    default_mirrors: bool = True,
    env_mirrors: bool = True,
) -> tuple[str, ...]:
    """Every URL to try for `spec`, in order: explicit, environment, built-in; no duplicates."""
    user = list(mirrors_extra) + list(mirrors_from_env(os.environ) if env_mirrors else ())
    urls = [expand_mirror(m, spec.filename) for m in user]
    if default_mirrors:
        urls += spec.urls
    return tuple(dict.fromkeys(urls))


def gdrive_id(url: str) -> str | None:
    """The file id of a Google Drive link, or None for any other URL."""
    parts = urlsplit(url)
    if parts.netloc not in ("drive.google.com", "docs.google.com"):
        return None
    match = re.search(r"/file/d/([\w-]+)", parts.path)
    if match:
        return match.group(1)
    ids = parse_qs(parts.query).get("id")
    return ids[0] if ids else None


def describe_mirror(url: str) -> str:
    """A short name for a mirror in messages (no query strings, no 150-character links)."""
    file_id = gdrive_id(url)
    if file_id:
        return f"Google Drive id {file_id}"
    parts = urlsplit(url)
    short = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if len(short) <= 80:
        return short
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{parts.scheme}://{parts.netloc}/.../{last if len(last) <= 32 else last[:29] + '...'}"


def browser_link(spec: WeightSpec) -> str:
    """Where a person can fetch the file by hand."""
    url = spec.urls[0]
    file_id = gdrive_id(url)
    return f"https://drive.google.com/file/d/{file_id}/view?usp=sharing" if file_id else url


def download(
    spec: WeightSpec,
    folder: str | Path,
    mirrors_extra: Sequence[str] = (),
    progress: bool = True,
    *,
    default_mirrors: bool = True,
    env_mirrors: bool = True,
) -> Path:
    """Fetch `spec` into `folder`, trying each mirror in turn; return the final, valid path.

    default_mirrors=False skips the built-in Google Drive/OneDrive/GitHub links (tests, offline
    caches); env_mirrors=False ignores MIVOS_WEIGHTS_MIRROR. Raises DownloadError when no mirror
    gave a valid file; the final name is then untouched.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / spec.filename
    urls = mirror_urls(
        spec, mirrors_extra, default_mirrors=default_mirrors, env_mirrors=env_mirrors
    )
    failures = []
    for url in urls:
        label = describe_mirror(url)
        log.info("%s: downloading from %s", spec.filename, label)
        try:
            tmp = _fetch_from(spec, url, folder, progress)
        except _MirrorFailed as exc:
            log.warning("%s: %s failed: %s", spec.filename, label, exc)
            failures.append(f"{label}: {exc}")
            continue
        os.replace(tmp, final)
        log.debug("%s: downloaded and verified (%s)", final, label)
        return final
    todo = (
        f"check the internet connection and run again (partial downloads resume), or download "
        f"it in a browser from {browser_link(spec)} and place it at {final}, or pass "
        f"--mirror URL (or set {ENV_MIRRORS})"
    )
    raise DownloadError(final, failures, todo)


def _fetch_from(spec: WeightSpec, url: str, folder: Path, progress: bool) -> Path:
    """Download and validate into a temp file beside the final one; return that temp file."""
    file_id = gdrive_id(url)
    if file_id:
        out = folder / f"{spec.filename}.gdown"
        _fetch_gdrive(file_id, out, progress)
        _validate_or_discard(spec, out)
        return out
    if urlsplit(url).scheme not in ("http", "https"):
        raise _MirrorFailed("not an http(s) or Google Drive URL")
    part = folder / f"{spec.filename}.part"
    resumed = _size(part) > 0
    _transfer(url, part, spec.filename, progress)
    try:
        _validate_or_discard(spec, part)
    except _MirrorFailed as exc:
        if not resumed:
            raise
        # The bytes kept from before may come from another mirror or an older file.
        log.warning("%s: the resumed download is invalid (%s); starting over", spec.filename, exc)
        _transfer(url, part, spec.filename, progress)
        _validate_or_discard(spec, part)
    return part


def _validate_or_discard(spec: WeightSpec, tmp: Path) -> None:
    """Accept `tmp` as `spec` (pinned SHA-256 where known, then strict loading) or delete it."""
    try:
        # The hash first: a file that is not the official one is refused without unpickling it.
        digest = check_sha256(spec, tmp)
        validate_file(spec, tmp)
    except CheckpointError as exc:
        # A complete but wrong file is useless for resuming: remove it.
        tmp.unlink(missing_ok=True)
        kept = [p for p in exc.problem.split("; ") if "download_model.py" not in p]
        raise _MirrorFailed(f"{spec.filename} received but rejected: it {'; '.join(kept)}") from exc
    if spec.sha256 is None:
        # Logged with the hash so that a maintainer can pin it in model/weights.py.
        log.info(
            "%s: no official SHA-256 is recorded for it; accepted because it loads strictly "
            "(its SHA-256 is %s)", spec.filename, digest,
        )  # fmt: skip
    else:
        log.info("%s: SHA-256 matches the official file", spec.filename)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fetch_gdrive(file_id: str, out: Path, progress: bool) -> None:
    try:
        import gdown  # imported here: heavy, and only Google Drive mirrors need it
        import gdown.exceptions
    except ImportError as exc:
        raise _MirrorFailed("gdown is not installed (pip install gdown)") from exc
    # gdown raises its own errors, requests' (OSError subclasses) and ValueError for bad links.
    gdown_errors = tuple(
        getattr(gdown.exceptions, name)
        for name in ("FileURLRetrievalError", "DownloadError")
        if hasattr(gdown.exceptions, name)
    )
    try:
        result = gdown.download(id=file_id, output=str(out), quiet=not progress, resume=True)
    except (OSError, ValueError, RuntimeError, *gdown_errors) as exc:
        raise _MirrorFailed(_gdown_reason(exc)) from exc
    if result is None or not out.is_file():
        raise _MirrorFailed("gdown could not fetch it (quota exceeded or the link changed?)")


def _gdown_reason(exc: BaseException) -> str:
    # requests wraps urllib3's MaxRetryError, whose .reason is the actual cause; its text ends
    # with the part a person can act on ("Failed to resolve 'drive.google.com' (...)").
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    if inner is not None:
        return f"cannot connect ({_one_line(str(inner).split('): ', 1)[-1])})"
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _transfer(url: str, part: Path, filename: str, progress: bool) -> None:
    """Fill `part` from `url`, reconnecting with Range while each try makes progress."""
    for _ in range(_MAX_RESUMES + 1):
        before = _size(part)
        try:
            _transfer_once(url, part, filename, progress)
            return
        except _ConnectionLost as exc:
            if _size(part) <= before:
                raise _MirrorFailed(str(exc)) from exc
            log.warning("%s: %s; resuming", filename, exc)
    raise _MirrorFailed(f"connection kept breaking ({_MAX_RESUMES + 1} tries)")


def _open(url: str, start: int) -> http.client.HTTPResponse | None:
    """The response for `url` from byte `start`, or None when `start` is already the end."""
    headers = {"User-Agent": _USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start:
            return None  # nothing left to send: the .part is complete (validation will tell)
        raise _MirrorFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _MirrorFailed(f"cannot connect ({_one_line(exc.reason)})") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise _MirrorFailed(f"cannot connect ({type(exc).__name__}: {_one_line(exc)})") from exc


def _transfer_once(url: str, part: Path, filename: str, progress: bool) -> None:
    start = _size(part)
    resp = _open(url, start)
    if resp is None:
        return
    with resp:
        if resp.headers.get_content_type() == "text/html":
            # Share links, quota and login pages: an HTML page is never a checkpoint.
            raise _MirrorFailed("served an HTML page instead of the file (a share/login page?)")
        if resp.status == 206:
            offset = _range_start(resp.headers.get("Content-Range", ""))
            if offset != start:
                raise _MirrorFailed(f"asked for bytes from {start}, got a range from {offset}")
        else:
            start = 0  # the server ignored the Range request and sends everything
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        _copy(resp, part, start, total, filename, progress)


def _range_start(content_range: str) -> int | None:
    match = re.match(r"bytes (\d+)-", content_range.strip())
    return int(match.group(1)) if match else None


def _copy(
    resp: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int | None,
    filename: str,
    progress: bool,
) -> None:
    done = start
    bar = tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=filename,
        disable=not progress,
    )
    with bar, open(part, "ab" if start else "wb") as f:
        try:
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            of = f" of {total:,}" if total else ""
            msg = f"connection lost after {done:,}{of} bytes ({type(exc).__name__})"
            raise _ConnectionLost(msg) from exc
    if total is not None and done < total:
        raise _ConnectionLost(f"connection closed after {done:,} of {total:,} bytes")
