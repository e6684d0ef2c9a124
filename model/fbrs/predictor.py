"""One f-BRS prediction: transforms, click encoding, features, BRS, inverse transforms (spec §5-6).

The predictor keeps what carries from one click to the next (transform states, the BRS vector,
the cached features); `get_state`/`set_state` snapshot all of it but the feature cache, which
the original does not restore on undo either (it is recomputed while there are <= 8 clicks).

A session's first click runs the backbone on the whole frame for the image and its mirror (the
original's flip test-time augmentation), most of a click's time. With a `preview` callback the
two copies run one after the other (the same total time, the same numbers) and the image's own
prediction is handed over as soon as it exists, about halfway, before the flip average.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.fbrs.brs import BRSObjective, BRSResult, BRSSettings, apply_vector, refine, zero_vector
from model.fbrs.clicks import NET_CLICKS_LIMIT, Click, click_squares, points_tensor
from model.fbrs.distance_maps import click_maps
from model.fbrs.network import FBRSNetwork
from model.fbrs.transforms import Box, ChainState, TransformChain

Preview = Callable[[torch.Tensor], None]  # receives an early probability (1,1,H,W)

NORM_RADIUS = 260  # MiVOS' distance-map radius (pixels of the network input)
FEATURE_CACHE_SIZE = 3  # F is 2x160xH/4xW/4 float32: <= 28 MB each at 444x800


class FeatureCache:
    """The last few F tensors of one session, keyed by what fully determines them.

    F depends on the network input (the session's frame through the zoom crop and the size
    limit) and on the click points: the click maps enter the network at its first layer
    (early fusion), so no part of the backbone is shared between two different click sets.
    What repeats exactly is a click set on a crop seen before: the redo after an undo
    (FrameEditor re-runs the click), or the same click again. A hit returns the very tensor
    computed then, so results are identical to recomputing. Cleared with the session.
    """

    def __init__(self, size: int = FEATURE_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0

    def clear(self) -> None:
        self._entries.clear()

    def get(self, key: Hashable) -> torch.Tensor | None:
        feats = self._entries.get(key)
        if feats is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return feats

    def put(self, key: Hashable, feats: torch.Tensor) -> None:
        if self.size <= 0:
            return
        self._entries[key] = feats
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class PredictorState:
    """Everything undo restores: transform states and the BRS vector."""

    transforms: ChainState
    brs_x: np.ndarray


@dataclass(frozen=True)
class PredictionRecord:
    """What one prediction did, for diagnostics and parity checks."""

    net_input_hw: tuple[int, int]
    # [original, flipped] click lists in network coordinates ([original] without the flip)
    net_clicks: list[list[Click]]
    net_points: torch.Tensor  # (B,2P,2) the distance maps' points; B = 2 with the flip, else 1
    pos_mask_sum: np.ndarray  # (B,) BRS click-square pixels per copy
    neg_mask_sum: np.ndarray
    net_logits: torch.Tensor  # (B,1,h',w')
    features_recomputed: bool
    brs_x0: np.ndarray | None  # L-BFGS start (None when no optimisation ran)
    brs: BRSResult | None
    zoom_roi: Box | None
    limit_roi: Box | None


class FBRSPredictor:
    """f-BRS-B predictor with MiVOS' transforms and settings."""

    def __init__(
        self,
        net: FBRSNetwork,
        settings: BRSSettings | None = None,
        norm_radius: float = NORM_RADIUS,
        optimize_after_n_clicks: int = 1,
        net_clicks_limit: int = NET_CLICKS_LIMIT,
        transforms: TransformChain | None = None,
        feature_cache_size: int = FEATURE_CACHE_SIZE,
        flip: bool = True,
    ) -> None:
        """Defaults are MiVOS' settings; tests may pass a smaller zoom or a shorter L-BFGS.
        feature_cache_size 0 turns the feature cache off (tests compare with it on).
        flip=False: no mirrored copy (TransformChain; ignored when `transforms` is given)."""
        self.net = net
        self.settings = settings or BRSSettings()
        self.norm_radius = norm_radius
        self.optimize_after_n_clicks = optimize_after_n_clicks
        self.net_clicks_limit = net_clicks_limit
        self.transforms = transforms or TransformChain(flip=flip)
        self.brs_x = zero_vector()
        self._features: torch.Tensor | None = None
        self.feature_cache = FeatureCache(feature_cache_size)
        self.last: PredictionRecord | None = None

    def reset(self) -> None:
        """Start a new session: no ROI, no previous mask, zero BRS vector, no cached features."""
        self.transforms.reset()
        self.brs_x = zero_vector()
        self._features = None
        self.feature_cache.clear()  # keys are only meaningful for one session's frame
        self.last = None

    def get_state(self) -> PredictorState:
        return PredictorState(self.transforms.get_state(), self.brs_x.copy())

    def set_state(self, state: PredictorState) -> None:
        self.transforms.set_state(state.transforms)
        self.brs_x = state.brs_x.copy()

    def _click_squares(self, lists: list[list[Click]], size, like: torch.Tensor):
        maps = [click_squares(cl, *size) for cl in lists]
        with torch.inference_mode(False):  # the BRS loss saves them for backward
            pos = torch.from_numpy(np.stack([p for p, _ in maps])[:, None]).to(like.device)
            neg = torch.from_numpy(np.stack([n for _, n in maps])[:, None]).to(like.device)
        return pos, neg

    def _compute_features(
        self, batch: torch.Tensor, points: torch.Tensor, size, preview: Preview | None = None
    ) -> torch.Tensor:
        """F (B,160,h/4,w/4) float32 for the network input batch (B,3,h,w) and points (B,2P,2).

        preview: called with the unflipped copy's probability (1,1,H,W) once its features
        exist, before the mirrored copy is computed (only when the features are computed here,
        not taken from the cache)."""
        key = (self.transforms.zoom.input_roi, size, points.cpu().numpy().tobytes())
        feats = self.feature_cache.get(key)
        if feats is None:
            maps = click_maps(points, *size, self.norm_radius)
            with torch.no_grad():
                if preview is None or batch.shape[0] < 2:
                    feats = self.net.features(batch, maps)
                else:
                    # Items of a batch never interact (BN uses running statistics): the two
                    # copies one by one give the batch's numbers (tests/test_click_speed.py).
                    first = self.net.features(batch[:1], maps[:1])
                    preview(self._preview_prob(first, size))
                    feats = torch.cat([first, self.net.features(batch[1:], maps[1:])])
            self.feature_cache.put(key, feats)
        return feats

    def _preview_prob(self, features: torch.Tensor, size) -> torch.Tensor:
        """The unflipped copy's probability (1,1,H,W) on the frame, leaving every state as is.

        Its logits stand in for both copies of the flip average (the mirror of the mirrored
        logits is the copy itself), so the inverse transforms run unchanged on a snapshot."""
        x = torch.as_tensor(self.brs_x, dtype=torch.float32, device=features.device)
        logits = apply_vector(self.net, features, x, size).float()
        state = self.transforms.get_state()
        try:
            return self.transforms.inverse(torch.cat([logits, logits.flip(-1)]))
        finally:
            self.transforms.set_state(state)

    def predict(
        self,
        image: torch.Tensor,
        clicks: Sequence[Click],
        replay: Sequence[np.ndarray] | None = None,
        preview: Preview | None = None,
    ) -> torch.Tensor:
        """image (1,3,H,W) normalised padded frame, all clicks of the session in its
        coordinates -> probability (1,1,H,W). `replay`: recorded L-BFGS points to evaluate
        instead of letting the optimiser choose (parity tests). `preview`: called once with an
        early probability (1,1,H,W) when this click is a plain forward whose features are not
        cached (a session's first click): the unflipped copy's, before the flip average."""
        batch, lists, changed = self.transforms.forward(image, clicks)
        size = (int(batch.shape[-2]), int(batch.shape[-1]))
        points = points_tensor(lists, self.net_clicks_limit, device=image.device)
        recompute = self._features is None or changed or len(clicks) <= self.net_clicks_limit
        plain_forward = len(clicks) <= self.optimize_after_n_clicks
        if recompute:
            early = preview if plain_forward else None  # BRS clicks have nothing to show early
            self._features = self._compute_features(batch, points, size, early)
        pos, neg = self._click_squares(lists, size, image)
        brs, x0 = None, None
        if not plain_forward:
            x0 = self.brs_x
            objective = BRSObjective(self.net, self._features, pos, neg, self.settings)
            brs = refine(objective, x0, replay)
            logits, self.brs_x = brs.logits, brs.x
        else:
            with torch.no_grad():
                x = torch.as_tensor(self.brs_x, dtype=torch.float32, device=image.device)
                logits = apply_vector(self.net, self._features, x, size).float()
        prob = self.transforms.inverse(logits)
        self.last = PredictionRecord(
            net_input_hw=size,
            net_clicks=lists,
            net_points=points,
            pos_mask_sum=pos.flatten(1).sum(1).cpu().numpy(),
            neg_mask_sum=neg.flatten(1).sum(1).cpu().numpy(),
            net_logits=logits,
            features_recomputed=recompute,
            brs_x0=None if x0 is None else np.asarray(x0, dtype=np.float64),
            brs=brs,
            zoom_roi=self.transforms.zoom.state.roi,
            limit_roi=self.transforms.limit.state.roi,
        )
        return prob
