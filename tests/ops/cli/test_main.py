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
