"""The shared shape of our command-line entry points: one line per expected error, no traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_command(
    run: Callable[[], int], expected: tuple[type[BaseException], ...] = (ValueError, OSError)
) -> int:
    """Call `run` with logging set up; an expected error prints `error: <message>` and exits 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return run()
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
