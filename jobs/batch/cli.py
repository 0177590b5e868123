"""``gridlake backfill ...``: recompute lake layers with Spark, as tracked jobs."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra.settings import load_settings
from jobs.batch.backfill import (
    BackfillError,
    BackfillRequest,
    Scope,
    TableResult,
    parse_day,
    planned_outputs,
    validate,
)
from jobs.batch.tracking import JobNotFound, JobState, JobStore

app = typer.Typer(help="Batch backfills (PySpark) on the lake's tables.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _request(start: str, end: str, layer: str, device_type: list[str], region: str | None,
             feeder: str | None) -> BackfillRequest:
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
    from jobs.batch.runner import execute, request_to_dict

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
    table = Table("id", "kind", "state", "progress", "rows", "created", "error")
    for j in JobStore(load_settings()).list():
        table.add_row(j.id, j.kind, j.state, f"{j.progress_pct:.0f} %", str(j.rows), j.created,
                      j.error or "")
    console.print(table)


@app.command()
def status(job_id: str) -> None:
    """State, progress and per-table figures of a job."""
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
    store = JobStore(load_settings())
    path = store.log_file(job_id)
    if not path.exists():
        raise _fail(f"no log for job {job_id!r}")
    console.print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]),
                  markup=False, highlight=False)


@app.command()
def cancel(job_id: str) -> None:
    """Stop a running job (tables it finished stay written; resume continues)."""
    try:
        _show(JobStore(load_settings()).cancel(job_id))
    except JobNotFound as err:
        raise _fail(f"no job {job_id!r}") from err


@app.command()
def resume(job_id: str) -> None:
    """Continue a failed or cancelled job in the background, skipping finished tables."""
    store = JobStore(load_settings())
    try:
        job = store.get(job_id)
    except JobNotFound as err:
        raise _fail(f"no job {job_id!r}") from err
    if job.state in ("running", "succeeded"):
        raise _fail(f"job {job_id} is {job.state}")
    store.launch(job)
    console.print(f"resumed job {job.id}")

