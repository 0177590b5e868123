"""One GridLake service in the foreground: the main process of a container.

``gridlake service run NAME`` prepares a service exactly as ``gridlake up`` does
(:meth:`Service.prepare <infra.stack.base.Service.prepare>`: generated configuration,
the NameNode format and the Kafka storage format, both done once) and then replaces
itself (``exec``) with the service's own command line (:meth:`Service.command
<infra.stack.base.Service.command>`). The JVM or ``redis-server`` thus becomes the
container's PID 1: it gets ``docker stop``'s SIGTERM directly and its console output is
the container log. No pid file is written: the container runtime supervises it.

Besides the stack services (``redis``, ``namenode``, ``datanode-<role>``, ``kafka``,
``nginx``) two
application processes run the same way: ``api`` (uvicorn, :func:`api.service.command`)
and ``stream`` (a PyFlink job in its local mini-cluster, launched like
``gridlake stream start`` but in the foreground, after provisioning the Kafka topics
and the lake root).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from api.service import command
from infra.settings import GridLakeSettings
from infra.stack import prereq, process
from infra.stack.base import Health, Service, http_json, url_error_text
from infra.stack.errors import StackError
from infra.stack.hdfs import NameNodeService
from infra.stack.manager import Stack
from infra.stack.nginx import NginxService
from infra.stack.redis import RedisService
from jobs.streaming.control import JOBS, job_env

logger = logging.getLogger(__name__)

#: Application processes that are not part of the local stack.
API = "api"
STREAM = "stream"
APPS: tuple[str, ...] = (API, STREAM)

#: Default streaming job of the ``stream`` process.
DEFAULT_JOB = "lakehouse"

#: Seconds ``provision`` waits for the NameNode and Kafka.
PROVISION_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Launch:
    """What to ``exec``: a prepared service's command line.

    Attributes:
        name: Service name.
        argv: Command line; ``argv[0]`` is an absolute path.
        cwd: Working directory.
        env: Complete environment of the process.

    """

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def stack_services(settings: GridLakeSettings) -> list[Service]:
    """The local stack's services that this settings object manages."""
    return [svc for svc in Stack(settings).services if svc.managed]


def service_names(settings: GridLakeSettings) -> list[str]:
    """Every name ``gridlake service run`` accepts, stack services first."""
    return [svc.name for svc in stack_services(settings)] + list(APPS)


def _stack_service(settings: GridLakeSettings, name: str) -> Service:
    for svc in stack_services(settings):
        if svc.name == name:
            return svc
    raise StackError(
        f"unknown or unmanaged service {name!r}; known: {', '.join(service_names(settings))}"
    )


def needs_java(svc: Service) -> bool:
    """Whether the service runs on the JVM (every stack service but Redis and Nginx)."""
    return not isinstance(svc, RedisService | NginxService)


def console_args(svc: Service) -> list[str]:
    """Arguments appended to the service's command so it logs to the console.

    The JVM services already log to stdout (their generated log4j configuration), Nginx
    its errors to stderr (``-e stderr``; its access log stays a file of the home).
    Redis writes to its ``logfile``; ``--logfile ""`` on the command line overrides
    that one directive so ``docker logs`` shows it.
    """
    if isinstance(svc, RedisService):
        return ["--logfile", ""]
    return []


def _ensure_dirs(settings: GridLakeSettings) -> None:
    for d in (settings.data, settings.logs, settings.run):
        d.mkdir(parents=True, exist_ok=True)


def prepare_service(settings: GridLakeSettings, name: str, java: str | None = None) -> Launch:
    """Prepare a stack service (config, one-time format) and return its launch.

    Args:
        settings: GridLake settings.
        name: A stack service name (``namenode``, ``datanode-slave1``, ``kafka``, ...).
        java: The ``java`` to use; found and checked (17+) when ``None``.

    Returns:
        The service's own command line (plus :func:`console_args`).

    Raises:
        StackError: Unknown or unmanaged service, missing prerequisite, failed format.

    """
    svc = _stack_service(settings, name)
    if java is None:
        java = prereq.check_java(settings) if needs_java(svc) else ""
    _ensure_dirs(settings)
    svc.data_dir.mkdir(parents=True, exist_ok=True)
    svc.conf_dir.mkdir(parents=True, exist_ok=True)
    svc.prepare(java)
    return Launch(
        name=svc.name,
        argv=[*svc.command(java), *console_args(svc)],
        cwd=svc.data_dir,
        env=dict(os.environ),
    )


def api_launch(settings: GridLakeSettings) -> Launch:
    """The API server's command line (:func:`api.service.command`)."""
    _ensure_dirs(settings)
    return Launch(name=API, argv=command(settings), cwd=settings.home, env=dict(os.environ))


def stream_launch(settings: GridLakeSettings, job: str = DEFAULT_JOB) -> Launch:
    """A streaming job's command line and environment, as ``gridlake stream start``.

    Raises:
        StackError: Unknown job or missing Flink jars.

    """
    if job not in JOBS:
        raise StackError(f"unknown streaming job {job!r}; known: {', '.join(JOBS)}")
    _ensure_dirs(settings)
    try:
        env = job_env(settings)
    except (FileNotFoundError, ValueError) as err:
        raise StackError(str(err)) from err
    return Launch(
        name=f"{STREAM}:{job}",
        argv=[sys.executable, "-m", JOBS[job]],
        cwd=settings.home,
        env=env,
    )


def _wait_healthy(svc: Service, timeout_s: float) -> None:
    def check() -> tuple[bool, str]:
        h = svc.health()
        return h.healthy, h.detail

    ok, detail = process.poll_until(check, timeout_s=timeout_s, interval_s=2.0)
    if not ok:
        raise StackError(f"{svc.name} at {svc.address} not ready after {timeout_s:.0f} s: {detail}")


def provision(settings: GridLakeSettings, timeout_s: float = PROVISION_TIMEOUT_S) -> list[str]:
    """Wait for the NameNode and Kafka, then create the lake root and the topics.

    The same provisioning ``gridlake up`` does, for services running elsewhere.
    Idempotent.

    Returns:
        The Kafka topics this call created.

    Raises:
        StackError: When the NameNode or Kafka is not ready in time.

    """
    stack = Stack(settings)
    _wait_healthy(stack.namenode, timeout_s)
    _wait_healthy(stack.kafka, timeout_s)
    stack.namenode.ensure_dir(settings.hdfs.lake_root)
    created = stack.kafka.ensure_topics()
    logger.info("provisioned %s and %d new topics", settings.hdfs.lake_root, len(created))
    return created


def prepare(
    settings: GridLakeSettings,
    name: str,
    *,
    java: str | None = None,
    job: str = DEFAULT_JOB,
) -> Launch:
    """Prepare service ``name`` and return what to exec (see the module docstring).

    Raises:
        StackError: Unknown service, missing prerequisite, or failed preparation.

    """
    if name == API:
        return api_launch(settings)
    if name == STREAM:
        launch = stream_launch(settings, job)
        provision(settings)
        return launch
    return prepare_service(settings, name, java)


def exec_launch(launch: Launch) -> NoReturn:
    """Replace this process with ``launch`` (never returns)."""
    logger.info("exec %s: %s", launch.name, " ".join(launch.argv[:1] + launch.argv[-2:]))
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(launch.cwd)
    os.execve(launch.argv[0], launch.argv, launch.env)  # noqa: S606 - the point of this module


def probe(
    settings: GridLakeSettings, name: str, *, live: bool = False, job: str = DEFAULT_JOB
) -> Health:
    """Health of service ``name`` as seen from its own container.

    Args:
        settings: GridLake settings.
        name: Any name of :func:`service_names`.
        live: For the NameNode, only check that it answers (it may still be in safe
            mode, waiting for the DataNodes' block reports); other services ignore it.
        job: Streaming job of ``stream``.

    Returns:
        The stack service's own health check; for ``api`` its health endpoint, for
        ``stream`` whether the local Flink REST endpoint reports the job RUNNING.

    """
    if name == API:
        url = f"http://127.0.0.1:{settings.api.port}/api/v1/health"
        try:
            status = http_json(url).get("status")
        except (OSError, ValueError) as err:
            return Health(False, f"{url} unreachable: {url_error_text(err)}")
        return Health(status == "ok", f"status {status!r}")
    if name == STREAM:
        st = status(settings, job)
        return Health(st.flink_state == "RUNNING", f"Flink job {st.flink_job_id}: {st.flink_state}")
    svc = _stack_service(settings, name)
    if live and isinstance(svc, NameNodeService):
        try:
            fs_state = svc.state().get("FSState", "?")
        except (OSError, ValueError) as err:
            return Health(False, f"JMX unreachable: {url_error_text(err)}")
        return Health(True, f"answers, FSState {fs_state}")
    return svc.health()
