"""Natural sort: "frame2" before "frame10"."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int | str, ...], str]:
    """Sort key: digit runs compare as integers, the rest case-insensitively.

    re.split with a capturing group alternates text, digits, text..., so the parity of the
    position (not str.isdigit, which also accepts "²") says which parts are numbers, and parts
    at the same position always have the same type. The name itself breaks ties ("f01" vs "f1",
    "A" vs "a") so the order never depends on the order the file system lists files in.
    """
    parts = _DIGITS.split(name)
    key = tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts))
    return key, name
