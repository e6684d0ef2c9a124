"""Asking the person for another folder when masks cannot be saved where they were going."""

from __future__ import annotations

from PyQt5.QtWidgets import QFileDialog, QMessageBox, QWidget


def ask_for_other_folder(parent: QWidget | None, problem: str, kept: str) -> str | None:
    """Explain `problem`, offer to choose another folder; the chosen folder or None.

    kept: what happens to the work meanwhile (e.g. "Your masks are kept in memory.").
    """
    answer = QMessageBox.warning(
        parent, "Masks cannot be saved",
        f"{problem}\n\n{kept} Choose another folder to save them?",
        QMessageBox.Yes | QMessageBox.No,
    )  # fmt: skip
    if answer != QMessageBox.Yes:
        return None
    return QFileDialog.getExistingDirectory(parent, "Save masks to") or None
