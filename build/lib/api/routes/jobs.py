"""Backfill jobs: launch, list, progress, log, cancel.

The jobs are the tracked batch jobs of :mod:`jobs.batch.tracking` (the same ones
``gridlake backfill`` runs): the API validates a request with
:func:`jobs.batch.backfill.validate` (422 with its message), creates the job and launches it
in its own process, and reports from the job's files, so it sees jobs started from the CLI
too. A region-scoped user may only launch backfills limited to one of their regions and
sees only such jobs.

Beyond what the CLI checks, a backfill through the API is at most ``api.backfill_max_days``
long, names only a region or feeder the device catalog knows (the registry topic, so the
check needs Kafka, not the lake: while the catalog is not loaded such a request is a 503),
and is refused with 429 while ``api.max_active_jobs`` jobs are queued or running.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from api.context import Ctx, require
from api.security import Perm, Principal
from api.validation import Offset
from jobs.batch.backfill import BackfillError, BackfillRequest, Scope, validate
from jobs.batch.runner import request_to_dict
from jobs.batch.tracking import JobNotFound, JobState, TooManyJobs
from jobs.transforms.pipeline import LAYERS

router = APIRouter(tags=["jobs"])

Viewer = Annotated[Principal, Depends(require(Perm.READ_JOBS))]
Runner = Annotated[Principal, Depends(require(Perm.RUN_JOBS))]
JobId = Annotated[str, Path(pattern=r"^[a-z]{2}-[0-9a-f]{10}$", examples=["ba-0123456789"])]
#: Seconds a client refused for too many jobs is told to wait.
RETRY_AFTER_S = 30


class BackfillIn(BaseModel):
    """What to recompute: whole UTC days ``[start, end)`` from ``layer`` down."""

    start: date = Field(examples=["2026-03-01"])
    end: date = Field(description="Day after the last (exclusive).", examples=["2026-03-03"])
    layer: str = Field(default="dwd", description=f"One of {', '.join(LAYERS)}.",
                       examples=["dwd"])
    device_types: list[str] = Field(default_factory=list, max_length=10,
                                    examples=[["meter"]])
    region: str | None = Field(default=None, max_length=64, examples=["R1"])
    feeder: str | None = Field(default=None, max_length=64)


class JobOut(BaseModel):
    """A tracked job."""

    id: str
    kind: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled.")
    progress_pct: float
    tables_total: int
    tables_done: list[str]
    rows: int
    partitions: int
    created: str
    updated: str
    error: str | None
    request: dict[str, Any]
    results: list[dict[str, Any]]


class JobPage(BaseModel):
    """A page of jobs, newest first."""

    total: int
    limit: int
    offset: int
    jobs: list[JobOut]


class JobLog(BaseModel):
    """The end of a job's log."""

    id: str
    lines: list[str]


def _out(j: JobState) -> JobOut:
    return JobOut(id=j.id, kind=j.kind, state=j.state, progress_pct=round(j.progress_pct, 1),
                  tables_total=j.tables_total, tables_done=j.tables_done, rows=j.rows,
                  partitions=j.partitions, created=j.created, updated=j.updated,
                  error=j.error, request=j.request, results=j.results)


def _visible(who: Principal, job: JobState) -> bool:
    return who.unscoped or job.request.get("region") in who.regions


def _field_of(message: str) -> str:
    """The request field a backfill validation message is about."""
    for word, name in (("layer", "layer"), ("device type", "device_types"),
                       ("empty range", "end"), ("range starts", "start"),
                       ("range ends", "end"), ("range of", "end"), ("feeder", "feeder"),
                       ("region", "region")):
        if word in message:
            return name
    return "body"


def _get(c: Any, who: Principal, job_id: str) -> JobState:
    try:
        job = c.jobs.get(job_id)
    except JobNotFound:
        raise HTTPException(404, f"job {job_id!r} not found") from None
    if not _visible(who, job):
        raise HTTPException(403, f"job {job_id!r} is outside your regions")
    return job


def _known_topology(c: Any, body: BackfillIn) -> tuple[set[str] | None,
                                                     dict[str, str | None] | None]:
    """Regions and feeders (→ region) of the device catalog, when the request names one.

    Raises:
        HTTPException: 503 while the catalog has not read the registry (Kafka down).

    """
    if body.region is None and body.feeder is None:
        return None, None
    if not c.catalog.loaded:
        raise HTTPException(503, "the device catalog is not loaded yet (Kafka): cannot check "
                            "the region or feeder", {"Retry-After": "5"})
    feeders = {d["device_id"]: d.get("region_id") for d in c.catalog.devices()
               if d.get("device_type") == "feeder"}
    return c.catalog.regions(), feeders


@router.post("/jobs/backfill", response_model=JobOut, status_code=202,
             summary="Launch a backfill")
async def launch_backfill(body: BackfillIn, c: Ctx, who: Runner) -> JobOut:
    """Validate, create and start a backfill job in the background.

    Follow it with ``GET /jobs/{id}``. A region-scoped user must name one of their regions.
    The range is at most ``api.backfill_max_days`` days; ``region`` and ``feeder`` must be
    known to the device registry (422); while ``api.max_active_jobs`` jobs are queued or
    running, a launch is refused (429 with ``Retry-After``).
    """
    if not who.unscoped:
        if body.region is None:
            raise HTTPException(403, "region: your backfills must name one of your regions")
        who.require_region(body.region, f"region {body.region!r}")
    request = BackfillRequest(start=body.start, end=body.end, from_layer=body.layer,
                              scope=Scope(tuple(body.device_types), body.region, body.feeder))
    cfg = c.settings.api
    regions, feeders = _known_topology(c, body)
    try:
        validate(request, max_days=cfg.backfill_max_days, regions=regions, feeders=feeders)
    except BackfillError as err:
        raise HTTPException(422, f"{_field_of(str(err))}: {err}") from None

    def start() -> JobState:
        job: JobState = c.jobs.launch_limited("backfill", request_to_dict(request),
                                              cfg.max_active_jobs)
        return job

    try:
        job = await asyncio.to_thread(start)
    except TooManyJobs as err:
        raise HTTPException(429, str(err), {"Retry-After": str(RETRY_AFTER_S)}) from None
    c.audit(who, "job_launch", job.id, request=job.request)
    return _out(job)


@router.get("/jobs", response_model=JobPage, summary="List jobs")
async def list_jobs(
    c: Ctx, who: Viewer,
    state: Annotated[Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
                     Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> JobPage:
    """Jobs you may see, newest first."""
    jobs = [j for j in await asyncio.to_thread(c.jobs.list)
            if _visible(who, j) and (state is None or j.state == state)]
    return JobPage(total=len(jobs), limit=limit, offset=offset,
                   jobs=[_out(j) for j in jobs[offset:offset + limit]])


@router.get("/jobs/{job_id}", response_model=JobOut, summary="State and progress of a job")
async def get_job(job_id: JobId, c: Ctx, who: Viewer) -> JobOut:
    """State, progress (tables written of those planned) and per-table figures."""
    return _out(await asyncio.to_thread(_get, c, who, job_id))


@router.get("/jobs/{job_id}/log", response_model=JobLog, summary="The end of a job's log")
async def job_log(job_id: JobId, c: Ctx, who: Viewer,
                  lines: Annotated[int, Query(ge=1, le=5000)] = 200) -> JobLog:
    """The last ``lines`` lines of the job's log."""
    job = await asyncio.to_thread(_get, c, who, job_id)
    path = c.jobs.log_file(job.id)

    def tail() -> list[str]:
        if not path.exists():
            return []
        return path.read_text(errors="replace").splitlines()[-lines:]

    return JobLog(id=job.id, lines=await asyncio.to_thread(tail))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a job")
async def cancel_job(job_id: JobId, c: Ctx, who: Runner) -> JobOut:
    """Stop a running job; cancelling a finished one changes nothing.

    Tables it finished stay written; it can be resumed from the CLI.
    """
    await asyncio.to_thread(_get, c, who, job_id)
    job = await asyncio.to_thread(c.jobs.cancel, job_id)
    c.audit(who, "job_cancel", job_id, state=job.state)
    return _out(job)
