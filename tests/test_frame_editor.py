"""Interactions and undo/redo through the FrameEditor, with a random-weight S2M."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interact.frame_editor import FrameEditor
from interact.history import EditHistory, make_edit
from model.s2m import S2MNetwork
from util.tensor_util import pad_amounts

H0, W0 = 40, 60
PAD = pad_amounts(H0, W0)  # -> 48 x 64


@pytest.fixture(scope="module")
def s2m():
    torch.manual_seed(0)
    return S2MNetwork().eval()


def _committed(num_objects=2):
    prob = np.zeros((num_objects + 1, 48, 64), np.float32)
    prob[0] = 1
    return prob


def _image():
    torch.manual_seed(1)
    return torch.randn(1, 3, 48, 64)


def test_free_strokes_paint_and_erase(s2m):
    ed = FrameEditor(2, (H0, W0), PAD, s2m)
    base = _committed()
    with torch.inference_mode():
        a = ed.stroke(3, "free", 2, [(10, 10), (30, 10)], 5, _image(), base)
        labels = a.argmax(0)
        top, left = PAD[2], PAD[0]
        assert labels[top + 10, left + 20] == 2
        assert labels[top + 30, left + 50] == 0
        b = ed.stroke(3, "free", 0, [(20, 10), (20, 10)], 5, _image(), base)  # right button dot
    assert b.argmax(0)[top + 10, left + 20] == 0
    assert b.argmax(0)[top + 10, left + 12] == 2
    assert np.allclose(b.sum(0), 1, atol=1e-5)


def test_undo_redo_restore_exact_masks_and_the_interaction(s2m):
    ed = FrameEditor(2, (H0, W0), PAD, s2m)
    base = _committed()
    with torch.inference_mode():
        first = ed.stroke(0, "scribble", 1, [(5, 5), (25, 20)], 3, _image(), base)
        second = ed.stroke(0, "scribble", 2, [(40, 30), (50, 35)], 3, _image(), base)
        assert len(ed._live.strokes) == 2
        assert np.array_equal(ed.undo(0, base), first)
        assert len(ed._live.strokes) == 1  # the stroke left the S2M input too
        assert ed.can_redo(0)
        assert np.array_equal(ed.redo(0, base), second)
        assert len(ed._live.strokes) == 2
        assert np.array_equal(ed.undo(0, base), first)
        assert np.array_equal(ed.undo(0, base), base)
        assert ed.undo(0, base) is None
        # a new edit clears redo
        ed.stroke(0, "free", 1, [(1, 1), (2, 2)], 3, _image(), base)
        assert not ed.can_redo(0)


def test_reset_frame_is_undoable_and_histories_are_per_frame(s2m):
    ed = FrameEditor(1, (H0, W0), PAD, s2m)
    base = _committed(1)
    base[1, 10:20, 10:20], base[0, 10:20, 10:20] = 1, 0
    cleared = ed.reset_frame(5, base)
    assert (cleared.argmax(0) == 0).all()
    assert not ed.can_undo(4)
    assert np.array_equal(ed.undo(5, base), base)


def test_propagation_is_a_barrier(s2m):
    ed = FrameEditor(1, (H0, W0), PAD, s2m)
    with torch.inference_mode():
        ed.stroke(2, "free", 1, [(1, 1), (9, 9)], 3, _image(), _committed(1))
    assert ed.pending_frames() == [2]
    ed.committed(2)
    assert ed.pending_frames() == [] and not ed.can_undo(2)


def test_scribbles_need_s2m():
    ed = FrameEditor(1, (H0, W0), PAD, None)
    with pytest.raises(RuntimeError, match="s2m.pth"):
        ed.stroke(0, "scribble", 1, [(1, 1)], 3, _image(), _committed(1))


def test_history_stores_only_the_changed_box_and_caps():
    before = np.zeros((2, 30, 30), np.float32)
    after = before.copy()
    after[1, 5:8, 10:20] = 1
    edit = make_edit(before, after)
    assert edit.box == (5, 8, 10, 20) and edit.before.shape == (2, 3, 10)
    assert make_edit(before, before) is None
    history = EditHistory(capacity=3)
    for _ in range(5):
        history.push(edit)
    assert sum(1 for _ in iter(history.pop_undo, None)) == 3
