"""Unit tests of the stream job control helpers (no services)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobs.streaming import control
from jobs.streaming.control import _written_savepoint

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
