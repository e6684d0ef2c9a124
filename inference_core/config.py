"""Inference settings, fixed for the life of a session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceConfig:
    """mem_freq: a propagated frame joins the pass's memory every `mem_freq` frames.

    top_k: memory entries read per query position. fast: the networks' fast precision mode
    (model/precision.py: bf16 + channels-last on CPUs with bf16 units, fp16 autocast on CUDA;
    >= 99 % of mask pixels equal to fp32); False = fp32, within the original's parity.
    prob_dtype: precision of stored soft probabilities ("float16" halves RAM; "float32" is exact).
    feature_cache / image_cache: frames whose encoder outputs / normalised images stay on device.
    max_pass_memory: at most this many propagated frames in a pass's memory (the oldest leave
    first); None = the original's unbounded rule (interacted frames + every mem_freq-th frame).
    reinteraction: what a frame interacted with again does to the certain memory. "replace": its
    new key/value replaces the old one, so a correction takes full effect and the certain memory
    holds at most one entry per frame (bounded however long the session). "append": the original
    MiVOS rule (every round adds an entry; the old mask keeps half the say) - replay and the DAVIS
    evaluation use it to reproduce the published numbers.
    """

    mem_freq: int = 5
    top_k: int = 20
    fast: bool = False
    prob_dtype: str = "float16"
    feature_cache: int = 4
    image_cache: int = 4
    max_pass_memory: int | None = None
    result_ram_budget: int = 1 << 30  # bytes of results kept in RAM before memory-mapping
    reinteraction: str = "replace"

    def __post_init__(self) -> None:
        if self.mem_freq < 1:
            raise ValueError(f"mem_freq must be >= 1, got {self.mem_freq}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.max_pass_memory is not None and self.max_pass_memory < 1:
            raise ValueError(f"max_pass_memory must be >= 1, got {self.max_pass_memory}")
        if self.reinteraction not in ("replace", "append"):
            raise ValueError(f"reinteraction must be replace or append, got {self.reinteraction!r}")
        if self.prob_dtype not in ("float16", "float32"):
            raise ValueError(f"prob_dtype must be float16 or float32, got {self.prob_dtype!r}")
