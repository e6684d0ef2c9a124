"""Keep freed memory for reuse instead of returning it to the OS (glibc's malloc, Linux).

PyTorch's CPU tensors come from malloc. glibc serves large blocks with mmap and gives them
back at free: its threshold starts at 128 KB and grows only up to 32 MB, and freed memory at
the top of the heap beyond twice that threshold is returned too. A propagated frame allocates
and frees tens of maps of 10-30 MB at 480p, so every frame faulted ~19,000 fresh 4 KB pages
back in (~78 MB; /usr/bin/time's minor faults, bench/speed_child.py: 1.18 M after 12 frames
against 1.03 M after 4). In an alternated A/B of that child, 1-object frames stayed within
noise and 3-object ones went from 1.58/1.62 to 1.48/1.40 s, their S2M call from 2.63/2.46 to
2.28/2.29 s. With the mmap
threshold fixed at glibc's maximum (32 MB) and up to 512 MB of free heap kept, blocks up to
32 MB are reused from the heap: no per-frame faults (0.72 M after both 4 and 12 frames). Blocks
over 32 MB (several objects' maps) are still mapped per call; glibc refuses a higher threshold.

The cost is memory: up to TRIM_THRESHOLD of freed heap stays in the process (the peak RSS of a
propagation with 3 objects stayed within noise, ~2.9 GB). jemalloc or tcmalloc (what Intel's
PyTorch guides preload for the same reason) would do this too, but they must be preloaded
before the interpreter starts and are not installed by pip.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 512 * 2**20

# A user's own malloc settings (environment variables glibc reads at start-up) win.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold to 32 MB and its trim threshold to 512 MB for this process,
    once (later calls return the first result). Returns whether the settings are in effect:
    False off Linux/glibc, when mallopt refuses them, or when the environment already sets
    malloc thresholds (MALLOC_*_ variables or a glibc.malloc tunable in GLIBC_TUNABLES).
    Never raises."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # absent in musl and other C libraries
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mmap first: setting either one stops glibc from adjusting both thresholds itself
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    if mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return False
    log.debug("malloc: mmap threshold 32 MB, trim threshold 512 MB")
    return True
