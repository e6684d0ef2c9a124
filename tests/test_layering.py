"""The import contract: gui -> {interact, inference_core} -> model -> util; Qt only in gui."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = ["util", "model", "inference_core", "interact", "gui"]  # low -> high
PEERS = {frozenset({"inference_core", "interact"})}  # siblings: must not import each other
QT = {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}
# Command-line entry points that compose both siblings, as the GUI controller does.
ENTRY_POINTS = {REPO / "inference_core" / "replay.py"}


def _imports(package: str):
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module.split(".")[0]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]


def test_layers_point_one_way():
    for package in ORDER:
        for path, top in _imports(package):
            if top in ORDER and not (path in ENTRY_POINTS and top == "interact"):
                assert ORDER.index(top) <= ORDER.index(package), f"{path} imports {top}"
                assert frozenset({package, top}) not in PEERS, f"{path} imports peer {top}"
            if package != "gui":
                assert top not in QT, f"{path} imports Qt"
            assert top not in {"evaluation", "training"}, f"{path} imports {top} (nothing may)"


def test_no_hard_coded_cuda():
    pattern = re.compile(r"\.cuda\(|['\"]cuda:0['\"]")
    for package in ORDER:
        for path in (REPO / package).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                assert not pattern.search(line), f"{path}:{n}: device must be a parameter"
