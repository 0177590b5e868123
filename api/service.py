"""Running the API service: gunicorn with uvicorn workers, foreground or detached.

``gunicorn api.main:app -k uvicorn_worker.UvicornWorker -w <api.workers>``: gunicorn
supervises the workers (restarts a crashed one); each worker is a uvicorn event loop with
its own connections and caches.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack import process

log = logging.getLogger(__name__)

MARKER = "api.main:app"
WORKER_CLASS = "uvicorn_worker.UvicornWorker"


def command(settings: GridLakeSettings) -> list[str]:
    """The server command line (gunicorn; workers, address from settings)."""
    return [
        sys.executable, "-m", "gunicorn", MARKER,
        "--worker-class", WORKER_CLASS,
        "--workers", str(settings.api.workers),
        "--bind", f"{settings.api.host}:{settings.api.port}",
        "--log-level", "warning",
        # uvicorn believes X-Forwarded-For from loopback unless told otherwise: only the
        # configured proxies (none by default), the same rule as api.context.client_address
        "--forwarded-allow-ips", ",".join(settings.api.trusted_proxies),
        # Server-Sent Events keep a request open: no worker timeout on idle streams.
        "--timeout", "0", "--graceful-timeout", "10",
    ]


def metrics_dir(settings: GridLakeSettings) -> Path:
    """An empty folder for the workers' shared metric files.

    prometheus_client's multiprocess mode (:mod:`api.metrics`); emptied here, before the
    server starts, so counters of an earlier run do not add up with this one's.
    """
    path = settings.run / "prometheus-api"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def pid_file(settings: GridLakeSettings) -> Path:
    """Pid file of the detached API."""
    return settings.run / "api.pid"


def log_file(settings: GridLakeSettings) -> Path:
    """Log file of the detached API."""
    return settings.logs / "api.log"


def start(settings: GridLakeSettings, timeout_s: float = 60.0,
          env: dict[str, str] | None = None) -> int:
    """Start the API detached and wait until it answers its health endpoint.

    Args:
        settings: Settings (address, workers, home).
        timeout_s: How long to wait for the health endpoint.
        env: Extra environment of the server (settings of another run).

    Raises:
        TimeoutError: Not answering in time (the message quotes its log).

    """
    pid = process.running_pid(pid_file(settings))
    if pid is None:
        # `gridlake status` imports this module for the pid file alone: no web stack for it
        # lazy: api.metrics pulls in FastAPI, SQLAlchemy and the routes (seconds when busy)
        from api.metrics import MULTIPROC_ENV

        pid = process.launch(
            command(settings), name="api", marker=MARKER, log_file=log_file(settings),
            pid_file=pid_file(settings), cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "GRIDLAKE_LOG_JSON": "1",
                 MULTIPROC_ENV: str(metrics_dir(settings)), **(env or {})},
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


def admin_password(settings: GridLakeSettings) -> str | None:
    """The bootstrap administrator's password: from settings or the generated file."""
    if settings.api.admin_password is not None:
        return settings.api.admin_password.get_secret_value()
    path = settings.run / "api-admin-password"
    return path.read_text().strip() if path.exists() else None


def admin_headers(settings: GridLakeSettings, base_url: str | None = None) -> dict[str, str]:
    """Authorization header of the bootstrap administrator (benchmarks, demo scripts).

    Raises:
        RuntimeError: No administrator password is known or the login fails.

    """
    password = admin_password(settings)
    if password is None:
        raise RuntimeError("no administrator password: set GRIDLAKE_API__ADMIN_PASSWORD or "
                           "start the API once (it writes home/run/api-admin-password)")
    body = json.dumps({"username": settings.api.admin_username, "password": password})
    req = urllib.request.Request(  # noqa: S310 - own service
        f"{base_url or settings.api.base_url}/api/v1/auth/login", data=body.encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - own service
        token = json.loads(resp.read())["access_token"]
    return {"Authorization": f"Bearer {token}"}
