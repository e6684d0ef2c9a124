"""The click interaction on a generated frame: f-BRS mask, aggregation with the other objects,
undo, session resets. Runs on random weights (no shared files needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interact.click import ClickInteraction
from model.fbrs.brs import BRSSettings, zero_vector
from model.fbrs.controller import ClickController
from model.fbrs.predictor import FBRSPredictor
from model.fbrs.transforms import TransformChain, ZoomIn
from model.normalize import normalize_frames
from tests.fbrs_helpers import he_initialised_fbrs
from util.tensor_util import pad_divide_by

H0, W0 = 60, 90  # padded to 64 x 96 with pad (3, 3, 2, 2)


@pytest.fixture(scope="module")
def net():
    return he_initialised_fbrs()


@pytest.fixture(scope="module")
def image():
    rgb = np.random.default_rng(0).integers(0, 255, (H0, W0, 3)).astype(np.uint8)
    rgb[15:45, 20:70] = 200
    padded, pad = pad_divide_by(normalize_frames(rgb)[None])
    assert pad == (3, 3, 2, 2)
    return padded


def _controller(net) -> ClickController:
    # A small zoom target and a short L-BFGS keep the test fast; the logic is unchanged.
    chain = TransformChain(zoom=ZoomIn(target_size=96))
    predictor = FBRSPredictor(net, BRSSettings(lbfgs_maxfun=4), transforms=chain)
    return ClickController(net, predictor)


def _prev_prob() -> torch.Tensor:
    prev = torch.zeros(2, 1, 64, 96)
    prev[0, 0, :, :30] = 0.9  # object 1 owns the left part of the frame
    prev[1, 0, 40:, 60:] = 0.3
    return prev


def test_click_gives_a_mask_for_the_selected_object(net, image):
    ctrl = _controller(net)
    inter = ClickInteraction(image, _prev_prob(), 2, (3, 3, 2, 2), ctrl)
    out = inter.add_click(40.0, 30.0, True)
    assert out.shape == (3, 1, 64, 96)
    torch.testing.assert_close(out.sum(0), torch.ones(1, 64, 96))
    mask = (ctrl.prob > 0.5)[0, 0]
    assert 0 < mask.float().mean() < 1
    labels = out.argmax(0)[0]
    assert (labels[mask] == 2).all()
    # Outside the mask, object 1 keeps its soft probability and beats the 0.5 background.
    assert (labels[~mask & (_prev_prob()[0, 0] > 0.5)] == 1).all()
    assert (labels[~mask & (_prev_prob()[0, 0] == 0)] == 0).all()
    assert [(c.y, c.x, c.positive) for c in inter.clicks] == [(30.0, 40.0, True)]
    assert [(c.y, c.x) for c in ctrl.clicks] == [(32.0, 43.0)]  # padded coordinates


def test_undo_restores_the_previous_probabilities_and_state(net, image):
    ctrl = _controller(net)
    inter = ClickInteraction(image, _prev_prob(), 1, (3, 3, 2, 2), ctrl)
    first = inter.add_click(40.0, 30.0, True)
    state_after_first = ctrl.predictor.get_state()
    second = inter.add_click(10.0, 50.0, False)
    assert ctrl.predictor.last.brs is not None  # the second click ran BRS
    assert len(ctrl.predictor.last.brs.evaluations) <= 6

    assert torch.equal(inter.undo_click(), first)
    assert len(inter.clicks) == 1
    assert ctrl.predictor.transforms.zoom.state.roi == state_after_first.transforms.zoom.roi
    np.testing.assert_array_equal(ctrl.predictor.brs_x, zero_vector())
    # Nothing was lost: the same click again gives the same result.
    torch.testing.assert_close(inter.add_click(10.0, 50.0, False), second, atol=1e-6, rtol=0)

    inter.undo_click()
    assert inter.undo_click() is None and inter.clicks == []
    assert inter.undo_click() is None


def test_session_resets_when_frame_or_object_changes(net, image):
    ctrl = _controller(net)
    ctrl.interact(image, 43.0, 32.0, True, key=(0, 1))
    ctrl.interact(image, 13.0, 52.0, False, key=(0, 1))
    assert len(ctrl.clicks) == 2
    ctrl.interact(image, 43.0, 32.0, True, key=(0, 2))
    assert len(ctrl.clicks) == 1 and ctrl.predictor.transforms.zoom.state.roi is None


def test_works_inside_inference_mode(net, image):
    # The GUI worker computes under torch.inference_mode(); BRS needs autograd locally.
    ctrl = _controller(net)
    with torch.inference_mode():
        ctrl.interact(image, 43.0, 32.0, True)
        mask = ctrl.interact(image, 13.0, 52.0, False)
    assert mask.shape == (1, 1, 64, 96)
    assert ctrl.predictor.last.brs.evaluations[0].g.any()


def test_rejects_an_object_out_of_range(net, image):
    with pytest.raises(ValueError, match="not in 1..2"):
        ClickInteraction(image, _prev_prob(), 3, (3, 3, 2, 2), _controller(net))
