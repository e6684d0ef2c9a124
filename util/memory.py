"""Memory readouts for the GUI's status line and the benchmarks."""

from __future__ import annotations

import psutil
import torch


def process_rss_bytes() -> int:
    """Resident memory of this process."""
    return psutil.Process().memory_info().rss


def memory_summary(device: torch.device) -> str:
    """'RAM 1.2 GB' plus the accelerator's allocated memory where there is one."""
    text = f"RAM {process_rss_bytes() / 2**30:.2f} GB"
    if device.type == "cuda" and torch.cuda.is_available():
        text += f", GPU {torch.cuda.memory_allocated(device) / 2**30:.2f} GB"
    return text
