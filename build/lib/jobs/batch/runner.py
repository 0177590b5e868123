"""Process entry of a tracked batch job: ``python -m jobs.batch.runner <job id>``."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import date
from types import FrameType
from typing import Any

from infra.logs import configure_logging
from infra.settings import load_settings
from jobs.batch.backfill import BackfillRequest, Scope, TableResult, planned_outputs, run_backfill
from jobs.batch.serving_refresh import ServingResult
from jobs.batch.tracking import JobState, JobStore

log = logging.getLogger(__name__)


def request_from_dict(d: dict[str, Any]) -> BackfillRequest:
    """The backfill request stored with a job."""
    return BackfillRequest(
        start=date.fromisoformat(d["start"]), end=date.fromisoformat(d["end"]),
        from_layer=d.get("from_layer", "dwd"),
        scope=Scope(tuple(d.get("device_types", ())), d.get("region"), d.get("feeder")),
    )


def request_to_dict(r: BackfillRequest) -> dict[str, Any]:
    """A backfill request as stored with a job."""
    return {
        "start": r.start.isoformat(), "end": r.end.isoformat(), "from_layer": r.from_layer,
        "device_types": list(r.scope.device_types), "region": r.scope.region,
        "feeder": r.scope.feeder,
    }


def execute(
    store: JobStore, job: JobState, on_update: Callable[[JobState], None] | None = None
) -> JobState:
    """Run ``job`` in this process, recording state and progress; returns the final state.

    Args:
        store: Where the job's state lives.
        job: The job (queued, or failed/cancelled for a resume).
        on_update: Called after each table (progress display).

    """
    settings = store.settings
    job.state, job.pid, job.error = "running", os.getpid(), None
    store.save(job)

    def on_table(res: TableResult, done: int, total: int) -> None:
        job.tables_total = total
        job.tables_done.append(res.table)
        job.rows += res.rows
        job.partitions += res.partitions
        job.results.append(vars(res))
        store.save(job)
        if on_update is not None:
            on_update(job)

    def on_serving(res: ServingResult) -> None:
        # the table's figures, from this attempt or (after a resume) an earlier one
        entry = next((r for r in reversed(job.results) if r.get("table") == res.table), None)
        if entry is not None:
            entry["serving_rows"], entry["serving_deleted"] = res.rows, res.deleted
            store.save(job)
        if on_update is not None:
            on_update(job)

    try:
        request = request_from_dict(job.request)

        job.tables_total = len(planned_outputs(request))
        store.save(job)
        # a job that failed in the serving refresh has every table done: a resume then
        # redoes only the refresh
        run_backfill(settings, request, done=tuple(job.tables_done), on_table=on_table,
                     on_serving=on_serving)
        job.state = "succeeded"
    except Exception as exc:  # noqa: BLE001 - the job records why it failed
        log.exception("job %s failed", job.id)
        job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
    job.pid = None
    store.save(job)
    return job


def main(argv: list[str] | None = None) -> int:
    """Run the job named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    configure_logging()
    store = JobStore(load_settings())
    job = store.get(args[0])

    def cancelled(signum: int, frame: FrameType | None) -> None:
        job.state, job.error, job.pid = "cancelled", "cancelled by request", None
        store.save(job)
        os._exit(130)  # noqa: SLF001 - Spark's JVM threads would keep a normal exit waiting

    signal.signal(signal.SIGTERM, cancelled)
    return 0 if execute(store, job).state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
