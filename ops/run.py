"""``gridlake run`` / ``gridlake stop``: the whole demo platform in one command.

``run`` goes through :data:`STEPS` in order: the local stack, a day (``settings.startup``)
of history written into the lake at bulk speed (the simulator's fleet loaded into ODS as
the history import does, then a backfill: first run only; see :func:`load_history`), the
streaming job, the API, a
small AnomalyBERT trained when the model registry is empty, the ML service, and the
real-time simulator. Every step is skipped when what it makes is already there (running
process, marker file, registered model), so a second ``run`` only checks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from api import service as api_service
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack import process
from infra.stack.base import http_json
from infra.stack.manager import Stack
from jobs.streaming import control
from ops.status import ML_PID, SIMULATOR_PID, ml_url

log = logging.getLogger(__name__)

SIMULATOR_MARKER = "simulate"
#: Marker in the ML service's command line (its process is recognised by it).
ML_MARKER = "serve"
#: The history a first run published: ``{"start": day, "end": day}`` (end exclusive).
HISTORY_MARKER = "history.json"


@dataclass(frozen=True)
class Step:
    """One step of ``run``: what it does, and how long it takes the first time."""

    name: str
    expected: str


#: The steps in order, with the durations measured on a 2-core machine (docs/benchmarks.md).
STEPS: tuple[Step, ...] = (
    Step("stack", "1-3 min the first time (formats HDFS and Kafka), seconds after"),
    Step("history", "about 6 min per day of the default fleet: ODS bulk load ~1 min, "
                    "backfill ~5 min (first run only)"),
    Step("stream", "2-3 min (PyFlink plans the job)"),
    Step("api", "10-30 s"),
    Step("model", "about 1 min (small AnomalyBERT; only when the registry is empty)"),
    Step("ml", "10-30 s"),
    Step("simulator", "seconds"),
)


@dataclass
class RunResult:
    """What ``run`` started and where to look."""

    links: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)
    history: tuple[date, date] | None = None


#: ``progress(step, message)``: called when a step starts (message: its expected duration)
#: and ends (message: what it did).
Progress = Callable[[Step, str], None]


def _sim_pid_file(settings: GridLakeSettings) -> Path:
    return settings.run / SIMULATOR_PID


def simulator_command(settings: GridLakeSettings) -> list[str]:
    """The demo's simulator: the fleet in real time (1-minute meter readings), until stopped."""
    return [
        sys.executable, "-m", "ops.cli.main", SIMULATOR_MARKER, "run",
        "--mode", "realtime", "--meter-interval", "60", "--quiet",
        "--meters", str(settings.simulator.meters), "--seed", str(settings.simulator.seed),
    ]


def start_simulator(settings: GridLakeSettings) -> int:
    """Start the demo simulator detached (no-op when running)."""
    pid = process.running_pid(_sim_pid_file(settings))
    if pid is not None:
        return pid
    return process.launch(
        simulator_command(settings),
        name="simulator",
        marker=SIMULATOR_MARKER,
        log_file=settings.logs / "simulator.log",
        pid_file=_sim_pid_file(settings),
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "GRIDLAKE_LOG_JSON": "1"},
    )


# -- history ------------------------------------------------------------------------------
def history_span(settings: GridLakeSettings, today: date | None = None) -> tuple[date, date]:
    """The whole days of history a first run loads: ``history_days`` days before today."""
    end = today or datetime.now(UTC).date()
    return end - timedelta(days=settings.startup.history_days), end


def loaded_history(settings: GridLakeSettings) -> tuple[date, date] | None:
    """The span an earlier run published (its marker), else ``None``."""
    marker = settings.run / HISTORY_MARKER
    if not marker.exists():
        return None
    data = json.loads(marker.read_text())
    return date.fromisoformat(data["start"]), date.fromisoformat(data["end"])


def load_history(settings: GridLakeSettings,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 ) -> tuple[date, date] | None:
    """Write the history span into the lake once (marker); return the span, or ``None``.

    At bulk speed, not through Kafka and Flink (the streaming job takes 140-255 messages/s
    on 2 cores: a day of the default fleet would take most of an hour): the simulator's
    fleet over the span is turned into ODS rows exactly as the history import makes them
    and written with Hudi ``bulk_insert`` (:func:`ops.bench.backfill.load_ods`), then a
    backfill from DIM computes DWD, DWS and ADS of those days
    (:func:`jobs.batch.backfill.run_backfill`), so the first daily figures cover whole
    days. Skipped while a streaming job runs (two writers on the same tables).

    Args:
        settings: Settings (``startup.history_days``; the fleet of ``simulator``).
        on_progress: ``(phase, done, total)``: ``ods`` per day, ``backfill`` per table.

    """
    if settings.startup.history_days == 0 or loaded_history(settings) is not None:
        return None
    if control.status(settings).running:
        log.warning("history skipped: the streaming job is running (stop it to load it)")
        return None
    # lazy: Spark and the bulk loader (pyspark, pyarrow); only a first run needs them
    from infra.spark import spark_scope

    # lazy: see above
    from jobs.batch.backfill import BackfillRequest, run_backfill

    # lazy: see above
    from jobs.catalog import create_tables

    # lazy: see above
    from ops.bench.backfill import load_ods

    start, end = history_span(settings)
    days = (end - start).days
    report = on_progress or (lambda phase, done, total: None)
    staging = settings.data / "history-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with spark_scope(settings, "gridlake-history") as spark:
            create_tables(settings, spark=spark)
            done_days: list[str] = []

            def on_day(day: Any, figures: Any) -> None:
                done_days.append(day.day)
                report("ods", len(done_days), days)

            report("ods", 0, days)
            load_ods(spark, settings, start, days, settings.simulator.meters, staging, on_day)
            request = BackfillRequest(start, end, "dim")
            run_backfill(settings, request, spark=spark,
                         on_table=lambda res, done, total: report("backfill", done, total))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker = settings.run / HISTORY_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat()}))
    return start, end


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


# -- ML -----------------------------------------------------------------------------------
def registry_empty(settings: GridLakeSettings) -> bool:
    """Whether the model registry holds no model."""
    # lazy: torch (the ML registry's models); only needed when ML is prepared
    from ml.registry import ModelRegistry

    return not ModelRegistry.from_settings(settings).list_models()


def train_command(settings: GridLakeSettings) -> list[str]:
    """A small AnomalyBERT on simulated normal ESS data (``settings.startup``)."""
    return [
        sys.executable, "-m", "ops.cli.main", "ml", "train", "--size", "small",
        "--steps", str(settings.startup.train_steps),
        "--hours", str(settings.startup.train_hours),
    ]


def train_first_model(settings: GridLakeSettings) -> bool:
    """Train and register a small model when the registry is empty; whether it trained.

    Raises:
        RuntimeError: When training fails (its output is quoted).

    """
    if not registry_empty(settings):
        return False
    run = subprocess.run(train_command(settings), cwd=REPO_ROOT, capture_output=True,
                         text=True, check=False, env=_env())
    if run.returncode != 0:
        raise RuntimeError(f"training the first model failed: {run.stderr.strip()[-2000:]}")
    return True


def ml_command(settings: GridLakeSettings) -> list[str]:
    """The ML service (``gridlake ml serve``) on ``settings.ml``'s address."""
    return [sys.executable, "-m", "ops.cli.main", "ml", ML_MARKER]


def start_ml(settings: GridLakeSettings, timeout_s: float = 120.0) -> int:
    """Start the ML service detached (no-op when running) and wait for its ``/health``.

    Raises:
        TimeoutError: Not answering in time (the message names its log).

    """
    pid_file = settings.run / ML_PID
    pid = process.running_pid(pid_file)
    if pid is None:
        pid = process.launch(
            ml_command(settings), name="ml", marker=ML_MARKER,
            log_file=settings.logs / "ml.log", pid_file=pid_file, cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "GRIDLAKE_LOG_JSON": "1"},
        )

    def answers() -> tuple[bool, str]:
        try:
            return True, str(http_json(f"{ml_url(settings)}/health", 2.0))
        except (OSError, ValueError) as err:
            return False, str(err)

    ok, detail = process.poll_until(answers, timeout_s=timeout_s, interval_s=1.0)
    if not ok:
        raise TimeoutError(f"ML service not answering after {timeout_s:.0f} s ({detail}); "
                           f"see {settings.logs / 'ml.log'}")
    return pid


def stop_ml(settings: GridLakeSettings) -> bool:
    """Stop the ML service ``run`` started; whether it was running."""
    return process.stop(settings.run / ML_PID, name="ml")


# -- the whole platform ---------------------------------------------------------------------
def _step(name: str) -> Step:
    return next(s for s in STEPS if s.name == name)


def run_all(settings: GridLakeSettings, progress: Progress | None = None,
            on_history: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Start every part (see the module docstring); skip what is already there."""
    say = progress or (lambda step, msg: log.info("%s: %s", step.name, msg))
    result = RunResult()

    def timed(name: str, fn: Callable[[], Any], done: Callable[[Any], str]) -> Any:
        step = _step(name)
        say(step, f"expected {step.expected}")
        t0 = time.monotonic()
        out = fn()
        result.done[name] = f"{done(out)} in {time.monotonic() - t0:.0f} s"
        say(step, result.done[name])
        return out

    timed("stack", lambda: Stack(settings).up(),
          lambda r: "started " + (", ".join(r.started) or "nothing (already up)"))
    timed("history", lambda: load_history(settings, on_history),
          lambda span: f"{span[0]} to {span[1]} in the lake" if span else
          "already loaded (or skipped)")
    result.pids["stream"] = timed(
        "stream", lambda: (control.start(settings), control.wait_running(settings))[0],
        lambda pid: f"running (pid {pid})")
    result.history = loaded_history(settings)
    result.pids["api"] = timed("api", lambda: api_service.start(settings),
                               lambda pid: f"running (pid {pid})")
    timed("model", lambda: train_first_model(settings),
          lambda trained: "trained and registered" if trained else "registry has a model")
    result.pids["ml"] = timed("ml", lambda: start_ml(settings),
                              lambda pid: f"running (pid {pid})")
    result.pids["simulator"] = timed("simulator", lambda: start_simulator(settings),
                                     lambda pid: f"running (pid {pid})")
    result.links = links(settings, result.history)
    return result


def links(settings: GridLakeSettings, history: tuple[date, date] | None) -> dict[str, str]:
    """Where to look; the example query asks for the last whole day of history."""
    day = history[1] - timedelta(days=1) if history else datetime.now(UTC).date()
    flink = control.rest_url(settings)
    # the dashboard first: it is what a person opens
    return {
        "Dashboard": settings.web.base_url + "/",
        "API docs": f"{settings.api.base_url}/docs",
        "API example": f"{settings.api.base_url}/api/v1/meters/MTR-000001/energy/15min"
        f"?start={day:%Y-%m-%d}T00:00:00Z&end={day + timedelta(days=1):%Y-%m-%d}T00:00:00Z",
        "ML service": f"{ml_url(settings)}/health",
        "Flink REST": f"{flink}/jobs/overview",
        "HDFS NameNode": f"{settings.hdfs.webhdfs_url}/dfshealth.html",
        "Logs": str(settings.logs),
    }


def stop_all(settings: GridLakeSettings, *, stack: bool = True) -> list[str]:
    """Stop the simulator, the ML service, the API, the streaming job and the stack."""
    stopped = []
    if process.stop(_sim_pid_file(settings), name="simulator"):
        stopped.append("simulator")
    if stop_ml(settings):
        stopped.append("ml")
    if api_service.stop(settings):
        stopped.append("api")
    if control.stop(settings):
        stopped.append("stream")
    if stack:
        stopped += Stack(settings).down()
    return stopped
