"""``gridlake backfill ...``: recompute lake layers with Spark, as tracked jobs; import history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from jobs.batch.backfill import BackfillRequest
    from jobs.batch.history.load import ImportResult
    from jobs.batch.history.plan import ImportPlan
    from jobs.batch.tracking import JobState

app = typer.Typer(help="Batch backfills (PySpark) on the lake's tables.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _request(start: str, end: str, layer: str, device_type: list[str], region: str | None,
             feeder: str | None) -> BackfillRequest:
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from jobs.batch.backfill import BackfillRequest, Scope, parse_day, validate

    request = BackfillRequest(
        start=parse_day(start, "--start"), end=parse_day(end, "--end"), from_layer=layer,
        scope=Scope(tuple(device_type), region, feeder),
    )
    validate(request)
    return request


def _show(job: JobState) -> None:
    console.print(f"job {job.id} [{job.kind}] {job.state} — {job.progress_pct:.0f} % "
                  f"({len(job.tables_done)}/{job.tables_total} tables, {job.rows} rows, "
                  f"{job.partitions} partitions)")
    if job.error:
        console.print(f"  error: {job.error}")


@app.command()
def run(
    start: str = typer.Option(..., help="First day (UTC), YYYY-MM-DD."),
    end: str = typer.Option(..., help="Day after the last (exclusive), YYYY-MM-DD."),
    layer: str = typer.Option("dwd", help="Recompute this layer and all downstream: "
                              "dim, dwd, dws or ads."),
    device_type: list[str] = typer.Option([], help="Only tables fed by this device type "
                                          "(repeatable)."),
    region: str | None = typer.Option(None, help="Only this region's devices."),
    feeder: str | None = typer.Option(None, help="Only this feeder's devices."),
    dry_run: bool = typer.Option(False, help="Say what would be rewritten; write nothing."),
    detach: bool = typer.Option(False, help="Run as a background job; print its id."),
) -> None:
    """Recompute DWD/DWS/ADS (from ``--layer`` down) for a range of days from ODS."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.backfill import BackfillError, planned_outputs, planned_serving

    # lazy: see above
    from jobs.batch.runner import execute, request_to_dict

    # lazy: see above
    from jobs.batch.tracking import JobStore

    try:
        request = _request(start, end, layer, device_type, region, feeder)
    except BackfillError as err:
        raise _fail(str(err)) from err
    outputs = planned_outputs(request)
    if dry_run:
        table = Table("table", "layer", "partitions (dt)", title="backfill plan (dry run)")
        days = request.days
        for o in outputs:
            parts = "all (rebuilt)" if o.table.layer == "dim" else (
                f"{days[0]} … {days[-1]} ({len(days)})" if len(days) > 1 else days[0])
            table.add_row(o.table.name, o.table.layer, parts)
        console.print(table)
        console.print(f"{len(outputs)} tables would be rewritten; rows of these days that "
                      "the recomputation no longer produces would be deleted.")
        for target in planned_serving(request, outputs):
            console.print(f"serving copy: {target.describe()}")
        return
    settings = load_settings()
    store = JobStore(settings)
    job = store.create("backfill", request_to_dict(request))
    if detach:
        store.launch(job)
        console.print(f"started job {job.id}; follow it with `gridlake backfill status {job.id}`")
        return
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} tables · {task.fields[rows]} rows"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"backfill {job.id}", total=len(outputs), rows=0)
        job = execute(store, job, lambda j: bar.update(
            task, completed=len(j.tables_done), rows=j.rows))
    _show(job)
    if job.state != "succeeded":
        raise typer.Exit(1)


@app.command("list")
def list_jobs() -> None:
    """Every backfill job, newest first."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.tracking import JobStore

    table = Table("id", "kind", "state", "progress", "rows", "created", "error")
    for j in JobStore(load_settings()).list():
        table.add_row(j.id, j.kind, j.state, f"{j.progress_pct:.0f} %", str(j.rows), j.created,
                      j.error or "")
    console.print(table)


@app.command()
def status(job_id: str) -> None:
    """State, progress and per-table figures of a job."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.backfill import TableResult

    # lazy: see above
    from jobs.batch.tracking import JobNotFound, JobStore

    try:
        job = JobStore(load_settings()).get(job_id)
    except JobNotFound as err:
        raise _fail(f"no job {job_id!r}") from err
    _show(job)
    for r in job.results:
        res = TableResult(**r)
        console.print(f"  {res.table}: {res.rows} rows, {res.partitions} partitions, "
                      f"{res.deleted} deleted, {res.seconds} s")


@app.command()
def log(job_id: str, lines: int = typer.Option(40, help="Lines from the end.")) -> None:
    """The end of a job's log."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.tracking import JobStore

    store = JobStore(load_settings())
    path = store.log_file(job_id)
    if not path.exists():
        raise _fail(f"no log for job {job_id!r}")
    console.print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]),
                  markup=False, highlight=False)


@app.command()
def cancel(job_id: str) -> None:
    """Stop a running job (tables it finished stay written; resume continues)."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.tracking import JobNotFound, JobStore

    try:
        _show(JobStore(load_settings()).cancel(job_id))
    except JobNotFound as err:
        raise _fail(f"no job {job_id!r}") from err


@app.command()
def resume(job_id: str) -> None:
    """Continue a failed or cancelled job in the background, skipping finished tables."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.tracking import JobNotFound, JobStore

    store = JobStore(load_settings())
    try:
        job = store.get(job_id)
    except JobNotFound as err:
        raise _fail(f"no job {job_id!r}") from err
    if job.state in ("running", "succeeded"):
        raise _fail(f"job {job_id} is {job.state}")
    store.launch(job)
    console.print(f"resumed job {job.id}")


def _days(days: list[str]) -> str:
    if not days:
        return "-"
    return f"{days[0]} … {days[-1]} ({len(days)})" if len(days) > 1 else days[0]


def _show_plan(plan: ImportPlan, title: str) -> None:
    table = Table("file", "format", "partition", "rows", "→ ODS", "→ quarantine",
                  "ODS days (dt)", "quarantine days (dt)", title=title)
    for f in plan.files:
        if f.same_as is not None:
            table.add_row(str(f.path), f.format, str(f.kafka_partition), "-", "-", "-",
                          f"same bytes as {f.same_as}: skipped", "")
            continue
        table.add_row(str(f.path), f.format, str(f.kafka_partition), str(f.rows),
                      str(f.valid), str(f.quarantined), _days(sorted(f.ods_days)),
                      _days(sorted(f.quarantine_days)))
    console.print(table)
    if plan.quarantined:
        reasons = Table("reason", "rows", title="quarantine reasons")
        for reason, n in sorted(plan.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            reasons.add_row(reason, str(n))
        console.print(reasons)
        for f in plan.imported:
            where = "line" if f.format == "csv" else "row"
            for line, reason in f.examples:
                console.print(f"  {f.path} {where} {line}: {reason}", markup=False,
                              highlight=False)
            if f.quarantined > len(f.examples):
                console.print(f"  {f.path}: … {f.quarantined - len(f.examples)} more",
                              markup=False, highlight=False)


@app.command("import")
def import_history(
    files: list[Path] = typer.Argument(..., metavar="FILE...",
                                      help="CSV or Parquet files of one message kind."),
    kind: str = typer.Option(..., help="Message kind (contract name), e.g. meter_reading."),
    fmt: str | None = typer.Option(None, "--format", help="csv or parquet for every file "
                                   "(default: from each file's extension)."),
    dry_run: bool = typer.Option(False, help="Check the files and say what would be written; "
                                 "write nothing."),
    then_backfill: bool = typer.Option(False, help="Then recompute the imported days "
                                       "(`gridlake backfill run`)."),
) -> None:
    """Import history files into ``ods_<kind>``; bad rows go to ``ods_quarantine``."""
    # lazy: Spark jobs, the job store and settings; `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.batch.history.files import HistoryError

    # lazy: see above
    from jobs.batch.history.load import check_stream_stopped, run_import

    # lazy: see above
    from jobs.batch.history.plan import followup_request, plan_import

    settings = load_settings()
    try:
        plan = plan_import(files, kind, fmt, settings.kafka.topic_prefix)
    except HistoryError as err:
        raise _fail(str(err)) from err
    _show_plan(plan, "history import (dry run)" if dry_run else "history import")
    summary = (f"{plan.rows} rows: {plan.valid} to ods_{plan.kind}, {plan.quarantined} to "
               f"ods_quarantine (kafka_topic {plan.topic})")
    if dry_run:
        console.print(f"{summary}; dry run, nothing written.")
        return
    try:
        check_stream_stopped(settings)
    except HistoryError as err:
        raise _fail(str(err)) from err
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} rows · {task.fields[files]} files"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"import {plan.kind}", total=plan.rows, files=0)

        def progress(res: ImportResult) -> None:
            bar.update(task, completed=res.rows, files=res.files)

        try:
            result = run_import(settings, plan, on_progress=progress)
        except HistoryError as err:
            raise _fail(str(err)) from err
    console.print(f"imported {result.files} files: {result.ods_rows} rows to ods_{plan.kind}, "
                  f"{result.quarantined} to ods_quarantine, {result.commits} commits, "
                  f"{result.seconds} s")
    request = followup_request(plan)
    if request is None:
        return
    types = "".join(f" --device-type {t}" for t in request.scope.device_types)
    command = (f"gridlake backfill run --start {request.start} --end {request.end} "
               f"--layer {request.from_layer}{types}")
    if not then_backfill:
        console.print(f"recompute the imported days with: {command}")
        return
    console.print(f"recomputing: {command}")
    run(start=request.start.isoformat(), end=request.end.isoformat(),
        layer=request.from_layer, device_type=list(request.scope.device_types), region=None,
        feeder=None, dry_run=False, detach=False)
