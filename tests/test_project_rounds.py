"""The workflow's rounds: when frames are saved, what an error leaves, annotations kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from model.build import load_networks
from tests.project_helpers import project_for
from util.mask_io import read_index_mask
from workflow.mask_writer import MaskWriter
from workflow.project import NothingToPropagate

T, H, W = 14, 32, 48


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return load_networks(None, None, None, "cpu")


def _frames(seed: int = 0, cls=ArrayFrames):
    return cls(np.random.default_rng(seed).integers(0, 255, (T, H, W, 3), dtype=np.uint8))


def _mask(shift: int, ids=(1, 2)) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    if 1 in ids:
        mask[8:24, 4 + shift : 20 + shift] = 1
    if 2 in ids:
        mask[2:8, 30:40] = 2
    return mask


class SaveLog:
    """Stands in for the mask writer: records the soft result of each frame it is asked to save."""

    def __init__(self, project) -> None:
        self.project = project
        self.saves: list[tuple[int, np.ndarray]] = []

    def submit(self, t: int) -> None:
        self.saves.append((t, self.project.current_prob(t).copy()))


@pytest.mark.parametrize("annotated", [[0], [6], [3, 9], [0, 5, 11]])
def test_each_frame_is_saved_once_at_its_last_visit_with_its_final_result(nets, annotated):
    session = Session(nets, _frames(), 2, InferenceConfig(prob_dtype="float32"))
    project = project_for(session, full_masks=True)
    for i, a in enumerate(annotated):
        project.import_mask(a, _mask(2 * i), _mask(2 * i))
    project.writer = log = SaveLog(project)  # imports are saved at once; count from here
    assert project.plan().frames == annotated
    visits: list[int] = []
    project.propagate(on_frame=lambda f, done, total: visits.append(f))
    saved = [t for t, _ in log.saves]
    assert sorted(saved) == list(range(T)), "every frame saved exactly once"
    for t, prob in log.saves:
        assert np.array_equal(prob, project.current_prob(t)), f"frame {t} changed after saving"
    # Frames no later round revisits (before the last but one annotation) are saved in their
    # own round, before the last round begins (its commit), not when the run ends.
    if len(annotated) > 1:
        for t in range(annotated[-2]):
            assert saved.index(t) < saved.index(annotated[-1]), f"frame {t} saved late"
    # The plan's count is what progress bars show: the visits the rounds really made.
    previous = [-1, *annotated[:-1]]
    expected = sum((T - 1 - a) + (a - p - 1) for a, p in zip(annotated, previous, strict=True))
    assert len(visits) == expected


class Broken(ArrayFrames):
    """Frame 9 cannot be read (a damaged file in the middle of a video)."""

    def get(self, t):
        if t == 9:
            raise OSError("frame 9 is unreadable")
        return super().get(t)


def test_an_error_mid_propagation_leaves_display_disk_and_session_in_agreement(nets, tmp_path):
    session = Session(nets, _frames(1, Broken), 2, InferenceConfig(prob_dtype="float32"))
    project = project_for(session, output=tmp_path)
    project.writer = MaskWriter(tmp_path, project.names, project.labels_at_source)
    project.import_mask(2, _mask(0), _mask(0))
    # The person's unpropagated edit on a later frame, which the pass runs through.
    project.apply_stroke(12, "free", 2, [(5.0, 5.0), (25.0, 5.0)], 5)
    edited = project.mask(12).copy()
    with pytest.raises(OSError, match="frame 9"):
        project.propagate()
    assert project.writer.flush(timeout=60)
    for t in range(T):
        shown = project.mask(t)
        path = tmp_path / f"{project.names[t]}.png"
        if project.has_content(t):
            assert np.array_equal(read_index_mask(path), shown), f"frame {t}: disk != display"
        else:
            assert not path.exists()
        if t not in project.awaiting():
            assert np.array_equal(session.results.mask(t), shown), f"frame {t}: session"
    assert np.array_equal(project.mask(12), edited)  # the edit is still shown and saved
    assert [project.provenance[t].kind for t in (2, 3, 8, 9, 12)] == [
        "imported", "propagated", "propagated", "empty", "annotated"
    ]  # fmt: skip
    # The interrupted round runs again at the next Propagate, with the edit after it.
    assert project.awaiting() == [2, 12]
    project.writer.close()


def test_propagation_never_changes_a_committed_annotation(nets):
    session = Session(nets, _frames(2), 2, InferenceConfig(prob_dtype="float32"))
    project = project_for(session, full_masks=True)
    project.import_mask(4, _mask(0), _mask(0))
    project.import_mask(10, _mask(6), _mask(6))
    project.propagate()
    kept = {t: project.mask(t).copy() for t in (4, 10)}
    project.apply_stroke(7, "free", 1, [(30.0, 20.0), (40.0, 20.0)], 5)
    project.propagate()
    assert session.interacted[-1] == 7
    for t, mask in kept.items():
        assert np.array_equal(project.mask(t), mask)
        assert project.provenance[t].kind == "imported"
    assert project.provenance[7].interactions == ("free",)
    assert {project.provenance[t].round for t in (5, 6, 8, 9)} == {3}  # the third round
    with pytest.raises(NothingToPropagate):
        project.propagate()


def test_a_mask_with_only_new_objects_introduces_them(nets):
    session = Session(nets, _frames(3), 3, InferenceConfig(prob_dtype="float32"))
    project = project_for(session)
    first = _mask(0, ids=(1,))
    later = np.zeros((H, W), np.uint8)
    later[20:30, 30:44] = 3  # object 3 enters at frame 6, overlapping nothing given before
    project.import_mask(0, first, first)
    given = project.import_mask(6, later, later)
    assert given.introduces == (3,)
    project.propagate()
    at6 = project.mask(6)
    assert np.array_equal(at6 == 3, later == 3)  # the new object's pixels exactly as given
    assert (at6 == 1).any()  # object 1 is still tracked through frame 6
    assert (project.mask(T - 1) == 1).any() and (project.mask(T - 1) == 3).any()
    # A file holding an object annotated earlier is a full annotation of its frame.
    again = project.import_mask(9, _mask(4, ids=(1,)), _mask(4, ids=(1,)))
    assert again.introduces == ()


def test_an_object_added_while_annotating_keeps_everything_made_so_far(nets):
    session = Session(nets, _frames(4), 1, InferenceConfig(prob_dtype="float32"))
    project = project_for(session)
    project.import_mask(0, _mask(0, ids=(1,)), _mask(0, ids=(1,)))
    project.propagate()
    project.apply_stroke(9, "free", 1, [(30.0, 20.0), (40.0, 20.0)], 5)  # not propagated yet
    before = [project.mask(t).copy() for t in range(T)]
    probs = [project.committed(t).copy() for t in range(T)]
    info = project.add_object("cup")
    assert (info.id, info.name, project.num_objects) == (2, "cup", 2)
    assert project.session is not session and project.session.num_objects == 2
    assert project.session.memory_frames() == [0] and project.awaiting() == [9]
    for t in range(T):
        assert np.array_equal(project.mask(t), before[t]), t
        assert np.allclose(project.committed(t)[:2], probs[t]) and not project.committed(t)[2].any()
    # The new object is annotated and propagated like any other, and saved with its id.
    project.apply_stroke(3, "free", 2, [(5.0, 5.0), (20.0, 5.0)], 5)
    assert project.provenance[3].kind == "annotated"
    project.propagate()
    assert (project.mask(3) == 2).any() and (project.saved_labels(3) == 2).any()
    assert project.session.memory_frames() == [0, 3, 9]
