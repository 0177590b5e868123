"""Jars of the JVM side, resolved by Maven (``infra/jvm``) into ``settings.jars/<module>/``.

Modules: ``kafka``, ``hadoop`` and ``spark`` (dependency-only poms under ``infra/jvm``) and
``flink``, the streaming jobs' own connectors, whose sources live next to the jobs
(``jobs/streaming/connectors``); the parent pom ``infra/jvm/pom.xml`` lists all four.

``ensure_jars`` rebuilds a module's folder only when it is missing or stale: each
folder holds a stamp with the hash of the parent pom, the module's pom and the module's
own sources (the connectors, and the serving copy's Lua scripts their jar packages), so
editing a version, a connector or a script triggers a rebuild.
Maven runs offline first (fast, no network) and falls back to online resolution when the
local repository lacks something.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack.errors import StackError

logger = logging.getLogger(__name__)

JVM_DIR = REPO_ROOT / "infra" / "jvm"
PARENT_POM = JVM_DIR / "pom.xml"
STAMP = ".gridlake-stamp"
DEFAULT_MODULES: tuple[str, ...] = ("kafka", "hadoop", "flink", "spark")
#: Folder of each module's pom, where it is not ``infra/jvm/<module>``.
MODULE_DIRS: dict[str, Path] = {"flink": REPO_ROOT / "jobs" / "streaming" / "connectors"}
#: Folders outside a module's own that its build reads: the connector jar packages the
#: serving copy's Lua scripts (``infra/serving_store.py``) as resources.
MODULE_EXTRA_SOURCES: dict[str, tuple[Path, ...]] = {
    "flink": (REPO_ROOT / "infra" / "serving_lua",),
}


class JarsError(StackError):
    """Resolving jars failed; the message is one actionable line."""


def module_dir_of(module: str) -> Path:
    """The folder of a JVM module (its pom and sources)."""
    return MODULE_DIRS.get(module, JVM_DIR / module)


def module_pom(module: str) -> Path:
    """Return the pom of a JVM module."""
    return module_dir_of(module) / "pom.xml"


def available_modules(modules: Sequence[str] = DEFAULT_MODULES) -> list[str]:
    """Return the requested modules that exist (have a pom)."""
    return [m for m in modules if module_pom(m).is_file()]


def module_sources(module: str) -> list[Path]:
    """The module's source files (``src/``, its extra folders), in byte order of their paths."""
    roots = (module_dir_of(module) / "src", *MODULE_EXTRA_SOURCES.get(module, ()))
    return sorted((p for root in roots for p in root.rglob("*") if p.is_file()),
                  key=lambda p: str(p).encode())


def pom_hash(module: str) -> str:
    """Hash of the parent pom, the module's pom and the module's sources, in that order."""
    digest = hashlib.sha256()
    for f in (PARENT_POM, module_pom(module), *module_sources(module)):
        digest.update(f.read_bytes())
    return digest.hexdigest()


def module_dir(settings: GridLakeSettings, module: str) -> Path:
    """Output folder of a module's jars."""
    return settings.jars / module


def is_fresh(settings: GridLakeSettings, module: str) -> bool:
    """Whether the module's jar folder exists and matches its pom."""
    stamp = module_dir(settings, module) / STAMP
    try:
        return stamp.read_text().strip() == pom_hash(module)
    except OSError:
        return False


def stale_modules(
    settings: GridLakeSettings, modules: Sequence[str] = DEFAULT_MODULES
) -> list[str]:
    """Available modules whose jar folder is missing or stale."""
    return [m for m in available_modules(modules) if not is_fresh(settings, m)]


def _require_tools() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise JarsError(
            "mvn not found: install Maven 3.8+ (`apt-get install -y maven`), "
            "then run `gridlake setup`"
        )
    if not shutil.which("java"):
        raise JarsError(
            "java not found: install a JDK 17+ (`apt-get install -y openjdk-17-jdk-headless`), "
            "then run `gridlake setup`"
        )
    return mvn


def _reactor_complete() -> bool:
    """Whether every module the parent pom lists exists (else build modules one by one)."""
    return all(module_pom(m).is_file() for m in DEFAULT_MODULES)


def _mvn_commands(mvn: str, settings: GridLakeSettings, modules: list[str]) -> list[list[str]]:
    common = ["-q", "-B", "package", f"-Dgridlake.jars={settings.jars}"]
    if _reactor_complete():
        selected = ",".join(os.path.relpath(module_dir_of(m), JVM_DIR) for m in modules)
        return [[mvn, "-f", str(PARENT_POM), "-pl", selected, "-am", *common]]
    # The parent lists modules another part of the project has not written yet: a child
    # pom still builds alone (its parent is read through relativePath).
    return [[mvn, "-f", str(module_pom(m)), *common] for m in modules]


def _run_maven(cmds: list[list[str]], log_file: Path) -> None:
    local_repo = Path.home() / ".m2" / "repository"
    attempts = [True, False] if local_repo.is_dir() else [False]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    for offline in attempts:
        failed = None
        with log_file.open("w") as log:
            for cmd in cmds:
                full = [cmd[0], "-o", *cmd[1:]] if offline else cmd
                log.write("$ " + " ".join(full) + "\n")
                log.flush()
                rc = subprocess.run(
                    full, stdout=log, stderr=subprocess.STDOUT, cwd=JVM_DIR, check=False
                ).returncode
                if rc != 0:
                    failed = full
                    break
        if failed is None:
            return
        if offline:
            logger.info("offline Maven build incomplete; resolving online")
    errors = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines()]
    first = next((ln for ln in errors if ln.startswith("[ERROR]")), "")
    raise JarsError(f"Maven build failed ({first[:200] or 'see log'}); full log: {log_file}")


def ensure_jars(
    settings: GridLakeSettings,
    modules: Sequence[str] = DEFAULT_MODULES,
    *,
    force: bool = False,
) -> list[str]:
    """Resolve the jars of ``modules`` into ``settings.jars/<module>/`` when missing or stale.

    Modules without a pom are skipped.

    Args:
        settings: GridLake settings (``settings.jars`` is the output root).
        modules: JVM modules to make available.
        force: Rebuild even when the stamps are fresh.

    Returns:
        The modules that were (re)built.

    Raises:
        JarsError: When mvn/java are missing or the build fails.

    """
    todo = available_modules(modules) if force else stale_modules(settings, modules)
    if not todo:
        return []
    mvn = _require_tools()
    for m in todo:
        # Start from an empty folder so jars of an older version do not linger.
        shutil.rmtree(module_dir(settings, m), ignore_errors=True)
    logger.info("resolving jars with Maven: %s", ", ".join(todo))
    _run_maven(_mvn_commands(mvn, settings, todo), settings.logs / "maven.log")
    for m in todo:
        out = module_dir(settings, m)
        if not any(out.glob("*.jar")):
            raise JarsError(f"Maven produced no jars for module {m} in {out}: check its pom")
        (out / STAMP).write_text(pom_hash(m) + "\n")
    return todo


def classpath(settings: GridLakeSettings, module: str) -> str:
    """Java class path (``:``-joined jars) of a resolved module.

    Raises:
        JarsError: When the module's jars are not resolved yet.

    """
    jars = sorted(module_dir(settings, module).glob("*.jar"))
    if not jars:
        raise JarsError(
            f"no jars for {module} in {module_dir(settings, module)}: run `gridlake setup`"
        )
    return ":".join(str(j) for j in jars)
