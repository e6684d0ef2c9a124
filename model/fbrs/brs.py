"""f-BRS-B: refine a per-channel scale and bias of the 160-channel features (clicks_fbrs.md §6).

The optimised vector is [s (160), b (160)]; the features become F * (1 + s) + b for both flip
copies. SciPy's L-BFGS-B minimises the click loss plus a regulariser; the lowest-loss evaluation
wins. For parity tests the optimiser's evaluation points can be *replayed*: a free-running
optimiser diverges on float noise (spec §9), so `refine(..., replay=points)` evaluates the
objective at recorded points, in order, while SciPy still decides iterations and termination.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from model.fbrs.network import FEATURE_CH, FBRSNetwork

log = logging.getLogger(__name__)
_EPS = 1e-5


@dataclass(frozen=True)
class BRSSettings:
    """MiVOS' f-BRS-B settings (clicks_fbrs.md §4)."""

    prob_thresh: float = 0.5
    min_iou_diff: float = 1e-3
    reg_weight: float = 1e-3
    reg_bias_weight: float = 10.0
    lbfgs_m: int = 20
    lbfgs_factr: float = 0.0
    lbfgs_pgtol: float = 1e-8
    lbfgs_maxfun: int = 20
    lbfgs_maxiter: int = 40


@dataclass(frozen=True)
class Evaluation:
    """One objective evaluation: where, the value, the gradient handed to L-BFGS, and why."""

    x: np.ndarray  # (320,) float64
    f: float
    g: np.ndarray  # (320,) float64, all zeros at an early stop
    grad_zero: bool
    fmax: tuple[float, float]  # max((1-p)*POS), max(p*NEG)
    iou: float  # mean IoU with the previous mask, -1 when none was computed


@dataclass
class BRSResult:
    logits: torch.Tensor  # (B,1,h,w) of the lowest-loss evaluation
    x: np.ndarray  # the final vector, kept for the next click
    evaluations: list[Evaluation] = field(default_factory=list)
    best_index: int = -1
    n_iterations: int = -1
    message: str = ""


def zero_vector() -> np.ndarray:
    """The BRS vector at the start of a session (float32 zeros, as the original keeps it)."""
    return np.zeros(2 * FEATURE_CH, dtype=np.float32)


def apply_vector(
    net: FBRSNetwork, features: torch.Tensor, x: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Logits (B,1,*size) for features F scaled and shifted by x = [s, b]."""
    s = x[:FEATURE_CH].to(features.dtype).view(1, -1, 1, 1)
    b = x[FEATURE_CH:].to(features.dtype).view(1, -1, 1, 1)
    return net.logits_from_features(features * (1 + s) + b, size)


class BRSObjective:
    """The loss of spec §6 step 4 with its early stops (step 5) and best tracking (step 6)."""

    def __init__(
        self,
        net: FBRSNetwork,
        features: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        settings: BRSSettings,
    ) -> None:
        """features (B,160,h/4,w/4); pos/neg (B,1,h,w) click squares on the same device
        (B = 2 with the flip, else 1)."""
        self.net = net
        # Tensors made under inference mode cannot be saved for backward: take normal copies.
        with torch.inference_mode(False):
            self.features, self.pos, self.neg = (
                t.clone() if t.is_inference() else t for t in (features, pos, neg)
            )
        self.size = (int(pos.shape[-2]), int(pos.shape[-1]))
        # The loss only sees the click squares (a few hundred pixels): gather those once, so
        # each evaluation's loss and its backward work on them instead of on 2 full frames.
        with torch.inference_mode(False):
            self._pos_idx, self._pos_w, self._pos_total = _support(self.pos)
            self._neg_idx, self._neg_w, self._neg_total = _support(self.neg)
        self.settings = settings
        self.evaluations: list[Evaluation] = []
        self.best_f = float("inf")
        self.best_logits: torch.Tensor | None = None
        self.best_index = -1
        self._prev_mask: torch.Tensor | None = None

    def _iou_with_previous(self, mask: torch.Tensor) -> float:
        if self._prev_mask is None:
            return -1.0
        inter = (mask & self._prev_mask).flatten(1).sum(1)
        union = (mask | self._prev_mask).flatten(1).sum(1)
        keep = union > 0  # copies with nothing in either mask say nothing about convergence
        return float((inter[keep] / union[keep]).double().mean()) if keep.any() else float("nan")

    def _click_terms(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1-p)*POS and p*NEG at the click-square pixels only (elsewhere they are 0)."""
        flat = logits.reshape(-1)
        pos_diff = (1 - torch.sigmoid(flat[self._pos_idx])) * self._pos_w
        neg_diff = torch.sigmoid(flat[self._neg_idx]) * self._neg_w
        return pos_diff, neg_diff

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """f and its float64 gradient at x (320,); zeros at an early stop (spec §6 step 5)."""
        st = self.settings
        # Gradients are needed even when the caller runs in inference mode (the GUI does).
        with torch.inference_mode(False), torch.enable_grad():
            xt = torch.tensor(np.asarray(x), dtype=torch.float32, device=self.features.device)
            xt.requires_grad_(True)
            logits = apply_vector(self.net, self.features, xt, self.size)
            pos_diff, neg_diff = self._click_terms(logits)
            loss = (pos_diff**2).sum() / (self._pos_total + _EPS)
            loss = loss + (neg_diff**2).sum() / (self._neg_total + _EPS)
            s, b = xt[:FEATURE_CH], xt[FEATURE_CH:]
            reg = st.reg_weight * (torch.sum(s**2) + st.reg_bias_weight * torch.sum(b**2))
            f = loss + reg
            fmax = (_max_or_zero(pos_diff), _max_or_zero(neg_diff))
            stop = fmax[0] < st.prob_thresh and fmax[1] < st.prob_thresh
            iou = -1.0
            if not stop:
                mask = torch.sigmoid(logits.detach()) > st.prob_thresh
                iou = self._iou_with_previous(mask)
                stop = iou > 1 - st.min_iou_diff
                if not stop:
                    self._prev_mask = mask
            if stop:
                grad = np.zeros(2 * FEATURE_CH, dtype=np.float64)
            else:
                # Only x's gradient is wanted: autograd.grad skips accumulating into .grad.
                (g,) = torch.autograd.grad(f, xt)
                grad = g.detach().cpu().double().numpy()
        value = float(f.detach())
        if self.best_logits is None or value < self.best_f:
            self.best_f, self.best_logits = value, logits.detach()
            self.best_index = len(self.evaluations)
        x64 = np.asarray(x, dtype=np.float64).copy()
        self.evaluations.append(Evaluation(x64, value, grad, stop, fmax, iou))
        return value, grad


def _support(squares: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """squares (B,1,h,w) -> flat indices of its non-zero pixels, their values, and the sum of
    all pixels (float32, summed over the full map as the loss's denominator always was)."""
    flat = squares.reshape(-1)
    idx = torch.nonzero(flat).squeeze(1)
    return idx, flat[idx], squares.sum()


def _max_or_zero(values: torch.Tensor) -> float:
    # The full-frame maximum includes the zeros outside the squares (and every term is >= 0).
    return float(values.detach().abs().max()) if values.numel() else 0.0


class _ReplayExhausted(Exception):
    """L-BFGS asked for more evaluations than were recorded."""


class _Replayer:
    def __init__(self, objective: BRSObjective, points: Sequence[np.ndarray]) -> None:
        self.objective = objective
        self.points = [np.asarray(p, dtype=np.float64) for p in points]
        self.used = 0

    def __call__(self, proposed: np.ndarray) -> tuple[float, np.ndarray]:
        if self.used >= len(self.points):
            raise _ReplayExhausted
        point = self.points[self.used]
        self.used += 1
        return self.objective(point)


def refine(
    objective: BRSObjective,
    x0: np.ndarray,
    replay: Sequence[np.ndarray] | None = None,
) -> BRSResult:
    """Run L-BFGS-B from x0 (or replay recorded points) and return the lowest-loss logits."""
    st = objective.settings
    iterations = [0]

    def count(_xk: np.ndarray) -> None:
        iterations[0] += 1

    # imported here: SciPy's optimiser costs ~0.25 s of every start-up (the headless command,
    # the GUI) and is only needed at the second click of a session
    from scipy.optimize import fmin_l_bfgs_b  # noqa: PLC0415

    func = _Replayer(objective, replay) if replay else objective
    message = ""
    x = None
    try:
        x, _, info = fmin_l_bfgs_b(
            func,
            x0,  # float32 zeros at a session start: SciPy then evaluates float32 points
            m=st.lbfgs_m,
            factr=st.lbfgs_factr,
            pgtol=st.lbfgs_pgtol,
            maxfun=st.lbfgs_maxfun,
            maxiter=st.lbfgs_maxiter,
            callback=count,
        )
        message = str(info.get("task", ""))
    except _ReplayExhausted:
        message = "REPLAY: L-BFGS asked for more points than were recorded"
    if isinstance(func, _Replayer):
        if func.used < len(func.points):
            log.warning("L-BFGS stopped after %d of %d replayed points", func.used, len(replay))
        for point in func.points[func.used :]:
            objective(point)  # still evaluate every recorded point, in order
        # The recorded points are what the objective saw; the last one is the final iterate.
        x = func.points[-1]
    return BRSResult(
        logits=objective.best_logits,
        x=np.asarray(x, dtype=np.float64),
        evaluations=objective.evaluations,
        best_index=objective.best_index,
        n_iterations=iterations[0],
        message=message,
    )
