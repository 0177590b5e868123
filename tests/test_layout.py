"""The layout stays true: import contracts, no hidden function-local imports, tests mirror.

The floors (README "Layout") are checked by import-linter with the contracts in
``pyproject.toml``; these tests run it, so ``make test`` (and CI) fails on a new import
that climbs a floor.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from infra.settings import REPO_ROOT

PACKAGES = ("lakehouse", "infra", "jobs", "api", "ml", "mock_devices", "ops")
#: A function-local import of a project module must say why, on its line or in a comment
#: right above its block of imports: only to keep a heavy optional dependency (torch, the
#: ``ml`` extra) out of a command that does not need it.
LAZY_MARK = "# lazy:"


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def _local_project_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found: dict[int, str] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.split(".")[0] in PACKAGES for n in names):
                found[node.lineno] = ast.unparse(node)
    return sorted(found.items())


def _explained(lines: list[str], lineno: int) -> bool:
    """Whether the import at ``lineno`` (1-based) or a comment above its block says why."""
    i = lineno - 1
    if LAZY_MARK in lines[i]:
        return True
    while i > 0 and lines[i - 1].lstrip().startswith(("from ", "import ", ")", "    ")) \
            and not lines[i - 1].lstrip().startswith("#") and lines[i - 1].strip():
        i -= 1
        if LAZY_MARK in lines[i]:
            return True
    return i > 0 and LAZY_MARK in lines[i - 1]


def test_function_local_imports_of_project_modules_say_why() -> None:
    unexplained = []
    for path in _modules():
        lines = path.read_text().splitlines()
        for lineno, stmt in _local_project_imports(path):
            if not _explained(lines, lineno):
                unexplained.append(f"{path.relative_to(REPO_ROOT)}:{lineno}: {stmt}")
    assert not unexplained, (
        "function-local imports of project modules (move them to the module's top, or "
        f"say `{LAZY_MARK} <heavy dependency>` when they avoid one):\n" + "\n".join(unexplained)
    )


def test_the_checker_finds_a_local_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from infra.settings import load_settings\n"
                      "    import json\n    return load_settings\n")
    assert _local_project_imports(module) == [(4, "from infra.settings import load_settings")]
    lines = module.read_text().splitlines()
    assert not _explained(lines, 4)
    lines[3:3] = ["    # lazy: torch"]
    assert _explained(lines, 5)


def test_tests_mirror_the_packages() -> None:
    tests = REPO_ROOT / "tests"
    strays = [
        str(d.relative_to(tests)) for d in tests.rglob("*")
        if d.is_dir() and d.name != "__pycache__" and not d.relative_to(tests).parts[0] == "data"
        and not (REPO_ROOT / d.relative_to(tests)).is_dir()
    ]
    assert not strays, f"test folders with no package folder of the same path: {strays}"
