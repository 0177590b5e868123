"""Tracked batch jobs: an id, a state, progress and a log per job, in ``<home>/jobs/<id>/``.

A job runs in its own process (``python -m jobs.batch.runner <id>``); the files are its
only interface, so the CLI and the API report on jobs they did not start, and a job that
crashes leaves its state behind. ``state.json`` is replaced atomically on each update.

States: ``queued`` → ``running`` → ``succeeded`` | ``failed`` (with ``error``) |
``cancelled``. A ``running`` job whose process is gone is reported ``failed``
("process died") and can be resumed: tables it finished are skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.settings import REPO_ROOT, GridLakeSettings

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class JobNotFound(KeyError):
    """No job with that id."""


class TooManyJobs(RuntimeError):
    """As many jobs as allowed are queued or running already."""

    def __init__(self, active: list[JobState], limit: int) -> None:
        super().__init__(f"{len(active)} jobs are queued or running (at most {limit}): "
                         + ", ".join(j.id for j in active[:5]))
        self.active = active
        self.limit = limit


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class JobState:
    """Everything known about one job.

    Attributes:
        id: Job id.
        kind: ``backfill`` or ``import``.
        request: The job's parameters (JSON-able).
        state: queued, running, succeeded, failed or cancelled.
        created: Creation time (UTC, ISO 8601).
        updated: Last update.
        pid: Process running the job (while running).
        tables_total: Tables planned.
        tables_done: Names of the tables written.
        rows: Rows written so far.
        partitions: Partitions written so far.
        error: Why the job failed.
        results: Per-table figures.

    """

    id: str
    kind: str
    request: dict[str, Any]
    state: str = "queued"
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    pid: int | None = None
    tables_total: int = 0
    tables_done: list[str] = field(default_factory=list)
    rows: int = 0
    partitions: int = 0
    error: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def progress_pct(self) -> float:
        """Share of the planned tables written."""
        if self.state == "succeeded":
            return 100.0
        return 100.0 * len(self.tables_done) / self.tables_total if self.tables_total else 0.0


class JobStore:
    """The jobs directory of one GridLake home."""

    def __init__(self, settings: GridLakeSettings) -> None:
        self.settings = settings
        self.root = settings.home / "jobs"

    def path(self, job_id: str) -> Path:
        """Directory of a job."""
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise JobNotFound(job_id)
        return self.root / job_id

    def log_file(self, job_id: str) -> Path:
        """The job's log."""
        return self.path(job_id) / "job.log"

    def create(self, kind: str, request: dict[str, Any]) -> JobState:
        """A new queued job."""
        job = JobState(id=f"{kind[:2]}-{uuid.uuid4().hex[:10]}", kind=kind, request=request)
        self.path(job.id).mkdir(parents=True)
        self.save(job)
        return job

    def save(self, job: JobState) -> None:
        """Write the state atomically."""
        job.updated = _now()
        target = self.path(job.id) / "state.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(job), indent=1))
        tmp.replace(target)

    def get(self, job_id: str) -> JobState:
        """The job's state (a running job whose process died is reported failed).

        Raises:
            JobNotFound: No such job.

        """
        target = self.path(job_id) / "state.json"
        if not target.exists():
            raise JobNotFound(job_id)
        job = JobState(**json.loads(target.read_text()))
        if job.state == "running" and not _alive(job.pid):
            job.state, job.error = "failed", "process died (resume it to continue)"
        return job

    def list(self) -> list[JobState]:
        """Every job, newest first."""
        if not self.root.exists():
            return []
        jobs = [self.get(p.name) for p in self.root.iterdir() if (p / "state.json").exists()]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def launch(self, job: JobState) -> JobState:
        """Run ``job`` in a detached process; returns it (with the pid)."""
        log = self.log_file(job.id).open("ab")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.batch.runner", job.id],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        job.pid, job.state, job.error = proc.pid, "running", None
        self.save(job)
        return job

    def launch_limited(self, kind: str, request: dict[str, Any], max_active: int) -> JobState:
        """Create and launch a job unless ``max_active`` jobs are queued or running.

        The count and the launch happen under a lock file of the jobs directory, so
        concurrent launches (API workers, the CLI) cannot exceed the limit together. A
        launch that fails leaves the job ``failed``, not ``queued`` (it would count).

        Raises:
            TooManyJobs: The limit is reached.

        """
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".launch.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            active = [j for j in self.list() if j.state not in TERMINAL]
            if len(active) >= max_active:
                raise TooManyJobs(active, max_active)
            job = self.create(kind, request)
            try:
                return self.launch(job)
            except BaseException as err:
                job.state, job.error = "failed", f"launch failed: {err}"
                self.save(job)
                raise

    def cancel(self, job_id: str) -> JobState:
        """Stop a running job (its process group); tables it finished stay written."""
        job = self.get(job_id)
        if job.state in TERMINAL:
            return job
        if job.pid and _alive(job.pid):
            os.killpg(job.pid, signal.SIGTERM)
        job.state, job.error = "cancelled", "cancelled by request"
        self.save(job)
        return job


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True
