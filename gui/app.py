"""From parsed arguments to a shown main window."""

from __future__ import annotations

import argparse
import logging

from gui.busy import run_busy
from gui.console import ConsoleLogHandler
from gui.controller import AppController
from gui.first_run import ask_to_download, downloadable, fetch_missing
from gui.main_window import MainWindow
from gui.output_folder import ask_for_other_folder
from model.weights import find_weight, weights_dir
from util.device import pick_device
from workflow.open_project import MissingWeights, OutputFolderError, StartupOptions, open_project


def options_from_args(args: argparse.Namespace) -> StartupOptions:
    # A weight flag that is given wins; the others are looked for in the weights folder
    # (--weights_dir, else $MIVOS_WEIGHTS, else the per-user one), then in ./saves.
    folder = getattr(args, "weights_dir", None)

    def weight(given: str | None, filename: str) -> str:
        return given or str(find_weight(filename, folder))

    return StartupOptions(
        video=args.video, images=args.images, masks=args.masks, output=args.output,
        num_objects=args.num_objects, resolution=args.resolution, mem_freq=args.mem_freq,
        fast=args.fast, prop_model=weight(args.prop_model, "stcn.pth"),
        fusion_model=weight(args.fusion_model, "fusion_stcn.pth"),
        s2m_model=weight(args.s2m_model, "s2m.pth"), fbrs_model=weight(args.fbrs_model, "fbrs.pth"),
        full_masks=getattr(args, "full_masks", False), fps=getattr(args, "fps", None),
        click_flip={"on": True, "off": False}.get(getattr(args, "click_flip", "auto")),
        weights_dir=str(weights_dir(folder)),
    )  # fmt: skip


def open_main_window(args: argparse.Namespace) -> MainWindow:
    device = pick_device(args.device)
    opts = options_from_args(args)
    # Warnings while opening (a mask resized, frames converted) reach the console panel.
    handler = ConsoleLogHandler()
    logging.getLogger().addHandler(handler)
    try:
        project, has_s2m = run_busy(
            "Opening the video and loading the networks...", lambda: open_project(opts, device)
        )
    except BaseException:
        logging.getLogger().removeHandler(handler)
        raise
    has_clicks = project.editor.clicker is not None
    controller = AppController(project, s2m_available=has_s2m, clicks_available=has_clicks)
    window = MainWindow(controller, title=f"MiVOS - {project.output}")
    window.log_handler = handler
    window.console.log(f"Device: {device}. Masks are saved to {project.output}")
    handler.attach(window.console)
    awaiting = project.awaiting()
    if awaiting:
        window.console.log(
            f"{len(awaiting)} annotated frame(s) not propagated yet: press Propagate to run them."
        )
    return window


def start(args: argparse.Namespace) -> MainWindow:
    """open_main_window; an unusable output folder is an offer to choose another one.

    Raises the start-up error when the person declines.
    """
    while True:
        try:
            return _start_with_weights(args)
        except OutputFolderError as exc:
            folder = ask_for_other_folder(None, str(exc), "Nothing has been changed yet.")
            if folder is None:
                raise
            args.output = folder


def _start_with_weights(args: argparse.Namespace) -> MainWindow:
    """open_main_window, offering to download missing weights first (--download: no question).

    One dialog lists every missing file (the optional s2m.pth and fbrs.pth too) and where it
    goes; a progress dialog follows; failures are one line per file with a link and the place
    to put it, and may be retried. Raises MissingWeights when the download is declined (or
    cannot be offered), WeightsNotDownloaded when required files could not be fetched.
    """
    try:
        return open_main_window(args)
    except MissingWeights as exc:
        files = downloadable([path for path, _ in exc.missing], exc.optional)
        if files is None or not (args.download or ask_to_download(None, files)):
            raise
        fetch_missing(None, files)
    return open_main_window(args)
