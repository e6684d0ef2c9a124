"""The import contract between packages, with no exemptions by file name.

    gui -> workflow -> {interact, inference_core} -> model -> util

interact/ and inference_core/ are siblings (neither imports the other). Qt only in gui/.
evaluation/ sits beside gui/ (it drives the workflow); training/ needs only the networks;
examples/ (the bundled clip's generator) needs only util/;
nothing imports evaluation/ or training/. A package's `__main__.py` is a program, not a library
module: it may use the workflow layer (`python -m inference_core` is the headless command), and
no module may import a `__main__`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BELOW_WORKFLOW = {"inference_core", "interact", "model", "util"}
ALLOWED = {
    "util": set(),
    "model": {"util"},
    "inference_core": {"model", "util"},
    "interact": {"model", "util"},
    "workflow": {*BELOW_WORKFLOW, "examples"},  # the bundled clip is rendered on first use
    "gui": {"workflow", *BELOW_WORKFLOW},
    "evaluation": {"workflow", *BELOW_WORKFLOW},
    "training": {"model", "util"},
    "examples": {"util"},
}
PROGRAM_EXTRA = {"workflow"}  # what a package's __main__.py may use besides its package's arrows
QT = {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}


def packages(root: Path) -> list[str]:
    """Every top-level folder of `root` holding Python modules (tests/ and bench/ aside)."""
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name not in {"tests", "bench"} and any(p.glob("*.py"))
    )


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def violations(root: Path, allowed: dict[str, set[str]]) -> list[str]:
    """Every import in `root`'s packages that breaks the contract, as 'file: imports X'."""
    found = []
    names = packages(root)
    for package in names:
        if package not in allowed:
            found.append(f"{package}/: a package without a place in the contract")
            continue
        for path in (root / package).rglob("*.py"):
            may = set(allowed[package]) | {package}
            if path.name == "__main__.py":
                may |= PROGRAM_EXTRA
            for module in _imports(path):
                top = module.split(".")[0]
                rel = path.relative_to(root)
                if module.split(".")[-1] == "__main__":
                    found.append(f"{rel}: imports the program {module}")
                if top in names and top not in may:
                    found.append(f"{rel}: imports {top}")
                if top in QT and package != "gui":
                    found.append(f"{rel}: imports Qt ({top})")
    return found


def test_every_package_imports_only_along_the_allowed_arrows():
    assert violations(REPO, ALLOWED) == []


def test_the_check_catches_upward_sideways_and_unknown_imports(tmp_path):
    layout = {
        "util/a.py": "import numpy\n",
        "model/net.py": "from util.a import x\n",
        "interact/tool.py": "from inference_core.session import Session\n",  # sideways
        "inference_core/core.py": "import workflow.project\n",  # upward
        "workflow/w.py": "from interact.tool import y\nfrom PyQt5 import QtCore\n",  # Qt
        "gui/g.py": "from inference_core.__main__ import main\n",  # a program
        "plugins/p.py": "import util\n",  # not in the contract
        "inference_core/__main__.py": "from workflow.w import run\n",  # allowed: a program
    }
    for rel, text in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = violations(tmp_path, ALLOWED)
    assert sorted(found) == sorted(
        [
            "interact/tool.py: imports inference_core",
            "inference_core/core.py: imports workflow",
            "workflow/w.py: imports Qt (PyQt5)",
            "gui/g.py: imports the program inference_core.__main__",
            "plugins/: a package without a place in the contract",
        ]
    )


def test_no_hard_coded_cuda():
    pattern = re.compile(r"\.cuda\(|['\"]cuda:0['\"]")
    for package in packages(REPO):
        for path in (REPO / package).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                assert not pattern.search(line), f"{path}:{n}: device must be a parameter"
