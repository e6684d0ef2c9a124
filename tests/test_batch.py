"""batch_propagate.py: the manifest, restartable items, isolated failures, Ray and local engines.

Tiny generated clips (three image folders and one video of 64x96, 8 frames) with random
weights; every item's outputs are compared byte for byte with what `python -m inference_core`
(workflow.headless.main, in this process) writes for the same item. The Ray tests share one
local cluster of 2 CPUs (ray.init(num_cpus=2)) for the module, shut down at its end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from model.build import FUSION, PROPAGATION
from tests.shared_assets import REPO
from util.mask_io import read_index_mask, write_index_mask
from workflow.batch import engines
from workflow.batch.cli import build_parser as batch_parser
from workflow.batch.cli import main as batch_main
from workflow.batch.manifest import ManifestError, parse_line, parse_shard, read_manifest, shard
from workflow.batch.records import RECORD_FILE, holds_persons_work, read_record
from workflow.headless import build_parser as headless_parser
from workflow.headless import main as headless_main
from workflow.headless import propagate_item
from workflow.state import LOG_FILE, STATE_FILE

H, W, T = 64, 96, 8
EXPORTS = ["--export", "binary", "--export", "coco"]
# The batch's run-wide flags (an item's "resolution" overrides --resolution).
RUN = ["--resolution", "-1", *EXPORTS]


def _square(t: int, k: int) -> tuple[slice, slice]:
    """Where object k is on frame t: a 20x20 square moving right 3 px per frame."""
    top, left = 8 + 28 * (k - 1), 6 + 3 * t + 30 * (k - 1)
    return slice(top, top + 20), slice(left, left + 20)


def _frames(seed: int, objects: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 100, (H, W, 3), dtype=np.uint8)
    frames = []
    for t in range(T):
        image = background.copy()
        for k in range(1, objects + 1):
            image[_square(t, k)] = (240, 60 * k, 40)
        frames.append(image)
    return frames


def _write_mask(folder: Path, objects: int, shift: int = 0) -> None:
    mask = np.zeros((H, W), np.uint8)
    for k in range(1, objects + 1):
        rows, cols = _square(0, k)
        mask[rows, slice(cols.start + shift, cols.stop + shift)] = k
    write_index_mask(folder / "00000.png", mask)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Weights, clips a and b (image folders), c (a video), d (an image folder), masks."""
    root = tmp_path_factory.mktemp("batch")
    torch.manual_seed(0)
    torch.save(PROPAGATION.factory().state_dict(), root / "stcn.pth")
    torch.save(FUSION.factory().state_dict(), root / "fusion_stcn.pth")
    for name, seed, objects in (("a", 1, 1), ("b", 2, 2), ("d", 4, 1)):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for t, image in enumerate(_frames(seed, objects)):
            Image.fromarray(image).save(folder / f"{t:05d}.png")
    writer = cv2.VideoWriter(
        str(root / "data" / "c.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H)
    )
    for image in _frames(3, 2):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    (root / "data" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000)
    for name, objects in (("a", 1), ("b", 2), ("c", 2), ("d", 1), ("broken", 1)):
        (root / "masks" / name).mkdir(parents=True)
        _write_mask(root / "masks" / name, objects)
    return root


def _weights(root: Path) -> list[str]:
    return [
        "--prop_model", str(root / "stcn.pth"), "--fusion_model", str(root / "fusion_stcn.pth"),
        "--device", "cpu",
    ]  # fmt: skip


# Manifest lines (relative to the manifest in `root`), and the headless flags of each item.
GOOD = {
    "a": ({"images": "data/a", "masks": "masks/a"}, ["--resolution", "-1"]),
    "b": ({"images": "data/b", "masks": "masks/b", "end": 6}, ["--resolution", "-1", "--end", "6"]),
    "c": ({"video": "data/c.mp4", "masks": "masks/c", "resolution": 48}, ["--resolution", "48"]),
}
BROKEN = {  # manifest line -> what its failure must say
    "broken": ({"video": "data/broken.mp4", "masks": "masks/broken"}, "broken.mp4"),
    "nomasks": ({"images": "data/d", "masks": "masks/missing"}, "mask folder not found"),
}


def _manifest(root: Path, name: str, out: str, entries: dict) -> Path:
    lines = [json.dumps({**entry, "output": f"{out}/{key}"}) for key, (entry, _) in entries.items()]
    path = root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _headless(root: Path, key: str, out: Path, masks: str | None = None) -> Path:
    """What `python -m inference_core` writes for item `key` (same entry point, same argv),
    with one torch thread like the batch's workers here: CPU float sums depend on the thread
    count in the last bits (frame 4 of clip c comes out differently at 1 and 2 threads in
    the headless command itself)."""
    entry, flags = GOOD[key]
    source = ["--video", str(root / entry["video"])] if "video" in entry else [
        "--images", str(root / entry["images"])]  # fmt: skip
    argv = [*source, "--masks", str(root / (masks or entry["masks"])), "--output", str(out)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert headless_main([*argv, *flags, *_weights(root), *EXPORTS]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def references(assets):
    return {key: _headless(assets, key, assets / "ref" / key) for key in GOOD}


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (the batch's own record aside) -> its bytes; the COCO file's
    creation date (the only field that depends on when it was written) blanked."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != RECORD_FILE:
            data = path.read_bytes()
            if path.name == "coco.json":
                coco = json.loads(data)
                coco["info"]["date_created"] = None
                data = json.dumps(coco, sort_keys=True).encode()
            files[str(path.relative_to(folder))] = data
    return files


def _same_as_reference(out: Path, ref: Path) -> None:
    got, want = _tree(out), _tree(ref)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
    assert any(name.startswith("exports/binary/") for name in got)


def _snapshot(folder: Path) -> dict[Path, tuple[int, bytes]]:
    """Every file under `folder` -> (modification time in ns, bytes)."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def _results(path: Path) -> dict[int, dict]:
    return {r["item"]: r for r in map(json.loads, path.read_text().splitlines())}


# ---- the manifest ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"images": "f", "masks": "m"', "not valid JSON"),
        ('["f", "m", "o"]', "expected a JSON object"),
        ('{"images": "f", "masks": "m"}', '"output" must be a non-empty path string'),
        ('{"video": "v.mp4", "images": "f", "masks": "m", "output": "o"}', "exactly one"),
        ('{"images": "f", "mask": "m", "output": "o"}', 'unknown key(s) "mask"'),
        ('{"images": "f", "masks": "m", "output": "o", "start": true}', '"start" must be an int'),
        ('{"images": "f", "masks": "m", "output": "o", "start": 5, "end": 5}', '"end" (5)'),
        ('{"images": "f", "masks": "m", "output": "o", "resolution": 0}', '"resolution"'),
        ('{"images": "f", "masks": "m", "output": "o", "num_objects": 0}', '"num_objects"'),
        ('{"images": "f", "masks": "m", "output": "./f"}', '"output" is the "images" folder'),
        ('{"video": "v.mp4", "masks": "m", "output": "m/"}', '"output" is the "masks" folder'),
    ],
)
def test_a_bad_manifest_line_says_what_is_wrong(text, says):
    with pytest.raises(ValueError) as info:
        parse_line(text, 1, Path("/data"))
    assert says in str(info.value)


def test_paths_are_relative_to_the_manifest(tmp_path):
    path = tmp_path / "sets" / "m.jsonl"
    path.parent.mkdir()
    path.write_text(
        '{"video": "clips/a.mp4", "masks": "../masks/a", "output": "/abs/out/a", "start": 3}\n'
        "\n"  # blank lines are skipped and still counted
        '{"images": "frames/b", "masks": "masks/b", "output": "out/b", "resolution": -1}\n'
    )
    a, b = read_manifest(path)
    assert (a.line, a.video, a.images) == (1, str(path.parent / "clips/a.mp4"), None)
    assert (a.masks, a.output, a.start, a.end) == (
        str(path.parent / "../masks/a"),
        "/abs/out/a",
        3,
        None,
    )
    assert (b.line, b.images, b.output, b.resolution) == (
        3, str(path.parent / "frames/b"), str(path.parent / "out/b"), -1
    )  # fmt: skip
    assert b.name == f"line 3 ({path.parent / 'frames/b'})"


def test_two_items_with_one_output_folder_are_refused(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"images": "a", "masks": "m", "output": "out/x"}\n'
        '{"images": "b", "masks": "m", "output": "out/../out/x"}\n'
    )
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: .*also line 1's output"):
        read_manifest(path)


def test_a_bad_line_stops_the_run_before_any_work(assets):
    manifest = assets / "bad" / "bad.jsonl"
    manifest.parent.mkdir()
    manifest.write_text(
        '{"images": "../data/a", "masks": "../masks/a", "output": "out/a"}\n'
        "\n"
        '{"images": "../data/b", "output": "out/b"}\n'
    )
    cmd = [sys.executable, "batch_propagate.py", str(manifest), "--engine", "local"]
    run = subprocess.run(
        [*cmd, *_weights(assets)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f'error: {manifest}:3: "masks" must be a non-empty path string'
    )  # fmt: skip
    assert sorted(p.name for p in manifest.parent.iterdir()) == ["bad.jsonl"]  # nothing ran


def test_fast_is_offered_exactly_when_the_headless_command_has_it():
    def flags(parser):
        return {s for a in parser._actions for s in a.option_strings}

    assert ("--fast" in flags(batch_parser())) == ("--fast" in flags(headless_parser()))


def test_shards_split_the_manifest_statically():
    assert parse_shard("0/1") == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="0 <= i < N"):
            parse_shard(bad)
    items = list(range(7))
    assert [shard(items, i, 3) for i in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]


def test_ray_missing_says_how_to_install_it(assets, monkeypatch, capsys):
    manifest = _manifest(assets, "noray.jsonl", "noray_out", {"a": GOOD["a"]})
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert batch_main([str(manifest), "--engine", "ray", *_weights(assets)]) == 2
    err = capsys.readouterr().err
    assert "pip install -r requirements-batch.txt" in err and "--engine local" in err
    assert not (assets / "noray_out").exists()


@pytest.mark.parametrize(
    ("cluster", "device", "workers", "cpus", "want"),
    [
        ({"CPU": 2}, "cpu", 2, None, (2, 1, 0)),  # 2 workers share 2 cores
        ({"CPU": 16}, "auto", None, None, (4, 4, 0)),  # 4 cores each by default
        ({"CPU": 16}, "auto", None, 2, (8, 2, 0)),
        ({"CPU": 2}, "auto", None, None, (1, 2, 0)),
        ({"CPU": 32, "GPU": 4}, "auto", None, None, (4, 1, 1)),  # one per GPU
        ({"CPU": 32, "GPU": 4}, "cpu", None, None, (8, 4, 0)),  # --device cpu ignores GPUs
        ({"CPU": 64}, "auto", 100, None, (3, 1, 0)),  # never more workers than items
    ],
)
def test_workers_per_gpu_or_per_cores(cluster, device, workers, cpus, want):
    placement = engines.plan_workers(cluster, device, workers, cpus, items=3 if workers else 99)
    assert (placement.workers, placement.cpus, placement.gpus) == want


def test_cuda_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(engines.EngineError, match="no GPU"):
        engines.plan_workers({"CPU": 8}, "cuda", None, None, 5)


# ---- running items --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster of 2 CPUs for the module (start-up costs seconds), always shut
    down at the end so no Ray process outlives the tests."""
    ray = pytest.importorskip(
        "ray", reason="Ray not installed: pip install -r requirements-batch.txt"
    )
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )  # fmt: skip
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def first_ray_run(assets, references, ray_cluster):
    """The batch on Ray (2 workers) over the good and the broken items, as a user runs it:
    (argv, exit status, results by manifest line)."""
    manifest = _manifest(assets, "ray.jsonl", "ray_out", {**GOOD, **BROKEN})
    argv = [str(manifest), "--engine", "ray", "--workers", "2", *_weights(assets), *RUN]
    status = batch_main(argv)
    return argv, status, _results(assets / "batch_results.jsonl")


def test_ray_outputs_equal_the_headless_commands(assets, references, first_ray_run):
    _, _, results = first_ray_run
    for line, key in enumerate(GOOD, start=1):
        assert results[line]["status"] == "done", results[line]
        _same_as_reference(assets / "ray_out" / key, references[key])
        record = read_record(assets / "ray_out" / key)
        assert record["frames"] == results[line]["frames"] == (6 if key == "b" else T)
        assert record["line"] == line and record["settings"]["resolution"] == (
            48 if key == "c" else -1
        )
    # Frame 0 keeps the given mask, at the source size.
    given = read_index_mask(assets / "masks" / "b" / "00000.png")
    assert np.array_equal(read_index_mask(assets / "ray_out" / "b" / "00000.png"), given)
    # At most two workers, each loading the networks once for all the items it ran.
    done = [r for r in results.values() if r["status"] == "done"]
    assert 1 <= len({r["worker"] for r in done}) <= 2
    assert [r["net_loads"] for r in done] == [1, 1, 1]


def test_ray_failures_fail_their_item_only(assets, first_ray_run, capsys):
    _, status, results = first_ray_run
    assert status == 1
    assert [results[i]["status"] for i in range(1, 6)] == ["done"] * 3 + ["failed"] * 2
    for line, (key, (_, says)) in enumerate(BROKEN.items(), start=len(GOOD) + 1):
        assert says in results[line]["error"]
        assert results[line]["frames"] is None
        # Its record says it started and never finished: the next run redoes it.
        assert read_record(assets / "ray_out" / key)["status"] == "running"


def test_ray_rerun_skips_finished_items_and_redoes_a_changed_one(assets, first_ray_run, capsys):
    argv, _, _ = first_ray_run
    before = {key: _snapshot(assets / "ray_out" / key) for key in GOOD}
    # Item b's mask moves 2 px and loses object 2: stale masks or a stale project file left
    # in the folder would bring object 2 back.
    _write_mask(assets / "masks" / "b", 1, shift=2)
    try:
        capsys.readouterr()
        assert batch_main(argv) == 1  # the broken items still fail
        err = capsys.readouterr().err
        changed = _headless(assets, "b", assets / "ref" / "b_shifted")
    finally:
        _write_mask(assets / "masks" / "b", 2)  # as the other tests expect it
    assert "skipping 2 of 5 item(s)" in err and "2 skipped" in err and "1 done" in err
    results = _results(assets / "batch_results.jsonl")
    assert [results[i]["status"] for i in range(1, 6)] == [
        "skipped", "done", "skipped", "failed", "failed"
    ]  # fmt: skip
    for key in ("a", "c"):  # untouched: same files, same bytes, same modification times
        assert _snapshot(assets / "ray_out" / key) == before[key]
    # Redone as from scratch: the headless command's output in a new folder (its project file
    # says round 1, not round 2 of a second run there).
    _same_as_reference(assets / "ray_out" / "b", changed)
    assert _tree(changed) != _tree(assets / "ref" / "b")  # the change did change the masks
    for t in range(6):
        assert set(np.unique(read_index_mask(assets / "ray_out" / "b" / f"{t:05d}.png"))) <= {0, 1}


def crash_in_the_middle(opened, nets, args, bar):
    """A runner whose worker process dies after 3 propagated frames: on the first attempt for
    an item with "once" in its output name, on every attempt for "always"."""
    out = opened.out_dir
    marker = out.parent / f"{out.name}.crashed"
    if "always" in out.name or not marker.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")

        class Dying:
            def __init__(self, desc, total):
                self.n = 0

            def update(self, k=1):
                self.n += k
                if self.n == 3:
                    os._exit(1)  # as a segfault or the OOM killer would: no cleanup

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

        bar = Dying
    return propagate_item(opened, nets, args, bar)


def test_a_worker_killed_mid_item_is_retried_once(assets, references, ray_cluster, capsys):
    entries = {"once": GOOD["a"], "always": GOOD["b"]}
    manifest = _manifest(assets, "crash.jsonl", "crash_out", entries)
    report = assets / "crash_results.jsonl"
    argv = [str(manifest), "--engine", "ray", "--workers", "2", "--report", str(report)]
    status = batch_main([*argv, *_weights(assets), *RUN], runner=crash_in_the_middle)
    assert status == 1
    results = _results(report)
    # "once" died mid-item (some masks written), was retried by Ray in a new process, finished.
    died = (assets / "crash_out" / "once.crashed").read_text().split()
    assert len(died) == 1 and results[1]["status"] == "done"
    assert results[1]["worker"].split(":")[1] != died[0]
    _same_as_reference(assets / "crash_out" / "once", references["a"])
    # "always" died on both tries: failed, named, no record; the run went on.
    assert len((assets / "crash_out" / "always.crashed").read_text().split()) == 2
    assert results[2]["status"] == "failed" and "died twice" in results[2]["error"]
    assert read_record(assets / "crash_out" / "always")["status"] == "running"
    assert read_record(assets / "crash_out" / "once")["status"] == "done"
    assert "failed: line 2" in capsys.readouterr().err


def test_a_persons_work_is_never_cleared(assets, references):
    """What the headless command wrote (imported masks only) may be redone from scratch; GUI
    annotations, an interaction log or an unreadable project file are kept."""
    folder = shutil.copytree(references["a"], assets / "persons")
    assert not holds_persons_work(folder)
    project = json.loads((folder / STATE_FILE).read_text())
    assert [a["kind"] for a in project["annotations"].values()] == ["imported"]
    (folder / LOG_FILE).write_text('{"kind": "scribble", "frame": 3}\n')
    assert holds_persons_work(folder)
    (folder / LOG_FILE).unlink()
    project["annotations"]["00003"] = {"kind": "annotated", "interactions": ["free"]}
    (folder / STATE_FILE).write_text(json.dumps(project))
    assert holds_persons_work(folder)
    (folder / STATE_FILE).write_text("{not json")
    assert holds_persons_work(folder)


def test_local_engine_gives_the_same_outputs(assets, references, capsys):
    manifest = _manifest(assets, "local.jsonl", "local_out", {**GOOD, "nomasks": BROKEN["nomasks"]})
    argv = [str(manifest), "--engine", "local", "--cpus_per_worker", "1", *_weights(assets), *RUN]
    assert torch.get_num_threads() == 2  # tests/conftest.py
    assert batch_main(argv) == 1
    # the run's one thread was the worker's: this process has its own setting back
    assert torch.get_num_threads() == 2
    results = _results(assets / "batch_results.jsonl")
    assert [results[i]["status"] for i in range(1, 5)] == ["done"] * 3 + ["failed"]
    assert len({r["worker"] for r in results.values()}) == 1  # this process
    for key in GOOD:
        _same_as_reference(assets / "local_out" / key, references[key])
    assert "mask folder not found" in capsys.readouterr().err
    # A rerun skips the three finished items and tries the failed one again.
    assert batch_main(argv) == 1
    assert "skipping 3 of 4 item(s)" in capsys.readouterr().err
    # Shard 1 of 2 is lines 2 and 4, with its own results file.
    assert batch_main([*argv, "--shard", "1/2"]) == 1
    shard_results = _results(assets / "batch_results.1-of-2.jsonl")
    assert {k: r["status"] for k, r in shard_results.items()} == {2: "skipped", 4: "failed"}
