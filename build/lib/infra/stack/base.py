"""The service abstraction shared by Kafka, the HDFS daemons and Redis."""

from __future__ import annotations

import json
import logging
import signal
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.settings import GridLakeSettings
from infra.stack import process
from infra.stack.errors import ServiceNotReadyError
from infra.stack.prereq import PortClaim

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """Result of a health check.

    Attributes:
        healthy: Whether the service answers as expected.
        detail: One short line on what was observed.

    """

    healthy: bool
    detail: str


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``gridlake status``.

    Attributes:
        name: Service name ("kafka", "namenode", "datanode-slave1", "redis").
        role: Cluster role ("broker+controller", "master", "slave1", "cache").
        address: Where clients reach it.
        pid: Pid of the GridLake-started process, if any.
        managed: Whether GridLake starts it (False: an external service).
        healthy: Whether it answered its health check.
        detail: What the health check saw.

    """

    name: str
    role: str
    address: str
    pid: int | None
    managed: bool
    healthy: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def http_json(url: str, timeout_s: float = 2.0) -> Any:
    """GET ``url`` and decode its JSON body.

    Raises:
        OSError: On connection errors and HTTP errors (``urllib.error.URLError``).
        ValueError: When the body is not JSON.

    """
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310
        return json.loads(resp.read().decode("utf-8"))


def java_opts_common(name: str, marker: str) -> list[str]:
    """JVM options every GridLake JVM gets (headless, IPv4, the ownership marker)."""
    return [
        marker,
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        f"-Dgridlake.name={name}",
    ]


class Service(ABC):
    """One process of the local stack (or the address of an external one).

    Subclasses define the command line, configuration files and health check.
    """

    #: Service name; also the stem of its pid and log files.
    name: str = ""
    #: Cluster role shown in ``status``.
    role: str = ""
    #: Seconds ``wait_ready`` waits by default.
    ready_timeout_s: float = 120.0
    #: Seconds between SIGTERM and SIGKILL on stop.
    stop_timeout_s: float = 30.0

    def __init__(self, settings: GridLakeSettings) -> None:
        self.settings = settings

    # -- layout ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The service's own data directory."""
        return self.settings.data / self.name

    @property
    def conf_dir(self) -> Path:
        """Generated configuration files."""
        return self.settings.run / "conf" / self.name

    @property
    def log_file(self) -> Path:
        """Receives the process's stdout and stderr."""
        return self.settings.logs / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        """Pid record of the GridLake-started process."""
        return self.settings.run / f"{self.name}.pid"

    @property
    def marker(self) -> str:
        """Command-line fragment that identifies this service of this GridLake home."""
        return f"-Dgridlake.service={self.name}@{self.settings.home}"

    # -- to implement ---------------------------------------------------------------------
    @property
    @abstractmethod
    def managed(self) -> bool:
        """Whether GridLake starts this service (else it only checks the address)."""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients reach the service."""

    @abstractmethod
    def ports(self) -> list[PortClaim]:
        """Ports the process binds (checked for foreign holders before starting)."""

    @abstractmethod
    def health(self) -> Health:
        """Quick check (a few seconds at most) that the service answers."""

    @abstractmethod
    def command(self, java: str) -> list[str]:
        """Command line of the process."""

    def prepare(self, java: str) -> None:  # noqa: B027 - optional hook
        """Write configuration and initialise storage (idempotent)."""

    # -- lifecycle ------------------------------------------------------------------------
    def pid(self) -> int | None:
        """Pid of the running GridLake-started process, if any."""
        return process.running_pid(self.pid_file)

    def status(self) -> ServiceStatus:
        """Return the current status row."""
        pid = self.pid() if self.managed else None
        if self.managed and pid is None:
            health = Health(False, "not running")
        else:
            health = self.health()
        return ServiceStatus(
            self.name, self.role, self.address, pid, self.managed, health.healthy, health.detail
        )

    def start(self, java: str) -> int:
        """Prepare and launch the process (the caller checked it is not running)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.prepare(java)
        return process.launch(
            self.command(java),
            name=self.name,
            marker=self.marker,
            log_file=self.log_file,
            pid_file=self.pid_file,
            cwd=self.data_dir,
        )

    def wait_ready(self, timeout_s: float | None = None) -> Health:
        """Poll the health check until it passes.

        Raises:
            ServiceNotReadyError: On timeout or when the process exits, quoting its log.

        """
        alive = (lambda: self.pid() is not None) if self.managed else None
        ok, detail = process.poll_until(
            lambda: self._health_tuple(),
            timeout_s=timeout_s or self.ready_timeout_s,
            alive=alive,
        )
        if not ok:
            raise ServiceNotReadyError(
                self.name, detail, process.tail(self.log_file) if self.managed else []
            )
        logger.info("%s ready: %s", self.name, detail)
        return Health(True, detail)

    def _health_tuple(self) -> tuple[bool, str]:
        h = self.health()
        return h.healthy, h.detail

    def stop(self) -> bool:
        """Stop the GridLake-started process (never a foreign one)."""
        return process.stop(self.pid_file, name=self.name, timeout_s=self.stop_timeout_s)

    def signal(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the GridLake-started process; True if delivered."""
        return process.signal_owned(self.pid_file, sig)


def url_error_text(err: Exception) -> str:
    """Short text of a connection error."""
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return str(err) or type(err).__name__
