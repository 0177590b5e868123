"""Unit tests of the stream job control helpers (no services)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import GridLakeSettings
from jobs.streaming import control
from jobs.streaming.control import _written_savepoint
from jobs.streaming.flink_rest import FlinkRest
from ops.bench.isolation import free_port

JOB = "abcdef0123456789abcdef0123456789"


def _savepoint(root: Path, name: str, mtime: float, complete: bool = True) -> Path:
    folder = root / name
    folder.mkdir()
    if complete:
        (folder / "_metadata").write_bytes(b"x")
        os.utime(folder / "_metadata", (mtime, mtime))
    return folder


def test_written_savepoint_is_the_jobs_newest_complete_one_since_the_trigger(
    tmp_path: Path,
) -> None:
    now = time.time()
    _savepoint(tmp_path, "savepoint-abcdef-000000000001", now - 3600)  # an older stop
    newest = _savepoint(tmp_path, "savepoint-abcdef-000000000002", now + 1)
    _savepoint(tmp_path, "savepoint-abcdef-000000000003", now + 2, complete=False)
    _savepoint(tmp_path, "savepoint-123456-000000000004", now + 3)  # another job
    assert _written_savepoint(tmp_path.as_uri(), JOB, now) == newest.as_uri()


def test_written_savepoint_none_when_nothing_new_or_not_local(tmp_path: Path) -> None:
    now = time.time()
    _savepoint(tmp_path, "savepoint-abcdef-000000000001", now - 3600)
    assert _written_savepoint(tmp_path.as_uri(), JOB, now) is None
    assert _written_savepoint("hdfs://nn:8020/savepoints", JOB, now) is None


def test_work_dirs_of_ended_job_processes_are_swept(tmp_path: Path) -> None:
    import subprocess
    import sys

    from infra.settings import GridLakeSettings
    from jobs.streaming.runtime import flink_config, flink_log_dir, sweep_work_dirs, work_dir

    settings = GridLakeSettings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    alive = work_dir(settings, os.getpid())
    gone = work_dir(settings, ended.pid)
    logs = flink_log_dir(settings)
    logs.mkdir(parents=True)
    names = {}
    for folder in (alive, gone):
        (folder / "tm_0").mkdir(parents=True)
        # a RocksDB info log Flink moved out of the job's instance folder
        names[folder] = str(folder / "tm_0" / "job_1_op_Join").lstrip("/").replace("/", "_")
        (logs / f"{names[folder]}_LOG").write_text("header")
    (logs / "flink-root-python-vm.log").write_text("kept")
    assert sweep_work_dirs(settings) == 1
    assert alive.is_dir() and not gone.exists()
    assert {p.name for p in logs.iterdir()} == {"flink-root-python-vm.log", f"{names[alive]}_LOG"}
    # the local mini-cluster's temp and working files go to this process's folder
    conf = flink_config(settings, "lakehouse")
    assert conf["io.tmp.dirs"] == conf["process.working-dir"] == str(alive)
    # a log folder set by us would name each log after its whole instance path: too long
    assert "state.backend.rocksdb.log.dir" not in conf


def test_failure_summary_is_the_first_line_and_the_root_cause() -> None:
    trace = ("org.apache.flink.runtime.JobException: Recovery is suppressed\n"
             "\tat org.apache.flink.X.y(X.java:1)\n"
             "Caused by: java.io.IOException: Hudi write of table t failed\n"
             "\tat a.b(C.java:2)\n"
             "Caused by: org.apache.hudi.exception.HoodieLockException: Unable to acquire lock\n")
    assert control._failure({"stacktrace": trace}) == (
        "org.apache.flink.runtime.JobException: Recovery is suppressed | "
        "Caused by: org.apache.hudi.exception.HoodieLockException: Unable to acquire lock")
    assert control._failure({"exceptionName": "java.lang.OutOfMemoryError"}) == (
        "java.lang.OutOfMemoryError")


# ---------------------------------------------------------------------------------------
# Flink REST: one client, each answer fetched once
# ---------------------------------------------------------------------------------------
def _flink(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> list[str]:
    """Serve ``answers`` (path -> JSON body, or an int: that HTTP status) to control's
    REST calls; return the paths requested, in order."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        body = answers.get(request.url.path, 404)
        return httpx.Response(body) if isinstance(body, int) else httpx.Response(200, json=body)

    monkeypatch.setattr(control, "_rest", lambda settings: FlinkRest(
        "http://flink", transport=httpx.MockTransport(handler)))
    return seen


OVERVIEW = {"jobs": [
    {"jid": "old", "name": "gridlake-lakehouse", "state": "FINISHED", "start-time": 1},
    {"jid": "j1", "name": "gridlake-lakehouse", "state": "RUNNING", "start-time": 2},
    {"jid": "x", "name": "someone-else", "state": "RUNNING", "start-time": 3},
]}
CHECKPOINTS = {"counts": {"completed": 3, "failed": 1, "in_progress": 0, "restored": 0},
               "latest": {"completed": {"latest_ack_timestamp": 1234}},
               "history": [{"id": 3}, {"id": 2}]}


def test_status_health_and_history_from_one_checkpoints_fetch(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    exceptions = {"exceptionHistory": {"entries": [{"exceptionName": "java.lang.Boom"}]}}
    seen = _flink(monkeypatch, {"/jobs/overview": OVERVIEW, "/jobs/j1/checkpoints": CHECKPOINTS,
                                "/jobs/j1/exceptions": exceptions})
    st = control.status(settings)
    assert (st.flink_job_id, st.flink_state, st.checkpoints_completed,
            st.last_checkpoint_ms) == ("j1", "RUNNING", 3, 1234)
    seen.clear()
    assert control.health(settings) == {"state": "RUNNING", "checkpoints": CHECKPOINTS["counts"],
                                        "failures": ["java.lang.Boom"]}
    assert seen == ["/jobs/overview", "/jobs/j1/checkpoints", "/jobs/j1/exceptions"]
    seen.clear()
    assert control.checkpoint_history(settings) == [{"id": 3}, {"id": 2}]
    assert seen == ["/jobs/overview", "/jobs/j1/checkpoints"]


def test_health_and_history_when_flink_answers_partly(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flink(monkeypatch, {})  # nothing up
    assert control.health(settings) == {"state": None}
    assert control.checkpoint_history(settings) == []
    assert control.status(settings).flink_job_id is None
    _flink(monkeypatch, {"/jobs/overview": OVERVIEW, "/jobs/j1/checkpoints": 500})
    assert control.health(settings) == {"state": "RUNNING"}
    assert control.checkpoint_history(settings) == []
    _flink(monkeypatch, {"/jobs/overview": OVERVIEW, "/jobs/j1/checkpoints": CHECKPOINTS,
                         "/jobs/j1/exceptions": 500})
    assert control.health(settings) == {"state": "RUNNING", "checkpoints": CHECKPOINTS["counts"]}


def test_status_without_a_rest_endpoint(settings: GridLakeSettings) -> None:
    settings = settings.model_copy(update={
        "flink": settings.flink.model_copy(update={"rest_port": free_port()})})
    st = control.status(settings)
    assert (st.running, st.flink_job_id, st.flink_state) == (False, None, None)


def test_a_job_writes_the_lake_it_was_started_for(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "status", lambda s, name: control.JobStatus(
        name, os.getpid(), True))
    assert control.writes_lake(settings)  # this process names no lake root: counts as ours
    monkeypatch.setattr(control, "_job_lake_root", lambda pid: "/gridlake/test/other")
    assert not control.writes_lake(settings)
    monkeypatch.setattr(control, "status", lambda s, name: control.JobStatus(
        name, None, False, "j1", "RUNNING"))
    assert control.writes_lake(settings)  # Flink says it runs (remote, or no pid file)
