"""The front end's own checks, run from the Python test suite (``make test``).

Vitest unit tests of the data-shaping code (``web/tests/``), ESLint with no warnings and
``vue-tsc`` against the generated API types. Skipped when ``web/node_modules`` is missing
(``gridlake setup`` installs it with ``npm ci`` when Node.js is there).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from infra.settings import REPO_ROOT

pytestmark = pytest.mark.slow

WEB = REPO_ROOT / "web"


@pytest.mark.parametrize("script", ["test", "lint", "typecheck"])
def test_front_end_check_passes(script: str) -> None:
    if shutil.which("npm") is None or not (WEB / "node_modules").is_dir():
        pytest.skip("npm or web/node_modules missing (gridlake setup runs npm ci)")
    done = subprocess.run(["npm", "run", "--silent", script], cwd=WEB,  # noqa: S607
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
