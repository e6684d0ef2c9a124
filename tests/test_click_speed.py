"""The f-BRS speed work keeps the numbers: the fast mode agrees with fp32 on click masks, the
feature cache changes nothing, batch-norm folding and the click-square loss match the plain
computation. Real components, He-initialised weights through the real loader (load_fbrs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.fbrs.brs import BRSObjective, BRSSettings
from model.fbrs.clicks import NET_CLICKS_LIMIT, Click, click_squares, points_tensor
from model.fbrs.controller import ClickController
from model.fbrs.distance_maps import click_maps
from model.fbrs.load import load_fbrs, read_fbrs
from model.fbrs.network import FEATURE_CH
from model.fbrs.predictor import NORM_RADIUS, FBRSPredictor
from model.fbrs.transforms import TransformChain, ZoomIn
from model.normalize import normalize_frames
from model.precision import cpu_has_bf16
from tests.fbrs_helpers import write_he_checkpoint
from util.tensor_util import pad_divide_by

H0, W0 = 120, 200  # padded to 128 x 208
# (x, y, positive) in unpadded pixels: on the bright object, on the background, on the object.
CLICKS = ((70.0, 50.0, True), (170.0, 100.0, False), (110.0, 70.0, True))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_he_checkpoint(tmp_path_factory.mktemp("fbrs") / "fbrs.pth")


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (H0, W0, 3)).astype(np.uint8)
    rgb[30:90, 40:130] = (220, 200, 60)
    padded, _ = pad_divide_by(normalize_frames(rgb)[None])
    return padded


def _session(
    net, image, cache_size: int = 3, undo_redo: bool = False, replays=None
) -> tuple[list[torch.Tensor], FBRSPredictor, list]:
    """The probabilities (1,1,H,W) after each click (and after a redo, when asked), the
    predictor, and each click's L-BFGS evaluation points (None for the first click).
    replays: per click, evaluation points to replay instead of running L-BFGS freely."""
    # A small zoom target keeps the test quick; everything else is MiVOS' setting.
    chain = TransformChain(zoom=ZoomIn(target_size=160))
    predictor = FBRSPredictor(net, transforms=chain, feature_cache_size=cache_size)
    ctrl = ClickController(net, predictor)
    probs, points = [], []
    with torch.inference_mode():
        for i, (x, y, positive) in enumerate(CLICKS):
            ctrl.interact(image, x, y, positive, replay=replays[i] if replays else None)
            probs.append(ctrl.prob.clone())
            brs = predictor.last.brs
            points.append(None if brs is None else [e.x for e in brs.evaluations])
        if undo_redo:
            ctrl.undo()
            x, y, positive = CLICKS[-1]
            ctrl.interact(image, x, y, positive)  # the redo FrameEditor does
            probs.append(ctrl.prob.clone())
    return probs, predictor, points


def test_fast_mode_click_masks_agree_with_fp32(weights, image):
    """The first click end to end; the BRS clicks with the fast network evaluated at fp32's
    L-BFGS points. A free-running L-BFGS is chaotic (spec clicks_fbrs.md §9: 1e-6 noise in
    fp32 already drops the IoU to 0.72-0.95 after one BRS click; here bf16 free-running
    gave 86 % agreement), so free-running masks of two precisions are not comparable."""
    fp32, _, points = _session(load_fbrs(weights, "cpu"), image)
    fast_net = load_fbrs(weights, "cpu", fast=True)
    if cpu_has_bf16():  # else the fast mode is fp32 (model/precision.py) and this is trivial
        assert next(fast_net.feature_extractor.backbone.parameters()).dtype == torch.bfloat16
    assert points[0] is None and points[1] and points[2]  # clicks 2 and 3 ran BRS
    fast, _, _ = _session(fast_net, image, replays=points)
    for i, (a, b) in enumerate(zip(fp32, fast, strict=True)):
        assert a.dtype == b.dtype == torch.float32
        mask_a, mask_b = a > 0.5, b > 0.5
        # A mask that is empty or full would agree trivially and prove nothing.
        assert 0.02 < mask_a.float().mean() < 0.98, f"click {i}: degenerate fp32 mask"
        agree = (mask_a == mask_b).float().mean().item()
        assert agree >= 0.99, f"click {i}: {agree:.4f} of pixels agree"


def test_feature_cache_gives_identical_results(weights, image):
    net = load_fbrs(weights, "cpu")
    cached, predictor, _ = _session(net, image, cache_size=3, undo_redo=True)
    plain, plain_predictor, _ = _session(net, image, cache_size=0, undo_redo=True)
    assert predictor.feature_cache.hits >= 1  # the redo reused the features
    assert plain_predictor.feature_cache.hits == 0
    for a, b in zip(cached, plain, strict=True):
        assert torch.equal(a, b)


def test_batchnorm_folding_keeps_outputs(weights, image):
    plain, folded = read_fbrs(weights, "cpu"), load_fbrs(weights, "cpu")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.head.modules())
    maps = torch.rand(1, 2, *image.shape[-2:], generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = plain.internals(image, maps), folded.internals(image, maps)
    for name in ("features", "logits"):
        ref, got = getattr(a, name), getattr(b, name)
        err = (ref - got).abs().max().item() / max(1.0, ref.abs().max().item())
        assert err <= 1e-4, f"{name}: relative error {err:.2e}"
    assert (torch.sigmoid(a.logits) - torch.sigmoid(b.logits)).abs().max() <= 1e-4


def _full_frame_objective(net, feats, pos, neg, x):
    """spec §6 step 4 on the full frames, as written (the reference for the gathered loss)."""
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    s, b = xt[:FEATURE_CH].view(1, -1, 1, 1), xt[FEATURE_CH:].view(1, -1, 1, 1)
    prob = torch.sigmoid(net.logits_from_features(feats * (1 + s) + b, tuple(pos.shape[-2:])))
    f = (((1 - prob) * pos) ** 2).sum() / (pos.sum() + 1e-5)
    f = f + ((prob * neg) ** 2).sum() / (neg.sum() + 1e-5)
    f = f + 1e-3 * ((s**2).sum() + 10 * (b**2).sum())
    f.backward()
    return float(f.detach()), xt.grad.double().numpy()


def test_click_square_loss_equals_the_full_frame_loss(weights, image):
    net = load_fbrs(weights, "cpu")
    h, w = image.shape[-2:]
    with torch.no_grad():
        feats = net.features(image.expand(2, -1, -1, -1), torch.rand(2, 2, h, w))
    clicks = [Click(54.0, 74.0, True), Click(104.0, 174.0, False)]
    squares = [click_squares([c], h, w) for c in clicks]
    pos = torch.from_numpy(np.stack([squares[0][0], squares[1][0]])[:, None])
    neg = torch.from_numpy(np.stack([squares[1][1], squares[0][1]])[:, None])
    # No early stops, so every evaluation differentiates.
    settings = BRSSettings(prob_thresh=-1.0, min_iou_diff=-1.0)
    x = np.random.default_rng(0).normal(0, 0.05, 2 * FEATURE_CH).astype(np.float32)
    f, g = BRSObjective(net, feats, pos, neg, settings)(x)
    f_ref, g_ref = _full_frame_objective(net, feats, pos, neg, x)
    assert f == pytest.approx(f_ref, rel=1e-5)
    assert np.linalg.norm(g - g_ref) <= 1e-4 * np.linalg.norm(g_ref)
    assert np.linalg.norm(g_ref) > 0


def test_first_click_preview_is_the_unflipped_prediction_and_changes_nothing(weights, image):
    """A session's first click hands over the image's own prediction before the mirrored copy
    runs (model/fbrs/predictor.py); the clicks' results are those of a session without it."""
    net = load_fbrs(weights, "cpu")
    plain, _, _ = _session(net, image)

    chain = TransformChain(zoom=ZoomIn(target_size=160))
    predictor = FBRSPredictor(net, transforms=chain)
    ctrl = ClickController(net, predictor)
    previews: list[list[torch.Tensor]] = []
    got: list[torch.Tensor] = []
    with torch.inference_mode():
        for x, y, positive in CLICKS:
            seen: list[torch.Tensor] = []
            ctrl.interact(image, x, y, positive, preview=seen.append)
            previews.append(seen)
            got.append(ctrl.prob.clone())
        # the expected preview, computed directly: the network on the unflipped frame (no
        # resize or zoom at this size on a first click) with the first click's maps
        x, y, positive = CLICKS[0]
        points = points_tensor([[Click(y, x, positive)]], NET_CLICKS_LIMIT)
        maps = click_maps(points, *image.shape[-2:], NORM_RADIUS)
        expected = torch.sigmoid(net(image, maps)) > 0.5
    # the same results: the first click's two copies ran one by one (float rounding apart,
    # the same mask), and the later clicks start from the same state
    assert float((got[0] - plain[0]).abs().max()) < 1e-5
    assert torch.equal(got[0] > 0.5, plain[0] > 0.5)
    assert torch.equal(got[1], plain[1]) and torch.equal(got[2], plain[2])
    assert [len(p) for p in previews] == [1, 0, 0]  # BRS clicks have no early result
    early = previews[0][0]
    assert early.shape == plain[0].shape
    assert torch.equal(early.bool(), expected)
    assert 0.02 < early.mean() < 0.98  # a real mask, not an empty or full one
    # it is the unflipped copy alone: the flip average differs somewhere
    assert not torch.equal(early.bool(), plain[0] > 0.5)


def test_without_the_flip_one_copy_runs_and_the_first_click_is_the_unflipped_prediction(
    weights, image
):
    """flip=False (the --fast default, f-BRS's with_flip=False): a batch of one copy for the
    backbone and BRS, and the first click's mask is the network on the frame itself."""
    net = load_fbrs(weights, "cpu")
    chain = TransformChain(zoom=ZoomIn(target_size=160), flip=False)
    predictor = FBRSPredictor(net, transforms=chain)
    ctrl = ClickController(net, predictor)
    seen: list[torch.Tensor] = []
    with torch.inference_mode():
        first = ctrl.interact(image, *CLICKS[0], preview=seen.append)
        assert predictor.last.net_logits.shape[0] == 1
        assert len(predictor.last.net_clicks) == 1
        x, y, positive = CLICKS[0]
        points = points_tensor([[Click(y, x, positive)]], NET_CLICKS_LIMIT)
        maps = click_maps(points, *image.shape[-2:], NORM_RADIUS)
        expected = torch.sigmoid(net(image, maps)) > 0.5
        flipped_first, _, _ = _session(net, image)
        second = ctrl.interact(image, *CLICKS[1])
        brs = predictor.last.brs
    assert seen == []  # nothing to show early: the one copy is the result
    assert torch.equal(first.bool(), expected)
    assert 0.02 < first.mean() < 0.98
    assert not torch.equal(first.bool(), flipped_first[0] > 0.5)  # the flip average differs
    # the BRS click optimised on the one copy and answers both clicks' squares
    assert brs is not None and brs.logits.shape[0] == 1 and len(brs.evaluations) >= 1
    assert predictor.last.pos_mask_sum.shape == (1,)
    assert second.shape == first.shape


@pytest.mark.parametrize(
    ("fast", "click_flip", "flip"),
    [(False, None, True), (True, None, False), (True, True, True), (False, False, False)],
)
def test_the_click_flip_follows_the_mode_unless_chosen(weights, tmp_path, fast, click_flip, flip):
    """--click_flip auto: on in fp32 (MiVOS' setting, parity), off with --fast; on/off win."""
    from workflow.open_project import StartupOptions, _click_controller  # noqa: PLC0415

    opts = StartupOptions(
        video=None, images=str(tmp_path), masks=None, output=None, num_objects=1,
        resolution=480, mem_freq=5, fast=fast, prop_model="p", fusion_model="f",
        s2m_model=None, fbrs_model=str(weights), click_flip=click_flip,
    )  # fmt: skip
    controller, reason = _click_controller(opts, torch.device("cpu"))
    assert reason == "" and controller is not None
    assert controller.predictor.transforms.flip is flip


@pytest.mark.parametrize(("flag", "want"), [([], None), (["--click_flip", "off"], False),
                                            (["--click_flip", "on"], True)])  # fmt: skip
def test_the_gui_flag_reaches_the_startup_options(tmp_path, flag, want):
    from gui.app import options_from_args  # noqa: PLC0415
    from interactive_gui import build_parser  # noqa: PLC0415

    args = build_parser().parse_args(["--images", str(tmp_path), "--fast", *flag])
    assert options_from_args(args).click_flip is want
