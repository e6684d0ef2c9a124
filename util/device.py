"""Choosing the compute device once, and the per-thread inference context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch


def pick_device(preference: str | None = "auto") -> torch.device:
    """Resolve 'auto' | 'cuda' | 'mps' | 'cpu' (or None = auto) to an available torch.device.

    Raises ValueError naming the device when an explicit request cannot be honoured.
    """
    pref = (preference or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} requested but CUDA is not available")
    if pref == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' requested but MPS is not available")
    if pref not in {"cpu", "mps"} and not pref.startswith("cuda"):
        raise ValueError(f"unknown device {preference!r}; use auto, cuda, mps or cpu")
    return torch.device(pref)


@contextmanager
def inference_context(device: torch.device, autocast: torch.dtype | None = None) -> Iterator[None]:
    """inference_mode plus autocast to `autocast` (e.g. torch.float16 on CUDA, the fast mode's
    choice in model/precision.py) when given; both are thread-local.

    Enter it in the thread that computes (the worker), not around the GUI event loop.
    """
    ctx = torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()
    with torch.inference_mode(), ctx:
        yield
