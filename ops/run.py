"""``gridlake run`` / ``gridlake stop``: the whole demo platform in one command."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api import service as api_service
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack import process
from infra.stack.manager import Stack
from jobs.streaming import control

log = logging.getLogger(__name__)

SIMULATOR_MARKER = "simulate"


@dataclass
class RunResult:
    """What ``run`` started and where to look."""

    links: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)


def _sim_pid_file(settings: GridLakeSettings) -> Path:
    return settings.run / "simulator.pid"


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


def run_all(settings: GridLakeSettings) -> RunResult:
    """Start the stack, the streaming job, the API and the simulator; wait for each."""
    result = RunResult()
    Stack(settings).up()
    result.pids["stream"] = control.start(settings)
    control.wait_running(settings)
    result.pids["api"] = api_service.start(settings)
    result.pids["simulator"] = start_simulator(settings)
    flink = control.rest_url(settings)
    day = datetime.now(UTC).date()
    # the dashboard first: it is what a person opens
    result.links = {
        "Dashboard": settings.web.base_url + "/",
        "API docs": f"{settings.api.base_url}/docs",
        "API example": f"{settings.api.base_url}/api/v1/meters/MTR-000001/energy/15min"
        f"?start={day:%Y-%m-%d}T00:00:00Z&end={day + timedelta(days=1):%Y-%m-%d}T00:00:00Z",
        "Flink REST": f"{flink}/jobs/overview",
        "HDFS NameNode": f"{settings.hdfs.webhdfs_url}/dfshealth.html",
        "Logs": str(settings.logs),
    }
    return result


def stop_all(settings: GridLakeSettings, *, stack: bool = True) -> list[str]:
    """Stop the simulator, the API, the streaming job and (optionally) the stack."""
    stopped = []
    if process.stop(_sim_pid_file(settings), name="simulator"):
        stopped.append("simulator")
    if api_service.stop(settings):
        stopped.append("api")
    if control.stop(settings):
        stopped.append("stream")
    if stack:
        stopped += Stack(settings).down()
    return stopped
