"""Start, stop and inspect streaming jobs (``gridlake stream ...``).

With ``flink.master = "local"`` a job runs in its own PyFlink process (a local
mini-cluster inside the gateway JVM, jars on the launcher classpath); the process is
detached, with a pid file and a log file under GridLake's home. Its REST endpoint
(``flink.rest_port``, read with :class:`~jobs.streaming.flink_rest.FlinkRest`) reports the
job and its checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack import process
from infra.stack.hdfs import write_client_conf
from jobs.common.flink_env import flink_launch_env
from jobs.streaming.flink_rest import FlinkRest, FlinkUnavailable
from jobs.streaming.runtime import (
    checkpoint_root,
    flink_log_dir,
    keep_previous_flink_logs,
    sweep_work_dirs,
)

log = logging.getLogger(__name__)

JOBS: dict[str, str] = {"lakehouse": "jobs.streaming.lakehouse_job"}
#: Flink job (pipeline) name of each job, as set by its module.
JOB_NAMES: dict[str, str] = {"lakehouse": "gridlake-lakehouse"}


@dataclass
class JobStatus:
    """What ``gridlake stream status`` reports for one job."""

    name: str
    pid: int | None
    running: bool
    flink_job_id: str | None = None
    flink_state: str | None = None
    checkpoints_completed: int | None = None
    last_checkpoint_ms: int | None = None
    log_file: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return self.__dict__.copy()


def _pid_file(settings: GridLakeSettings, name: str) -> Path:
    return settings.run / f"stream-{name}.pid"


def _log_file(settings: GridLakeSettings, name: str) -> Path:
    return settings.logs / f"stream-{name}.log"


def _read_pid(settings: GridLakeSettings, name: str) -> int | None:
    return process.running_pid(_pid_file(settings, name))


def job_env(settings: GridLakeSettings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a job process: launcher classpath, JVM flags, PYTHONPATH."""
    env = dict(os.environ)
    env.update(flink_launch_env(settings.jars, settings.flink.heap))
    # the Hudi writer's Hadoop client reads dfs.replication from the class path
    env["HADOOP_CLASSPATH"] = os.pathsep.join(
        [env["HADOOP_CLASSPATH"], str(write_client_conf(settings))])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["GRIDLAKE_LOG_JSON"] = "1"
    # The PyFlink gateway logs into its own package folder unless told otherwise.
    log_dir = flink_log_dir(settings)
    log_dir.mkdir(parents=True, exist_ok=True)
    env["FLINK_LOG_DIR"] = str(log_dir)
    env.update(extra or {})
    return env


def start(
    settings: GridLakeSettings,
    name: str = "lakehouse",
    extra_env: dict[str, str] | None = None,
    resume: bool = True,
) -> int:
    """Start job ``name`` detached; return its pid (the running one if already started).

    Raises:
        KeyError: Unknown job name.
        FileNotFoundError: The Flink jars are missing (run ``gridlake setup``).

    """
    if name not in JOBS:
        raise KeyError(f"unknown streaming job {name!r}; known: {', '.join(JOBS)}")
    running = _read_pid(settings, name)
    if running:
        log.info("stream job %s already running (pid %d)", name, running)
        return running
    if not any((settings.jars / "flink").glob("gridlake-flink-connectors*.jar")):
        raise FileNotFoundError(
            f"Flink connector jars missing in {settings.jars / 'flink'}: run `gridlake setup`"
        )
    sweep_work_dirs(settings)
    keep_previous_flink_logs(settings)
    env = dict(extra_env or {})
    if resume and not settings.flink.resume_from:
        savepoint = last_savepoint(settings, name)
        if savepoint:
            log.info("stream job %s resumes from savepoint %s", name, savepoint)
            env["GRIDLAKE_FLINK__RESUME_FROM"] = savepoint
            # Consumed: a later crash-restart resumes from the newest checkpoint instead.
            _savepoint_file(settings, name).unlink(missing_ok=True)
        elif checkpoint := latest_checkpoint(settings, name):
            log.info("stream job %s resumes from checkpoint %s", name, checkpoint)
            env["GRIDLAKE_FLINK__RESUME_FROM"] = checkpoint
    return process.launch(
        [sys.executable, "-m", JOBS[name]],
        name=f"stream job {name}",
        marker=JOBS[name],
        log_file=_log_file(settings, name),
        pid_file=_pid_file(settings, name),
        cwd=REPO_ROOT,
        env=job_env(settings, env),
    )


def _savepoint_file(settings: GridLakeSettings, name: str) -> Path:
    return settings.run / f"stream-{name}.savepoint"


def latest_checkpoint(settings: GridLakeSettings, name: str = "lakehouse") -> str | None:
    """The newest completed, retained checkpoint of job ``name`` (local file systems).

    A crashed job restarts from it, so its aggregation state continues exactly where
    the checkpoint left it and Kafka is re-read from the checkpoint's offsets.
    """
    root = checkpoint_root(settings, JOB_NAMES[name])
    if not root.startswith("file:"):
        log.warning("cannot list checkpoints under %s; starting from committed offsets", root)
        return None
    folder = Path(urllib.parse.urlparse(root).path)
    done = [m.parent for m in folder.glob("*/chk-*/_metadata")]
    if not done:
        return None
    newest = max(done, key=lambda p: p.stat().st_mtime)
    return newest.as_uri()


def last_savepoint(settings: GridLakeSettings, name: str = "lakehouse") -> str | None:
    """Location of the savepoint the last graceful stop of ``name`` took, if any."""
    try:
        return _savepoint_file(settings, name).read_text().strip() or None
    except OSError:
        return None


def stop_with_savepoint(
    settings: GridLakeSettings, name: str = "lakehouse", timeout: float = 120.0
) -> str:
    """Stop job ``name`` through Flink with a savepoint; return the savepoint location.

    Raises:
        RuntimeError: The job is not running, or Flink reports the savepoint failed.
        TimeoutError: The savepoint did not complete in time.
        FlinkUnavailable: Flink refused the stop.

    """
    with _rest(settings) as rest:
        return _stop_with_savepoint(settings, name, timeout, rest)


def _stop_with_savepoint(
    settings: GridLakeSettings, name: str, timeout: float, rest: FlinkRest
) -> str:
    st, _ = _status(settings, name, rest)
    if not st.running or st.flink_state != "RUNNING" or st.flink_job_id is None:
        raise RuntimeError(f"stream job {name} is not running (state {st.flink_state})")
    target = settings.flink.savepoint_dir or (settings.home / "flink" / "savepoints").as_uri()
    trigger = rest.post(
        f"/jobs/{st.flink_job_id}/stop", {"targetDirectory": target, "drain": False}
    )["request-id"]
    triggered = time.time()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = rest.get(f"/jobs/{st.flink_job_id}/savepoints/{trigger}")
        except FlinkUnavailable:
            # A local job's process (and its REST endpoint) ends as soon as the stop
            # completes, possibly before this poll saw COMPLETED: the savepoint is on disk.
            written = _written_savepoint(target, st.flink_job_id, triggered)
            if written is not None:
                return _remember_savepoint(settings, name, written)
            if _read_pid(settings, name) is None:
                raise RuntimeError(
                    f"stream job {name} ended during its savepoint and left none in {target}"
                ) from None
            info = {}
        if info.get("status", {}).get("id") == "COMPLETED":
            op = info.get("operation", {})
            if "location" not in op:
                raise RuntimeError(f"savepoint of {name} failed: {op.get('failure-cause')}")
            return _remember_savepoint(settings, name, str(op["location"]))
        time.sleep(0.5)
    raise TimeoutError(f"savepoint of stream job {name} not done after {timeout:.0f}s")


def _remember_savepoint(settings: GridLakeSettings, name: str, location: str) -> str:
    """Record ``location`` as the savepoint the next start of ``name`` resumes from."""
    _savepoint_file(settings, name).write_text(location)
    log.info("stream job %s stopped with savepoint %s", name, location)
    return location


def _written_savepoint(target: str, job_id: str, since: float) -> str | None:
    """The newest complete savepoint of job ``job_id`` under ``target`` since ``since``.

    ``since`` is epoch seconds; only local file systems are listed (else None).
    """
    if not target.startswith("file:"):
        return None
    folder = Path(urllib.parse.urlparse(target).path)
    # Flink names savepoint folders savepoint-<first 6 hex digits of the job id>-<random>
    done = [m.parent for m in folder.glob(f"savepoint-{job_id[:6]}-*/_metadata")
            if m.stat().st_mtime >= since - 1]
    return max(done, key=lambda p: p.stat().st_mtime).as_uri() if done else None


def _wait_exit(settings: GridLakeSettings, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _read_pid(settings, name) is None:
            return True
        time.sleep(0.2)
    return False


def stop(
    settings: GridLakeSettings,
    name: str = "lakehouse",
    timeout: float = 30.0,
    savepoint: bool = True,
) -> bool:
    """Stop job ``name``; return whether it was running.

    With ``savepoint`` the job is first stopped through Flink with a savepoint, which
    the next :func:`start` resumes from (state and Kafka offsets exactly as at the
    stop). Without it, or when the savepoint fails, the process is terminated: the next
    start resumes from the Kafka offsets committed at the last checkpoint, and the
    replayed overlap is harmless because every sink upserts by key.
    """
    pid = _read_pid(settings, name)
    if pid is None:
        return False
    if savepoint:
        try:
            stop_with_savepoint(settings, name)
        except (RuntimeError, TimeoutError, FlinkUnavailable, OSError, KeyError,
                ValueError) as err:
            log.warning("no savepoint for %s (%s); terminating the process", name, err)
    # After a savepoint-stop the driver exits by itself once its job finished.
    if savepoint:
        _wait_exit(settings, name, timeout / 2)
    # The job's process group holds the Python driver and its gateway JVM (the local
    # mini-cluster); signalling the group stops both.
    if _read_pid(settings, name) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not _wait_exit(settings, name, timeout / 2):
            log.warning("stream job %s did not stop in %.0fs; killing", name, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the group (gateway JVM)
    _pid_file(settings, name).unlink(missing_ok=True)
    process.wait_pid_exited(pid, timeout / 2)
    sweep_work_dirs(settings)
    return True


def rest_url(settings: GridLakeSettings) -> str:
    """Base URL of the Flink REST endpoint (local mini-cluster or remote JobManager)."""
    if settings.flink.master == "local":
        return f"http://127.0.0.1:{settings.flink.rest_port}"
    return f"http://{settings.flink.master}"


def _rest(settings: GridLakeSettings) -> FlinkRest:
    """A client of the Flink REST endpoint in ``settings`` (close it after use)."""
    return FlinkRest(rest_url(settings), timeout_s=5.0)


def _status(
    settings: GridLakeSettings, name: str, rest: FlinkRest
) -> tuple[JobStatus, dict[str, Any] | None]:
    """Process and Flink-level state of job ``name``, and the body of its ``/checkpoints``.

    The body is None when there is no Flink job or its checkpoints cannot be read.
    """
    pid = _read_pid(settings, name)
    st = JobStatus(name=name, pid=pid, running=pid is not None,
                   log_file=str(_log_file(settings, name)))
    try:
        jobs = rest.get("/jobs/overview").get("jobs", [])
    except FlinkUnavailable:
        return st, None
    mine = [j for j in jobs if j.get("name", "").startswith("gridlake-")]
    if not mine:
        return st, None
    job = max(mine, key=lambda j: j.get("start-time", 0))
    st.flink_job_id, st.flink_state = job.get("jid"), job.get("state")
    try:
        cps = rest.get(f"/jobs/{st.flink_job_id}/checkpoints")
    except FlinkUnavailable:
        return st, None
    st.checkpoints_completed = cps.get("counts", {}).get("completed")
    latest = (cps.get("latest") or {}).get("completed") or {}
    st.last_checkpoint_ms = latest.get("latest_ack_timestamp")
    return st, cps


def status(settings: GridLakeSettings, name: str = "lakehouse") -> JobStatus:
    """Process and Flink-level state of job ``name``."""
    with _rest(settings) as rest:
        return _status(settings, name, rest)[0]


def checkpoint_history(settings: GridLakeSettings, name: str = "lakehouse") -> list[dict[str, Any]]:
    """Flink's recent checkpoints of job ``name`` (newest first), as its REST API reports them.

    Each entry has ``id``, ``status``, ``trigger_timestamp``, ``end_to_end_duration`` (ms) and
    ``state_size`` among others; an empty list when the job or its REST endpoint is not up.
    """
    with _rest(settings) as rest:
        _, cps = _status(settings, name, rest)
    return list((cps or {}).get("history", []))


def health(settings: GridLakeSettings, name: str = "lakehouse") -> dict[str, Any]:
    """Why a job may not be making progress: checkpoint counts and its recent failures.

    Returns:
        ``state``, ``checkpoints`` (Flink's counts: completed, failed, in_progress, restored)
        and ``failures`` (the newest exceptions' first lines, newest first); only ``state``
        when the job or its REST endpoint is not up.

    """
    with _rest(settings) as rest:
        st, cps = _status(settings, name, rest)
        out: dict[str, Any] = {"state": st.flink_state}
        if st.flink_job_id is None or cps is None:
            return out
        out["checkpoints"] = cps.get("counts")
        try:
            history = rest.get(f"/jobs/{st.flink_job_id}/exceptions").get(
                "exceptionHistory", {}).get("entries", [])
        except FlinkUnavailable:
            return out
    out["failures"] = [_failure(e) for e in history[:5]]
    return out


def _failure(entry: dict[str, Any]) -> str:
    """An exception of Flink's history as its first line plus its root cause."""
    lines = [ln.strip() for ln in (entry.get("stacktrace") or entry.get("exceptionName")
                                   or "").splitlines()]
    causes = [ln for ln in lines if ln.startswith("Caused by:")]
    return " | ".join(lines[:1] + causes[-1:])


def wait_running(settings: GridLakeSettings, name: str = "lakehouse",
                 timeout: float = 180.0, checkpoints: int = 0) -> JobStatus:
    """Block until the job is RUNNING (and has ``checkpoints`` completed); raise if it dies.

    Raises:
        RuntimeError: The process exited; the message quotes the end of its log.
        TimeoutError: Not running in time.

    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(settings, name)
        if not st.running:
            tail = _log_tail(settings, name)
            raise RuntimeError(f"stream job {name} exited; log tail:\n{tail}")
        if st.flink_state == "RUNNING" and (st.checkpoints_completed or 0) >= checkpoints:
            return st
        time.sleep(0.5)
    raise TimeoutError(f"stream job {name} not running after {timeout:.0f}s; see {st.log_file}")


def _log_tail(settings: GridLakeSettings, name: str, lines: int = 40) -> str:
    return "\n".join(process.tail(_log_file(settings, name), lines)) or "(no log)"


def _job_lake_root(pid: int) -> str | None:
    """The lake root a job process was started with, when its environment names one."""
    try:
        return psutil.Process(pid).environ().get("GRIDLAKE_HDFS__LAKE_ROOT")
    except psutil.Error:
        return None


def writes_lake(settings: GridLakeSettings, name: str = "lakehouse") -> bool:
    """Whether job ``name`` is running as a writer of ``settings``' lake.

    It is when its process runs for this lake, or when the Flink cluster reports it
    RUNNING (a remote job, or one whose pid file is gone). A job of this home started for
    another lake (isolated test and benchmark runs) is not this lake's writer.
    """
    st = status(settings, name)
    ours = st.pid is not None and _job_lake_root(st.pid) in (None, settings.hdfs.lake_root)
    return ours or st.flink_state == "RUNNING"
