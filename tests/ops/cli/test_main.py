from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from infra.settings import REPO_ROOT
from ops.cli.main import GROUPS, app, load_group


@pytest.mark.parametrize("name", list(GROUPS))
def test_listed_help_is_the_group_modules_own(name: str) -> None:
    assert load_group(name).help.strip().splitlines()[0] == GROUPS[name].help


def test_help_lists_every_command_without_importing_the_groups() -> None:
    probe = (
        "import sys; from typer.testing import CliRunner; from ops.cli.main import app, GROUPS\n"
        "out = CliRunner().invoke(app, ['--help'], terminal_width=200).output\n"
        "print(sorted(g.module for g in GROUPS.values() if g.module in sys.modules))\n"
        "print(all(n in out for n in GROUPS), 'setup' in out, 'run' in out)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=60)
    assert run.stdout.splitlines()[-2:] == ["[]", "True True True"], run.stdout + run.stderr


def test_a_group_runs_when_named() -> None:
    result = CliRunner().invoke(app, ["tables", "list"])
    assert result.exit_code == 0, result.output
    assert "ods_meter_reading" in result.output


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(app, ["nosuch"])
    assert result.exit_code == 2
    assert "No such command" in result.output


#: Modules no ``--help`` may import: each costs from a tenth of a second to seconds.
HEAVY = ("pandas", "pyarrow", "numpy", "torch", "pyspark", "pyflink", "fastapi", "httpx",
         "kafka", "redis", "sqlalchemy", "psutil", "uvicorn", "pydantic_settings",
         "rich.markdown", "rich.syntax")


@pytest.mark.parametrize("args", [[], *([name] for name in GROUPS)],
                         ids=lambda a: " ".join(a) or "gridlake")
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['gridlake', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('ops.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, *args, "--help"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert "Usage:" in run.stdout, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "[]", run.stdout.splitlines()[-1]
