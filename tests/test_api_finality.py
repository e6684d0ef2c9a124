"""propagate_from_masks reports each frame final as early as possible, and only when it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference_core.api import propagate_from_masks
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from model.build import load_networks

T = 14


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return load_networks(None, None, None, "cpu")


def _mask(shift: int) -> np.ndarray:
    mask = np.zeros((32, 48), np.uint8)
    mask[8:24, 4 + shift : 20 + shift] = 1
    mask[2:8, 30:40] = 2
    return mask


@pytest.mark.parametrize("annotated", [[0], [6], [3, 9], [0, 5, 11]])
def test_every_frame_is_final_once_and_its_result_does_not_change_afterwards(nets, annotated):
    rng = np.random.default_rng(0)
    frames = ArrayFrames(rng.integers(0, 255, (T, 32, 48, 3), dtype=np.uint8))
    session = Session(nets, frames, 2, InferenceConfig(prob_dtype="float32"))
    masks = {a: _mask(2 * i) for i, a in enumerate(annotated)}
    at_final: dict[int, np.ndarray] = {}
    when: dict[int, int] = {}  # frames yielded before each frame was reported final
    seen: list[int] = []

    def on_final(t: int) -> None:
        assert t not in at_final, f"frame {t} reported final twice"
        at_final[t] = session.results.prob(t).copy()
        when[t] = len(seen)

    for t in propagate_from_masks(session, masks, on_final=on_final):
        seen.append(t)
    assert sorted(at_final) == list(range(T))
    for t, prob in at_final.items():
        assert np.array_equal(prob, session.results.prob(t)), f"frame {t} changed after final"
    # Every propagated frame is reported final at its last visit, not when the run ends.
    for t in set(seen) - set(annotated):  # annotated frames: final at their commit
        last_visit = len(seen) - 1 - seen[::-1].index(t)
        assert when[t] == last_visit, f"frame {t} reported final late"


def test_frames_computed_before_a_failure_are_already_final(nets):
    """An unreadable frame mid-run must not cost the masks of the frames before it."""

    class Broken(ArrayFrames):
        def get(self, t):
            if t == 9:
                raise OSError("frame 9 is unreadable")
            return super().get(t)

    rng = np.random.default_rng(1)
    session = Session(nets, Broken(rng.integers(0, 255, (T, 32, 48, 3), dtype=np.uint8)), 2)
    final: list[int] = []
    with pytest.raises(OSError, match="frame 9"):
        for _ in propagate_from_masks(session, {2: _mask(0)}, on_final=final.append):
            pass
    assert final == [2, 3, 4, 5, 6, 7, 8]
