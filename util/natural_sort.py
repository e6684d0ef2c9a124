"""Natural sort: "frame2" before "frame10"."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key splitting digit runs into integers, case-insensitive otherwise."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name))
