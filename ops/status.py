"""``gridlake status``: every part of the platform, probed in parallel with short timeouts.

The parts: the local stack's services (their own health checks), the streaming job (its
pid, Flink state, last checkpoint and Kafka lag), the API (``/api/v1/ready``), the ML
service (``/health``: the active model) and the simulator (its pid file). No JVM and no
Spark is started: each probe is one or two HTTP/TCP requests, all at once, so the whole
report takes about as long as the slowest single answer (``PROBE_TIMEOUT_S``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from infra.settings import GridLakeSettings
from infra.stack import process
from infra.stack.base import http_json, url_error_text

log = logging.getLogger(__name__)

#: Seconds each probe may take (a part that does not answer in time is reported down).
PROBE_TIMEOUT_S = 1.5

#: Pid file of the simulator ``gridlake run`` starts (see :mod:`ops.run`).
SIMULATOR_PID = "simulator.pid"
#: Pid file of the ML service ``gridlake run`` starts.
ML_PID = "ml.pid"


@dataclass
class PartStatus:
    """One part of the platform as ``gridlake status`` shows it.

    Attributes:
        name: Part name (``kafka``, ``stream``, ``api``, ``ml``, ``simulator``, ...).
        kind: ``service`` (the local stack) or ``app`` (started by ``gridlake run``).
        address: Where it listens (empty for the simulator).
        pid: Its process id when GridLake started it here.
        healthy: Whether it answers as it should.
        detail: What was found, or what is wrong and what to do.
        role: A stack service's cluster role (``master``, ``slave1``, ...); empty for apps.
        managed: Whether GridLake runs it here (False: an external service).

    """

    name: str
    kind: str
    address: str
    pid: int | None
    healthy: bool
    detail: str
    role: str = ""
    managed: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


def _stack_probes(settings: GridLakeSettings) -> list[Callable[[], PartStatus]]:
    # lazy: the stack's modules (Kafka admin client) are only needed by this command
    from infra.stack.manager import Stack

    def probe(svc: Any) -> Callable[[], PartStatus]:
        def run() -> PartStatus:
            s = svc.status()
            pid = s.pid if s.pid else None
            return PartStatus(s.name, "service", s.address, pid, s.healthy, s.detail,
                              s.role, s.managed)
        return run

    return [probe(svc) for svc in Stack(settings).services]


def _age(ms: int | None) -> str:
    if not ms:
        return "none yet"
    return f"{max(0.0, time.time() - ms / 1000):.0f} s ago"


def stream_part(settings: GridLakeSettings, timeout_s: float = PROBE_TIMEOUT_S) -> PartStatus:
    """The streaming job: pid, Flink state, last checkpoint age and Kafka lag."""
    # lazy: the streaming control module pulls in httpx and the Flink REST client
    from jobs.streaming import control

    name = "lakehouse"
    address = control.rest_url(settings)
    st = control.status(settings, name)
    if not st.running:
        return PartStatus("stream", "app", address, None, False,
                          "not running: start it with `gridlake stream start` "
                          "(or `make run`)")
    parts = [f"Flink {st.flink_state or 'no job yet'}",
             f"last checkpoint {_age(st.last_checkpoint_ms)}"]
    parts.append(_lag(settings, name, timeout_s))
    return PartStatus("stream", "app", address, st.pid, st.flink_state == "RUNNING",
                      ", ".join(parts))


def _lag(settings: GridLakeSettings, name: str, timeout_s: float) -> str:
    # lazy: the monitor knows the job's consumer group and topics; Kafka's client is slow
    from infra.kafka_lag import KafkaUnavailableError, consumer_lag

    # lazy: see above
    from jobs.streaming.monitor import JOB_SOURCES

    source = JOB_SOURCES[name]
    try:
        lags = consumer_lag(settings, source.group_id(settings), source.topic_names(settings),
                            timeout_s)
    except KafkaUnavailableError as err:
        return f"lag unknown ({err})"
    return f"Kafka lag {sum(t.lag or 0 for t in lags):,}"


def api_part(settings: GridLakeSettings, timeout_s: float = PROBE_TIMEOUT_S) -> PartStatus:
    """The API: its readiness (each dependency's check)."""
    # lazy: api.service reads the pid file; importing api is only needed here
    from api import service as api_service

    base = settings.api.base_url
    pid = process.running_pid(api_service.pid_file(settings))
    try:
        body = http_json(f"{base}/api/v1/ready", timeout_s)
    except OSError as err:
        # /ready answers 503 with a body when a required dependency is down
        text = url_error_text(err)
        return PartStatus("api", "app", base, pid, False,
                          f"{text}; start it with `gridlake api start` (or `make run`)")
    except ValueError as err:
        return PartStatus("api", "app", base, pid, False, f"bad answer: {err}")
    checks = body.get("checks") or {}
    down = [n for n, v in checks.items() if not str(v).startswith("ok")]
    detail = f"ready: {body.get('status')}" + (f" ({', '.join(down)} down)" if down else "")
    return PartStatus("api", "app", base, pid, body.get("status") in ("ok", "degraded"),
                      detail)


def ml_url(settings: GridLakeSettings) -> str:
    """Base address of the ML service."""
    return f"http://{settings.ml.host}:{settings.ml.port}"


def ml_part(settings: GridLakeSettings, timeout_s: float = PROBE_TIMEOUT_S) -> PartStatus:
    """The ML service: reachable, and which model is active (with what to do if none)."""
    base = ml_url(settings)
    pid = process.running_pid(settings.run / ML_PID)
    try:
        body = http_json(f"{base}/health", timeout_s)
    except (OSError, ValueError) as err:
        return PartStatus("ml", "app", base, pid, False,
                          f"unreachable ({url_error_text(err)}): start it with `make run` "
                          "or `gridlake ml serve`")
    active = body.get("active_model")
    if not active:
        return PartStatus("ml", "app", base, pid, False,
                          "no active model (empty registry?): train one with "
                          "`gridlake ml train --size small`, then restart the service")
    return PartStatus("ml", "app", base, pid, True, f"active model {active}")


def simulator_part(settings: GridLakeSettings) -> PartStatus:
    """The demo simulator: running (pid), and when it last wrote to its log."""
    pid = process.running_pid(settings.run / SIMULATOR_PID)
    if pid is None:
        return PartStatus("simulator", "app", "", None, False,
                          "not running: `make run` starts it (or `gridlake simulate run`)")
    log_file = settings.logs / "simulator.log"
    detail = f"running, {settings.simulator.meters} meters in real time"
    if log_file.exists():
        detail += f", log written {time.time() - log_file.stat().st_mtime:.0f} s ago"
    return PartStatus("simulator", "app", "", pid, True, detail)


def _guard(name: str, kind: str, fn: Callable[[], PartStatus]) -> Callable[[], PartStatus]:
    def run() -> PartStatus:
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - one part's failure is its status line
            log.debug("probe %s failed", name, exc_info=True)
            return PartStatus(name, kind, "", None, False, f"{type(err).__name__}: {err}")
    return run


def platform_status(settings: GridLakeSettings,
                    timeout_s: float = PROBE_TIMEOUT_S) -> list[PartStatus]:
    """Probe every part at once; stack services first, then the applications."""
    probes = [_guard("stack", "service", p) for p in _stack_probes(settings)]
    probes += [
        _guard("stream", "app", lambda: stream_part(settings, timeout_s)),
        _guard("api", "app", lambda: api_part(settings, timeout_s)),
        _guard("ml", "app", lambda: ml_part(settings, timeout_s)),
        _guard("simulator", "app", lambda: simulator_part(settings)),
    ]
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        return list(pool.map(lambda p: p(), probes))
