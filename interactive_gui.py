"""MiVOS interactive video object segmentation: the desktop application.

python interactive_gui.py [--video PATH | --images DIR] [--masks DIR] [--output DIR] ...
"""

from __future__ import annotations

import argparse
import logging
import sys

from workflow.export import parse_fps


def _weight_default(name: str) -> str:
    """Help text: where a weight file is looked for when its flag is not given."""
    return f"default: WEIGHTS_DIR/{name}, else ./saves/{name}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Interactive video object segmentation (MiVOS/STCN).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="a video file (default: the bundled example)")
    src.add_argument("--images", help="a folder of frames: jpg/png/bmp/tif, natural sort")
    p.add_argument("--masks", help="import index PNGs (any size) from this folder / resume")
    p.add_argument("--output", help="where masks are saved (default: <input>_masks beside it)")
    p.add_argument(
        "--num_objects",
        type=int,
        help="objects are ids 1..N (default: the ids present in the masks, else 1)",
    )
    p.add_argument(
        "--full_masks",
        action="store_true",
        help="every --masks file is a full annotation of its frame (default: a file "
        "holding only objects absent from earlier annotations introduces them)",
    )
    p.add_argument("--resolution", type=int, default=480, help="shorter side; -1 = original")
    p.add_argument("--fps", type=parse_fps, default=None,
                   help="frame rate of the overlay video export (default: the video's own; "
                   "image folders: 25)")  # fmt: skip
    p.add_argument("--mem_freq", "--mem_every", dest="mem_freq", type=int, default=5,
                   help="a propagated frame joins memory every N frames")  # fmt: skip
    p.add_argument("--mem_profile", type=int, default=0, help="accepted for compatibility")
    p.add_argument("--fast", action="store_true",
                   help="faster, >= 99%% of mask pixels equal to the default fp32: bf16 on CPUs "
                   "with bf16 units, fp16 autocast on CUDA (see README, Speed)")  # fmt: skip
    p.add_argument("--click_flip", choices=("auto", "on", "off"), default="auto",
                   help="f-BRS clicks also predict the mirrored frame and average both (better "
                   "edges, twice the time of a session's first click); auto: on in the default "
                   "fp32, off with --fast")  # fmt: skip
    p.add_argument(
        "--no_amp",
        action="store_true",
        help="accepted for compatibility: fp32 is the default, --fast turns AMP on",
    )
    p.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    # Weight defaults are None: gui.app resolves them in the weights folder (model.weights),
    # which --weights_dir can change, so they cannot be fixed when the parser is built.
    p.add_argument("--weights_dir", metavar="WEIGHTS_DIR",
                   help="folder of the weight files, where missing ones are downloaded (default: "
                   "$MIVOS_WEIGHTS, else the per-user data folder's weights/, e.g. "
                   "~/.local/share/mivos-studio/weights)")  # fmt: skip
    p.add_argument("--prop_model", help="propagation weights; " + _weight_default("stcn.pth"))
    p.add_argument("--fusion_model",
                   help="fusion weights; " + _weight_default("fusion_stcn.pth"))  # fmt: skip
    p.add_argument("--s2m_model", help="scribble model; scribbles are off without it ("
                   + _weight_default("s2m.pth") + ")")  # fmt: skip
    p.add_argument("--download", action="store_true",
                   help="download missing weights without asking")  # fmt: skip
    p.add_argument("--fbrs_model", help="f-BRS click model; clicks are off without it ("
                   + _weight_default("fbrs.pth") + ")")  # fmt: skip
    return p


def say(text: str) -> None:
    """One line on the terminal about what start-up is doing (it can take seconds)."""
    print(f"MiVOS: {text}", file=sys.stderr, flush=True)


def show_splash(app):
    """A small window at once (PyTorch and the networks take seconds to load); Qt only, so it
    appears before anything heavy is imported. Returns the splash (close it when done)."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QColor, QPixmap
    from PyQt5.QtWidgets import QSplashScreen

    pixmap = QPixmap(420, 120)
    pixmap.fill(QColor(40, 44, 52))
    splash = QSplashScreen(pixmap)
    splash.showMessage(
        "MiVOS\n\nLoading PyTorch and the networks' code...",
        Qt.AlignCenter, QColor(235, 235, 235),
    )  # fmt: skip
    splash.show()
    app.processEvents()
    return splash


def _preload_triton() -> None:
    """Load Triton's LLVM (pulled in by PyTorch) before Qt starts on X11.

    Qt's xcb plugin loads the system's OpenGL (Mesa, built on its own LLVM); Triton's LLVM
    loaded after it crashed the process (a segmentation fault in triton/knobs.py under Xvfb).
    Loaded first, both coexist, and the splash still shows at once (this takes ~0.1 s).
    """
    try:
        import triton._C.libtriton  # noqa: F401
    except ImportError:  # no Triton (CPU-only or other platforms): nothing to order
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    _preload_triton()
    from PyQt5.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    splash = show_splash(app)
    say("loading PyTorch and the networks' code...")
    from gui.app import start  # the slow import: torch and everything built on it

    splash.close()  # the next step shows its own busy dialog, naming what it loads
    say("opening the video and loading the networks...")
    try:
        window = start(args)
    except Exception as exc:  # noqa: BLE001 - any start-up failure is one dialog, not a traceback
        logging.getLogger("mivos").debug("start-up failed", exc_info=True)
        if not getattr(exc, "shown_to_user", False):  # e.g. the download report was on screen
            QMessageBox.critical(None, "MiVOS cannot start", str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    window.show()
    say("ready.")
    return app.exec_()


if __name__ == "__main__":
    sys.exit(main())
