"""Prerequisite checks of the local stack; each failure is a one-line fix-it message."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from infra.settings import GridLakeSettings
from infra.stack.errors import PrerequisiteError

MIN_JAVA = 17
MIN_FREE_BYTES = 2 * 1024**3
PYTHON = (3, 11)


@dataclass(frozen=True)
class PortClaim:
    """A TCP port a managed service will listen on.

    Attributes:
        host: Address to bind.
        port: Port number.
        service: Service that owns the port.
        purpose: What the port is for ("bootstrap", "web UI"...).
        setting: The ``GRIDLAKE_*`` variable that changes it.

    """

    host: str
    port: int
    service: str
    purpose: str
    setting: str


def java_executable(settings: GridLakeSettings) -> str:
    """Path of the ``java`` to run (``settings.java_home`` first, then ``PATH``).

    Raises:
        PrerequisiteError: When no java is found.

    """
    if settings.java_home is not None:
        candidate = Path(settings.java_home).expanduser() / "bin" / "java"
        if candidate.exists():
            return str(candidate)
        raise PrerequisiteError(
            f"GRIDLAKE_JAVA_HOME={settings.java_home} has no bin/java: "
            "point it at a JDK 17+ or unset it"
        )
    found = shutil.which("java")
    if not found:
        raise PrerequisiteError(
            "java not found: install a JDK 17+ (e.g. `apt-get install -y openjdk-17-jdk-headless`) "
            "or set GRIDLAKE_JAVA_HOME"
        )
    return found


def java_major(java: str) -> int:
    """Major version of the JVM at ``java`` (8 for 1.8)."""
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise PrerequisiteError(f"cannot read the version of {java}: is it a working JDK?")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def check_java(settings: GridLakeSettings) -> str:
    """Ensure a JDK 17+ is available; return its ``java`` path."""
    java = java_executable(settings)
    major = java_major(java)
    if major < MIN_JAVA:
        raise PrerequisiteError(
            f"{java} is Java {major}; GridLake needs Java {MIN_JAVA}+: install "
            "openjdk-17-jdk-headless or set GRIDLAKE_JAVA_HOME to a JDK 17+"
        )
    return java


def check_python(version: tuple[int, int] | None = None) -> None:
    """Ensure this interpreter is Python 3.11 (the version PyFlink/PySpark are pinned for)."""
    actual = version or (sys.version_info.major, sys.version_info.minor)
    if tuple(actual) != PYTHON:
        raise PrerequisiteError(
            f"Python {actual[0]}.{actual[1]} found; GridLake needs Python 3.11: "
            "recreate the venv with python3.11"
        )


def check_mvn() -> str:
    """Ensure Maven is on ``PATH``; return its path."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise PrerequisiteError(
            "mvn not found: install Maven 3.8+ (`apt-get install -y maven`) to resolve the jars"
        )
    return mvn


def check_disk(path: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Ensure at least ``min_free`` bytes are free on the file system holding ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < min_free:
        raise PrerequisiteError(
            f"only {free / 1024**3:.1f} GiB free under {path}; GridLake needs "
            f"{min_free / 1024**3:.0f} GiB: free some space or set GRIDLAKE_HOME elsewhere"
        )


def listener_pids(port: int) -> set[int] | None:
    """Pids listening on TCP ``port``; ``None`` when they cannot be determined."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    return {
        c.pid if c.pid is not None else -1
        for c in conns
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


def _connectable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _describe(pid: int) -> str:
    if pid < 0:
        return "another process"
    try:
        return f"pid {pid} ({psutil.Process(pid).name()})"
    except psutil.Error:
        return f"pid {pid}"


def check_ports(claims: Iterable[PortClaim], owned_pids: Iterable[int] = ()) -> None:
    """Ensure no port in ``claims`` is taken by a process GridLake did not start.

    Args:
        claims: Ports the services about to start will bind.
        owned_pids: Pids of GridLake-started processes (their ports are fine).

    Raises:
        PrerequisiteError: Naming the port, who holds it and the setting to change.

    """
    owned = set(owned_pids)
    for claim in claims:
        pids = listener_pids(claim.port)
        if pids is None:
            taken = _connectable(claim.host, claim.port)
            holder = "another process"
        else:
            foreign = pids - owned
            taken = bool(foreign)
            holder = _describe(min(foreign)) if foreign else ""
        if taken:
            raise PrerequisiteError(
                f"port {claim.port} ({claim.service} {claim.purpose}) is taken by {holder}: "
                f"stop it, or change {claim.setting}"
            )
