"""A video being segmented: interaction rounds, propagation both ways, fusion with old rounds.

Behaviour follows shared/spec/inference.md: a round commits one frame's probabilities (background
included) into the certain memory, then propagates forward and backward up to the nearest frames
already interacted with; frames strictly between two interacted frames are fused with the
previous result. H, W are padded sizes (multiples of 16).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from inference_core.config import InferenceConfig
from inference_core.feature_cache import FrameLRU
from inference_core.frames import FrameSource
from inference_core.memory_bank import MemoryBank
from inference_core.observer import FusionDetails, RoundObserver
from inference_core.results import ResultStore
from model.aggregate import aggregate_wbg
from model.build import Networks, networks_for
from model.normalize import normalize_frames
from model.stcn import KeyFeatures
from util.device import inference_context
from util.tensor_util import pad_amounts


class Session:
    """Owns the frames, the results and the certain memory of one video."""

    def __init__(
        self,
        nets: Networks,
        frames: FrameSource,
        num_objects: int,
        cfg: InferenceConfig | None = None,
        observer: RoundObserver | None = None,
        storage_dir: str | Path | None = None,
    ) -> None:
        """storage_dir: where results are memory-mapped once they outgrow
        cfg.result_ram_budget (default: a temporary folder; see result_storage.py)."""
        if num_objects < 1:
            raise ValueError(f"num_objects must be >= 1, got {num_objects}")
        self.cfg = cfg or InferenceConfig()
        self.nets = networks_for(nets, self.cfg.fast)
        self.frames = frames
        self.num_objects = num_objects
        self.observer = observer or RoundObserver()
        self.device = nets.device
        h, w = frames.size
        self.pad = pad_amounts(h, w)
        self.padded_size = (h + self.pad[2] + self.pad[3], w + self.pad[0] + self.pad[1])
        self.results = ResultStore(
            len(frames), self.padded_size, num_objects, self.pad, self.cfg.prob_dtype,
            storage_dir, self.cfg.result_ram_budget,
        )  # fmt: skip
        self.interacted: list[int] = []  # in round order; a frame may repeat
        self._certain_keys: torch.Tensor | None = None
        self._certain_values: torch.Tensor | None = None
        self._certain_frames: list[int] = []  # the frame of each certain-memory entry
        self._round_key: torch.Tensor | None = None  # k16 of the latest interacted frame
        self._pos_diff: torch.Tensor | None = None
        self._neg_diff: torch.Tensor | None = None
        self._previews: set[int] = set()
        self._images = FrameLRU(self.cfg.image_cache, self._load_image)
        self._features = FrameLRU(self.cfg.feature_cache, self._encode_key)

    # ---- inputs -------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def _load_image(self, t: int) -> torch.Tensor:
        image = normalize_frames(self.frames.get(t), self.device).unsqueeze(0)
        return torch.nn.functional.pad(image, self.pad)

    def image(self, t: int) -> torch.Tensor:
        """Normalised, padded frame t: (1, 3, H, W) on the session's device."""
        return self._images.get(t)

    def _encode_key(self, t: int) -> KeyFeatures:
        return self.nets.prop.encode_key(self.image(t))

    def features(self, t: int) -> KeyFeatures:
        return self._features.get(t)

    def _context(self):
        return inference_context(self.device, self.nets.precision.autocast)

    def _prob_tensor(self, t: int) -> torch.Tensor:
        return torch.from_numpy(self.results.prob(t)).unsqueeze(1).to(self.device)

    # ---- the update-only path -----------------------------------------------------------------
    def update_mask_only(self, t: int, prob: torch.Tensor | np.ndarray) -> None:
        """Show a frame's interaction result without propagating (soft results unchanged)."""
        prob = torch.as_tensor(prob).reshape(self.num_objects + 1, *self.padded_size)
        self.results.set_mask(t, prob.argmax(dim=0).to(torch.uint8).cpu().numpy())
        self._previews.add(t)

    # ---- a round ------------------------------------------------------------------------------
    def commit(self, t: int, prob: torch.Tensor | np.ndarray) -> None:
        """Make `prob` ((K+1,1,H,W) padded, background first) frame t's result and memorise it."""
        self._check_frame(t)
        with self._context():
            prob = torch.as_tensor(prob, dtype=torch.float32, device=self.device)
            prob = prob.reshape(self.num_objects + 1, 1, *self.padded_size)
            delta = prob - self._prob_tensor(t)
            self._pos_diff, self._neg_diff = delta.clamp(0, 1), (-delta).clamp(0, 1)
            self.results.set_prob(t, prob[:, 0].float().cpu().numpy())
            self._previews.discard(t)
            feats = self.features(t)
            value = self.nets.prop.encode_value(self.image(t), feats.f16, prob[1:])
            self._remember(t, feats.k16.unsqueeze(2), value)
            self._round_key = feats.k16.unsqueeze(2)
        self.interacted.append(t)
        self.observer.memory_written(t)

    def restore(self, t: int, prob: torch.Tensor | np.ndarray) -> None:
        """Put an annotation made in an earlier sitting back: result, certain memory, interacted.

        prob: (K+1, 1, H, W) padded, background first (usually one-hot from the saved mask).
        Unlike commit, no round starts (nothing is propagated, no fusion difference is kept):
        afterwards passes stop at t and fuse between t and the next round's frame, as they
        would have had the application never closed.
        """
        self._check_frame(t)
        with self._context():
            prob = torch.as_tensor(prob, dtype=torch.float32, device=self.device)
            prob = prob.reshape(self.num_objects + 1, 1, *self.padded_size)
            self.results.set_prob(t, prob[:, 0].float().cpu().numpy())
            self._previews.discard(t)
            feats = self.features(t)
            value = self.nets.prop.encode_value(self.image(t), feats.f16, prob[1:])
            self._remember(t, feats.k16.unsqueeze(2), value)
        if t not in self.interacted:
            self.interacted.append(t)

    def memory_frames(self) -> list[int]:
        """The frame of each certain-memory entry, in memory order."""
        return list(self._certain_frames)

    def _remember(self, t: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Put frame t's key/value into the certain memory (see InferenceConfig.reinteraction)."""
        if self.cfg.reinteraction == "replace" and t in self._certain_frames:
            slot = self._certain_frames.index(t)
            self._certain_keys[:, :, slot] = key[:, :, 0]
            self._certain_values[:, :, slot] = value[:, :, 0]
            return
        self._certain_frames.append(t)
        if self._certain_keys is None:
            self._certain_keys, self._certain_values = key, value
        else:
            self._certain_keys = torch.cat([self._certain_keys, key], dim=2)
            self._certain_values = torch.cat([self._certain_values, value], dim=2)

    def pass_frames(self, t: int, direction: int) -> range:
        """Frames one pass from t visits: up to (excluding) the nearest interacted frame."""
        if direction > 0:
            stop = min((f for f in self.interacted if f > t), default=self.num_frames)
        else:
            stop = max((f for f in self.interacted if f < t), default=-1)
        return range(t + direction, stop, direction)

    def propagation_order(self, t: int) -> list[int]:
        """Every frame propagate(t) will yield, in order (forward pass, then backward)."""
        return [*self.pass_frames(t, 1), *self.pass_frames(t, -1)]

    def propagate(self, t: int, cancel: threading.Event | None = None) -> Iterator[int]:
        """After commit(t): yield each frame index once its result is stored.

        Checks `cancel` between frames; frames finished before a cancel keep their new results.
        """
        if not self.interacted or self.interacted[-1] != t:
            raise RuntimeError(f"propagate({t}) needs commit({t}) first")
        try:
            for direction in (1, -1):
                yield from self._pass(t, direction, cancel)
        finally:
            # As in the original, a round ends with every index mask equal to its soft result.
            for f in sorted(self._previews):
                self.results.reset_mask_to_prob(f)
            self._previews.clear()

    def interact(self, t: int, prob: torch.Tensor | np.ndarray) -> None:
        """commit + propagate to completion (the headless path)."""
        self.commit(t, prob)
        for _ in self.propagate(t):
            pass

    def _pass(self, idx: int, direction: int, cancel: threading.Event | None) -> Iterator[int]:
        frames = self.pass_frames(idx, direction)
        if not frames:
            return
        tc = frames.stop  # the nearest interacted frame, or -1 / T past the ends
        fuse = 0 <= tc < self.num_frames
        end = frames[-1]
        writes = (abs(tc - idx) - 1) // self.cfg.mem_freq + 1
        cap = self.cfg.max_pass_memory
        bank = MemoryBank(
            self._certain_keys,
            self._certain_values,
            min(writes, cap) if cap else writes,
            rolling=bool(cap),
        )
        last = idx
        for ti in frames:
            if cancel is not None and cancel.is_set():
                return
            with self._context():
                feats = self.features(ti)
                out = aggregate_wbg(
                    self.nets.prop.segment(bank.keys, bank.values, feats, self.cfg.top_k)
                )
                if ti != end and abs(ti - last) >= self.cfg.mem_freq:
                    bank.add(
                        feats.k16, self.nets.prop.encode_value(self.image(ti), feats.f16, out[1:])
                    )
                    last = ti
                    self.observer.memory_written(ti)
                result = self._fuse(tc, idx, ti, out, feats.k16) if fuse else out
                self.results.set_prob(ti, result[:, 0].float().cpu().numpy())
            yield ti

    def _fuse(
        self, tc: int, tr: int, ti: int, curr: torch.Tensor, qk: torch.Tensor
    ) -> torch.Tensor:
        """Merge this round's propagation `curr` at ti with the previous result (spec section 7)."""
        span = abs(tc - tr)
        dist = torch.tensor([[abs(tc - ti) / span, abs(tr - ti) / span]], device=self.device)
        attention = self.nets.prop.get_attention(
            self._round_key, self._pos_diff, self._neg_diff, qk
        )
        prev = self._prob_tensor(ti)
        k = self.num_objects
        logits = self.nets.fusion(
            self.image(ti).expand(k, -1, -1, -1),
            prev[1:],
            curr[1:].to(prev.dtype),
            attention[1:],
            dist.expand(k, 2),
        )
        out = aggregate_wbg(torch.sigmoid(logits), keep_bg=True)
        self.observer.fused(FusionDetails(tc, tr, ti, dist, attention, logits, out))
        return out

    def memory_report(self) -> dict[str, int]:
        """Bytes held by each part that can grow during a session (for readouts and tests)."""

        def tensors(values) -> int:
            return sum(x.nbytes for v in values for x in (v if isinstance(v, tuple) else (v,)))

        certain = [x for x in (self._certain_keys, self._certain_values) if x is not None]
        return {
            "certain_memory": tensors(certain),
            "certain_entries": len(self._certain_frames),
            "image_cache": tensors(self._images.values()),
            "feature_cache": tensors(self._features.values()),
            "results_ram": self.results.storage.ram_bytes(),
        }

    def close(self) -> None:
        """Free a temporary memory-mapped result folder (results are gone afterwards)."""
        self.results.storage.close()

    def _check_frame(self, t: int) -> None:
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} is outside 0..{self.num_frames - 1}")
