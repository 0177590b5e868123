"""The install extras: ``pip install "gridlake[ml]"`` must not pull the JVM platform.

The installed distribution's metadata (``importlib.metadata``) comes from whichever
checkout was installed editable, not necessarily this one, so the extras are read from
this checkout's ``pyproject.toml``, the source of that metadata.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PLATFORM_ONLY = ("apache-flink", "pyspark", "py4j", "kafka-python", "redis", "hiredis")


def _project() -> dict[str, object]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def _resolved(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """An extra's packages, following ``gridlake[...]`` self-references."""
    out: set[str] = set()
    for req in extras[extra]:
        m = re.fullmatch(r"gridlake\[([a-z,]+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _resolved(sub, extras)
        else:
            out |= _names([req])
    return out


def test_platform_packages_only_in_the_platform_extra() -> None:
    project = _project()
    core = _names(project["dependencies"])  # type: ignore[arg-type]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    assert not core & set(PLATFORM_ONLY)
    ml = core | _resolved("ml", extras)
    assert "torch" in ml and not ml & set(PLATFORM_ONLY)
    assert set(PLATFORM_ONLY) <= _resolved("platform", extras)
    holders = {name for name in extras if _resolved(name, extras) & {"apache-flink", "pyspark"}}
    assert holders <= {"platform", "all"}
    assert _resolved("all", extras) >= _resolved("platform", extras) | _resolved("ml", extras)


def test_core_has_what_the_ml_file_path_imports() -> None:
    core = _names(_project()["dependencies"])  # type: ignore[arg-type]
    assert {"numpy", "pandas", "pyarrow", "pydantic", "pydantic-settings", "typer", "rich",
            "httpx", "psutil"} <= core


def test_lock_holds_the_platform() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text()
    pinned = set(re.findall(r"^([a-z0-9_.-]+)==", lock, re.MULTILINE))
    assert {"apache-flink", "pyspark", "kafka-python", "redis"} <= pinned
    assert "torch" not in pinned  # bootstrap installs it from ../shared/wheels
