"""Weight download and validation against a real HTTP server on 127.0.0.1 (no internet).

The server (tests/weights_server.py) serves synthetic checkpoints of our own networks and can
answer 404, serve HTML, honour Range requests and cut a response off midway. Built-in mirrors
are switched off (default_mirrors=False / --no-default-mirrors) and gdown is replaced by a
tripwire.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.build import FUSION, PROPAGATION, S2M
from model.checkpoint import CheckpointError
from model.download import DownloadError, download, expand_mirror, mirror_urls
from model.weights import (
    FBRS_WEIGHTS,
    FUSION_WEIGHTS,
    S2M_WEIGHTS,
    STCN_WEIGHTS,
    WEIGHTS,
    missing_weights,
    validate_file,
)
from tests.weights_server import (
    Route,
    Server,
    fbrs_state_dict,
    network_bytes,
    save_bytes,
    serving,
)

REPO = Path(__file__).resolve().parents[1]
HTML = b"<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>\n"


@pytest.fixture(scope="module")
def http_server():
    with serving() as state:
        yield state


@pytest.fixture
def server(http_server: Server) -> Server:
    return http_server.reset()


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach Google Drive or a proxy, nor pick up a developer's mirror setting."""

    def tripwire(*args, **kwargs):
        raise AssertionError("a test tried to use gdown (a built-in mirror)")

    import gdown

    monkeypatch.setattr(gdown, "download", tripwire)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "MIVOS_WEIGHTS_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def fusion_bytes() -> bytes:
    return save_bytes(FUSION.factory().state_dict())


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory, fusion_bytes: bytes) -> Path:
    """All four files, valid."""
    folder = tmp_path_factory.mktemp("good_weights")
    (folder / "stcn.pth").write_bytes(network_bytes(PROPAGATION))
    (folder / "s2m.pth").write_bytes(network_bytes(S2M))
    (folder / "fusion_stcn.pth").write_bytes(fusion_bytes)
    (folder / "fbrs.pth").write_bytes(save_bytes(fbrs_state_dict()))
    return folder


def _get(spec, folder: Path, *mirrors: str) -> Path:
    return download(spec, folder, mirrors, progress=False, default_mirrors=False, env_mirrors=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_from_extra_mirror(server, tmp_path, fusion_bytes):
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    path = _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    assert path == tmp_path / "fusion_stcn.pth"
    assert path.read_bytes() == fusion_bytes
    assert _leftovers(tmp_path) == ["fusion_stcn.pth"]
    assert server.hits("/w/fusion_stcn.pth") == [None]


def test_resume_after_connection_cut_midway(server, tmp_path, fusion_bytes):
    half = len(fusion_bytes) // 2
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes, cut_at=half, cuts=1)
    path = _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/")
    assert server.hits("/w/fusion_stcn.pth") == [None, f"bytes={half}-"]
    assert path.read_bytes() == fusion_bytes
    validate_file(FUSION_WEIGHTS, path)
    assert _leftovers(tmp_path) == ["fusion_stcn.pth"]


def test_partial_kept_for_the_next_run_never_under_final_name(server, tmp_path, fusion_bytes):
    half = len(fusion_bytes) // 2
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes, cut_at=half, cuts=99)
    with pytest.raises(DownloadError) as err:
        _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    assert "connection closed" in str(err.value) and "fusion_stcn.pth" in str(err.value)
    assert _leftovers(tmp_path) == ["fusion_stcn.pth.part"]
    assert (tmp_path / "fusion_stcn.pth.part").stat().st_size == half

    server.routes["/w/fusion_stcn.pth"].cuts = 0  # the network is back: the next run resumes
    server.requests.clear()
    path = _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    assert server.hits("/w/fusion_stcn.pth") == [f"bytes={half}-"]
    assert path.read_bytes() == fusion_bytes
    assert _leftovers(tmp_path) == ["fusion_stcn.pth"]


def test_falls_back_after_404_and_html_page(server, tmp_path, fusion_bytes):
    server.routes["/html/fusion_stcn.pth"] = Route(HTML, content_type="text/html")
    server.routes["/good/fusion_stcn.pth"] = Route(fusion_bytes)
    mirrors = [f"{server.base}/{d}/{{name}}" for d in ("missing", "html", "good")]
    path = _get(FUSION_WEIGHTS, tmp_path, *mirrors)
    assert [p for p, _ in server.requests] == [
        "/missing/fusion_stcn.pth",
        "/html/fusion_stcn.pth",
        "/good/fusion_stcn.pth",
    ]
    assert path.read_bytes() == fusion_bytes
    assert _leftovers(tmp_path) == ["fusion_stcn.pth"]


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream"])
def test_rejects_html_body(server, tmp_path, content_type):
    server.routes["/w/s2m.pth"] = Route(HTML, content_type=content_type)
    (tmp_path / "s2m.pth").write_bytes(b"the user's old file")
    with pytest.raises(DownloadError) as err:
        _get(S2M_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    msg = str(err.value)
    assert str(tmp_path / "s2m.pth") in msg and "HTML" in msg and "--mirror" in msg
    # Nothing half-written: the old file is untouched and the rejected page is gone.
    assert (tmp_path / "s2m.pth").read_bytes() == b"the user's old file"
    assert _leftovers(tmp_path) == ["s2m.pth"]


def test_rejects_truncated_file(server, tmp_path, fusion_bytes):
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes[: len(fusion_bytes) // 3])
    with pytest.raises(DownloadError) as err:
        _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    msg = str(err.value)
    assert "fusion_stcn.pth" in msg and "truncated" in msg
    assert _leftovers(tmp_path) == []


def test_rejects_wrong_model(server, tmp_path, fusion_bytes):
    server.routes["/w/s2m.pth"] = Route(fusion_bytes)  # fusion weights under the S2M name
    with pytest.raises(DownloadError) as err:
        _get(S2M_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    msg = str(err.value)
    assert "s2m.pth" in msg and "looks like the fusion network" in msg
    assert _leftovers(tmp_path) == []


def test_no_mirror_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="no mirror to try"):
        _get(FBRS_WEIGHTS, tmp_path)


def test_mirror_order_user_first_then_env_then_builtin(monkeypatch):
    monkeypatch.setenv("MIVOS_WEIGHTS_MIRROR", "http://env/{name}, ,http://env2/")
    urls = mirror_urls(STCN_WEIGHTS, ["http://cli/{name}", "http://cli/direct.bin"])
    assert urls[:4] == (
        "http://cli/stcn.pth",
        "http://cli/direct.bin",
        "http://env/stcn.pth",
        "http://env2/stcn.pth",
    )
    assert urls[4:] == STCN_WEIGHTS.urls
    assert "drive.google.com" in STCN_WEIGHTS.urls[0] and "sharepoint" in STCN_WEIGHTS.urls[1]
    assert mirror_urls(STCN_WEIGHTS, default_mirrors=False, env_mirrors=False) == ()
    assert expand_mirror("http://h/w/{name}", "s2m.pth") == "http://h/w/s2m.pth"


def test_fbrs_schema_check(tmp_path):
    sd = fbrs_state_dict()
    good = tmp_path / "fbrs.pth"
    good.write_bytes(save_bytes(sd))
    validate_file(FBRS_WEIGHTS, good)

    key = "feature_extractor.backbone.conv1.0.weight"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(save_bytes({**sd, key: torch.zeros(3)}))
    with pytest.raises(CheckpointError, match="wrong shapes") as err:
        validate_file(FBRS_WEIGHTS, bad)
    assert "bad.pth" in str(err.value) and "download_model.py --only fbrs.pth" in str(err.value)

    bad.write_bytes(save_bytes({k: v for k, v in sd.items() if k != key}))
    with pytest.raises(CheckpointError, match="1 missing keys"):
        validate_file(FBRS_WEIGHTS, bad)


def test_missing_weights(good_folder, tmp_path):
    assert missing_weights(good_folder, validate=True) == []
    (tmp_path / "stcn.pth").write_bytes(HTML)
    assert missing_weights(tmp_path) == [w for w in WEIGHTS if w is not STCN_WEIGHTS]
    assert missing_weights(tmp_path, validate=True) == list(WEIGHTS)


def _cli(*args: str, cwd: Path = REPO, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for var in ("MIVOS_WEIGHTS_MIRROR", "MIVOS_WEIGHTS", "XDG_DATA_HOME"):
        env.pop(var, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = str(REPO)  # run from `cwd` as a person would, the script by its path
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, str(REPO / "download_model.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_good_and_bad_folder(good_folder, tmp_path, fusion_bytes):
    ok = _cli("--verify", "--dir", str(good_folder))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("OK") == 4

    (tmp_path / "stcn.pth").write_bytes(HTML)
    (tmp_path / "s2m.pth").write_bytes(fusion_bytes)
    (tmp_path / "fusion_stcn.pth").write_bytes(fusion_bytes)
    bad = _cli("--verify", "--dir", str(tmp_path))
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 3, bad.stderr  # stcn (HTML), s2m (wrong model), fbrs (missing)
    assert any(
        line.startswith("INVALID") and "stcn.pth" in line and "HTML" in line for line in lines
    )
    assert any(line.startswith("INVALID") and "s2m.pth" in line for line in lines)
    assert any(line.startswith("MISSING") and "fbrs.pth" in line for line in lines)
    assert "fusion_stcn.pth" in bad.stdout


def test_cli_download_skip_and_failure(server, tmp_path, fusion_bytes):
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    common = ("--dir", str(tmp_path), "--no-default-mirrors", "--quiet")
    run = _cli(*common, "--only", "fusion_stcn.pth", "--mirror", f"{server.base}/w/{{name}}")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "fusion_stcn.pth").read_bytes() == fusion_bytes

    again = _cli(*common, "--only", "fusion_stcn.pth", "--mirror", f"{server.base}/w/{{name}}")
    assert again.returncode == 0 and "already present and valid" in again.stdout
    assert len(server.requests) == 1

    failed = _cli(*common, "--only", "s2m.pth", "fbrs.pth", "--mirror", f"{server.base}/none/")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    final = [line for line in failed.stderr.splitlines() if line.startswith("FAILED")]
    assert len(final) == 2 and all("HTTP 404" in line for line in final)
    assert not (tmp_path / "s2m.pth").exists() and not (tmp_path / "fbrs.pth").exists()


def test_google_drive_mirror_goes_through_gdown(monkeypatch, tmp_path, fusion_bytes):
    import gdown

    calls = []

    def fake_gdown(*, id, output, quiet, resume):  # writes what Drive would have sent
        calls.append(id)
        Path(output).write_bytes(HTML if len(calls) == 1 else fusion_bytes)
        return output

    monkeypatch.setattr(gdown, "download", fake_gdown)
    drive = "https://drive.google.com/file/d/FILE_ID-1/view?usp=sharing"
    with pytest.raises(DownloadError, match="Google Drive id FILE_ID-1: .*HTML"):
        _get(FUSION_WEIGHTS, tmp_path, drive)  # a quota page saved as the file
    assert _leftovers(tmp_path) == []
    path = _get(FUSION_WEIGHTS, tmp_path, drive)
    assert calls == ["FILE_ID-1", "FILE_ID-1"]
    assert path.read_bytes() == fusion_bytes and _leftovers(tmp_path) == ["fusion_stcn.pth"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pinned_sha256_that_matches_is_accepted(server, tmp_path, fusion_bytes, caplog):
    caplog.set_level(logging.INFO, logger="model.download")
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    pinned = dataclasses.replace(FUSION_WEIGHTS, sha256=_sha256(fusion_bytes))
    path = _get(pinned, tmp_path, f"{server.base}/w/{{name}}")
    assert path.read_bytes() == fusion_bytes
    assert "fusion_stcn.pth: SHA-256 matches the official file" in caplog.messages


def test_pinned_sha256_mismatch_is_rejected_naming_the_file_and_both_hashes(
    server, tmp_path, fusion_bytes
):
    # A file that loads strictly (a valid fusion network) but is not the pinned official one.
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    official = "ab" * 32
    pinned = dataclasses.replace(FUSION_WEIGHTS, sha256=official)
    with pytest.raises(DownloadError) as err:
        _get(pinned, tmp_path, f"{server.base}/w/{{name}}")
    msg = str(err.value)
    assert str(tmp_path / "fusion_stcn.pth") in msg
    assert f"has SHA-256 {_sha256(fusion_bytes)}" in msg
    assert f"the official fusion_stcn.pth has {official}" in msg
    assert _leftovers(tmp_path) == []  # neither kept under the final name nor as a .part


def test_unknown_sha256_accepted_on_strict_loading_with_a_note(
    server, tmp_path, fusion_bytes, caplog
):
    caplog.set_level(logging.INFO, logger="model.download")
    assert FUSION_WEIGHTS.sha256 is None  # no official hash is known for it (model/weights.py)
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    path = _get(FUSION_WEIGHTS, tmp_path, f"{server.base}/w/{{name}}")
    assert path.read_bytes() == fusion_bytes
    (note,) = [m for m in caplog.messages if "SHA-256" in m]
    assert note.startswith("fusion_stcn.pth: no official SHA-256 is recorded")
    assert _sha256(fusion_bytes) in note  # given, so that it can be pinned


def test_pinned_hashes_are_well_formed():
    for spec in WEIGHTS:
        assert spec.sha256 is None or (
            len(spec.sha256) == 64 and set(spec.sha256) <= set("0123456789abcdef")
        ), spec.filename


@pytest.mark.parametrize("how", ["user_data_dir", "MIVOS_WEIGHTS"])
def test_cli_default_folder_is_the_applications_from_anywhere(server, tmp_path, how, fusion_bytes):
    """`python download_model.py` fills the folder the application reads, wherever it is run."""
    server.routes["/w/fusion_stcn.pth"] = Route(fusion_bytes)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if how == "MIVOS_WEIGHTS":
        env = {"MIVOS_WEIGHTS": str(tmp_path / "mine")}
        expected = tmp_path / "mine" / "fusion_stcn.pth"
    else:  # platformdirs' per-user data folder, which honours XDG_DATA_HOME on Linux
        env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
        expected = tmp_path / "xdg" / "mivos-studio" / "weights" / "fusion_stcn.pth"
    run = _cli(
        "--only", "fusion_stcn.pth", "--no-default-mirrors", "--quiet",
        "--mirror", f"{server.base}/w/{{name}}", cwd=elsewhere, **env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"OK      {expected} (downloaded and verified)" in run.stdout
    assert expected.read_bytes() == fusion_bytes
    assert list(elsewhere.iterdir()) == []  # no saves/ appears in the current folder
    verify = _cli("--verify", "--only", "fusion_stcn.pth", cwd=elsewhere, **env)
    assert verify.returncode == 0 and f"OK      {expected}" in verify.stdout
