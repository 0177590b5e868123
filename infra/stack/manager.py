"""The local stack as a whole: setup, up, down and status, in dependency order."""

from __future__ import annotations

import fcntl
import logging
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from infra.jars import DEFAULT_MODULES, available_modules, ensure_jars, stale_modules
from infra.settings import GridLakeSettings
from infra.stack import prereq
from infra.stack.base import Service, ServiceStatus
from infra.stack.errors import StackError
from infra.stack.hdfs import DataNodeService, NameNodeService
from infra.stack.kafka import KafkaService
from infra.stack.nginx import NginxService, ensure_nginx, nginx_path
from infra.stack.redis import RedisService, ensure_redis_server, redis_server_path

logger = logging.getLogger(__name__)

#: Jar modules the services themselves run from.
STACK_MODULES: tuple[str, ...] = ("kafka", "hadoop")


@dataclass
class UpResult:
    """What ``Stack.up`` did.

    Attributes:
        started: Names of the services this call launched.
        statuses: Status of every service afterwards.
        topics_created: Kafka topics created by this call.
        seconds: Wall time of the call.

    """

    started: list[str] = field(default_factory=list)
    statuses: list[ServiceStatus] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Stack:
    """Every service of the local stack, built from the settings.

    Args:
        settings: GridLake settings.

    """

    def __init__(self, settings: GridLakeSettings) -> None:
        self.settings = settings
        self.redis = RedisService(settings)
        self.namenode = NameNodeService(settings)
        self.datanodes = [DataNodeService(settings, dn) for dn in settings.hdfs.datanodes]
        self.kafka = KafkaService(settings)
        self.nginx = NginxService(settings)

    @property
    def services(self) -> list[Service]:
        """Services in start order (a dependency comes before its dependants).

        DataNodes are only listed when GridLake manages HDFS; for an external HDFS the
        NameNode row reports the cluster. Nginx comes last (it only forwards to the API
        and serves files, so it needs nothing running to start), and only when GridLake
        runs it (``web.managed=false``: no web server of the stack at all).
        """
        hdfs: list[Service] = [self.namenode]
        if self.settings.hdfs.managed:
            hdfs += self.datanodes
        web: list[Service] = [self.nginx] if self.settings.web.managed else []
        return [self.redis, *hdfs, self.kafka, *web]

    def service(self, name: str) -> Service:
        """Return the service called ``name``."""
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(f"unknown service {name!r}; known: {[s.name for s in self.services]}")

    @contextmanager
    def lock(self, timeout_s: float = 600.0) -> Iterator[None]:
        """Hold the stack's inter-process lock (``up``/``down`` of one home never overlap).

        Raises:
            StackError: When another GridLake process holds it for ``timeout_s``.

        """
        self.settings.run.mkdir(parents=True, exist_ok=True)
        path = self.settings.run / "stack.lock"
        with path.open("w") as fh:
            deadline = time.monotonic() + timeout_s
            waited = False
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StackError(
                            f"another gridlake up/down holds {path} for {timeout_s:.0f} s: "
                            "wait for it to finish"
                        ) from None
                    if not waited:
                        logger.info("waiting for another gridlake up/down to finish")
                        waited = True
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- status ---------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        """Status of every service (quick health checks)."""
        return [svc.status() for svc in self.services]

    def healthy(self) -> bool:
        """Whether every service answers its health check."""
        return all(s.healthy for s in self.status())

    # -- setup ----------------------------------------------------------------------------
    def check_prerequisites(self, *, need_java: bool = True) -> str | None:
        """Python, disk, java checks; returns the java path when checked."""
        prereq.check_python()
        prereq.check_disk(self.settings.home)
        return prereq.check_java(self.settings) if need_java else None

    def setup(self, modules: Sequence[str] = DEFAULT_MODULES) -> list[str]:
        """Check prerequisites, resolve jars, install redis-server and nginx when missing.

        Returns:
            The jar modules that were (re)built.

        """
        self.check_prerequisites()
        if stale_modules(self.settings, modules):
            prereq.check_mvn()
        self._dirs()
        built = ensure_jars(self.settings, available_modules(modules))
        if self.settings.redis.managed:
            ensure_redis_server()
        if self.settings.web.managed:
            ensure_nginx()
        return built

    def _dirs(self) -> None:
        for d in (self.settings.data, self.settings.logs, self.settings.run):
            d.mkdir(parents=True, exist_ok=True)

    def needs_setup(self) -> bool:
        """Whether the stack's jars, redis-server or nginx are missing."""
        if stale_modules(self.settings, STACK_MODULES):
            return True
        if self.settings.web.managed and nginx_path() is None:
            return True
        return self.settings.redis.managed and redis_server_path() is None

    # -- up -------------------------------------------------------------------------------
    def up(self, *, timeout_s: float = 180.0) -> UpResult:
        """Start what is not running, wait until all is ready, then provision.

        Starts every managed service that is not running, waits until every service
        answers, then creates the Kafka topics and the lake root. Idempotent.

        Raises:
            StackError: With a one-line reason (prerequisite, port conflict, or a
                service that did not get ready, quoting its log).

        """
        t0 = time.monotonic()
        with self.lock():
            result = self._up(timeout_s)
        result.seconds = time.monotonic() - t0
        return result

    def _up(self, timeout_s: float) -> UpResult:
        result = UpResult()
        before = {s.name: s for s in self.status()}
        if not all(s.healthy for s in before.values()):
            to_start = [
                svc for svc in self.services if svc.managed and before[svc.name].pid is None
            ]
            if to_start:
                self._start(to_start, result)
            self._wait_all(timeout_s)
        result.topics_created = self._provision()
        result.statuses = self.status() if result.started else list(before.values())
        return result

    def _start(self, to_start: list[Service], result: UpResult) -> None:
        java = self.check_prerequisites()
        if self.needs_setup():
            self.setup(STACK_MODULES)
        self._dirs()
        owned = [pid for svc in self.services if (pid := svc.pid()) is not None]
        prereq.check_ports((c for svc in to_start for c in svc.ports()), owned)
        assert java is not None
        for svc in to_start:
            svc.start(java)
            result.started.append(svc.name)

    def _wait_all(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for svc in self.services:
            remaining = max(5.0, deadline - time.monotonic())
            svc.wait_ready(min(remaining, svc.ready_timeout_s))

    def _provision(self) -> list[str]:
        """Kafka topics and the HDFS lake root (idempotent)."""
        self.namenode.ensure_dir(self.settings.hdfs.lake_root)
        return self.kafka.ensure_topics()

    # -- down -----------------------------------------------------------------------------
    def down(self, only: Iterable[str] | None = None) -> list[str]:
        """Stop GridLake-started services (all, or those named in ``only``); data is kept.

        Returns:
            Names of the services that were stopped.

        """
        with self.lock():
            return self._down(only)

    def _down(self, only: Iterable[str] | None) -> list[str]:
        names = set(only) if only is not None else None
        targets = [svc for svc in reversed(self.services) if names is None or svc.name in names]
        running = [svc for svc in targets if svc.pid() is not None]
        for svc in running:  # SIGTERM everything first so they shut down in parallel
            svc.signal(signal.SIGTERM)
        for svc in running:
            svc.stop()
        return [svc.name for svc in running]


def require_healthy(statuses: Sequence[ServiceStatus]) -> None:
    """Raise when any status is unhealthy.

    Raises:
        StackError: Naming the unhealthy services.

    """
    bad = [f"{s.name} ({s.detail})" for s in statuses if not s.healthy]
    if bad:
        raise StackError("unhealthy: " + "; ".join(bad) + " - run `gridlake up`")
