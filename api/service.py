"""Running the API service: foreground (``serve``) or detached (``start``/``stop``)."""

from __future__ import annotations

import logging
import sys
import time
import urllib.request
from pathlib import Path

from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack import process

log = logging.getLogger(__name__)

MARKER = "api.main:app"


def command(settings: GridLakeSettings) -> list[str]:
    """The server command line (uvicorn; workers from settings)."""
    return [
        sys.executable, "-m", "uvicorn", MARKER,
        "--host", settings.api.host, "--port", str(settings.api.port),
        "--workers", str(settings.api.workers), "--log-level", "warning",
    ]


def pid_file(settings: GridLakeSettings) -> Path:
    """Pid file of the detached API."""
    return settings.run / "api.pid"


def log_file(settings: GridLakeSettings) -> Path:
    """Log file of the detached API."""
    return settings.logs / "api.log"


def start(settings: GridLakeSettings, timeout_s: float = 60.0) -> int:
    """Start the API detached and wait until it answers its health endpoint.

    Raises:
        TimeoutError: Not answering in time (the message quotes its log).

    """
    pid = process.running_pid(pid_file(settings))
    if pid is None:
        pid = process.launch(
            command(settings), name="api", marker=MARKER, log_file=log_file(settings),
            pid_file=pid_file(settings), cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "GRIDLAKE_LOG_JSON": "1"},
        )
    url = f"{settings.api.base_url}/api/v1/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - own service
                if resp.status == 200:
                    return pid
        except OSError:
            if process.running_pid(pid_file(settings)) is None:
                break
        time.sleep(0.2)
    tail = "\n".join(process.tail(log_file(settings)))
    raise TimeoutError(f"API not answering at {url}; log tail:\n{tail}")


def stop(settings: GridLakeSettings) -> bool:
    """Stop the detached API; return whether it was running."""
    return process.stop(pid_file(settings), name="api")
