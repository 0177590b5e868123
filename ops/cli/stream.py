"""``gridlake stream ...``: start, stop and inspect the streaming jobs."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from lakehouse.time import from_ms

if TYPE_CHECKING:
    from infra.settings import GridLakeSettings
    from jobs.streaming.monitor import JobReport

app = typer.Typer(help="Streaming jobs (PyFlink).", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


@app.command()
def start(
    name: str = typer.Argument("lakehouse", help="Job name."),
    wait: bool = typer.Option(True, help="Wait until the Flink job is RUNNING."),
    timeout: float = typer.Option(240.0, help="Seconds to wait."),
    resume: bool = typer.Option(
        True, help="Resume from the savepoint of the last `stream stop` (if any)."
    ),
) -> None:
    """Start a streaming job detached.

    It resumes from the last stop's savepoint, else from the Kafka offsets committed at
    its last checkpoint.
    """
    # lazy: the streaming modules (httpx, Flink REST, psutil); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.streaming import control

    settings = load_settings()
    try:
        pid = control.start(settings, name, resume=resume)
        if wait:
            st = control.wait_running(settings, name, timeout=timeout)
            console.print(f"{name}: pid {pid}, Flink job {st.flink_job_id} {st.flink_state}")
        else:
            console.print(f"{name}: started, pid {pid}")
    except (KeyError, FileNotFoundError, RuntimeError, TimeoutError) as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err


@app.command()
def stop(
    name: str = typer.Argument("lakehouse", help="Job name."),
    savepoint: bool = typer.Option(True, help="Stop through Flink with a savepoint."),
) -> None:
    """Stop a streaming job (with a savepoint that the next start resumes from)."""
    # lazy: the streaming modules (httpx, Flink REST, psutil); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from jobs.streaming import control

    settings = load_settings()
    stopped = control.stop(settings, name, savepoint=savepoint)
    where = control.last_savepoint(settings, name) if savepoint else None
    console.print(
        f"{name}: {'stopped' if stopped else 'was not running'}"
        + (f", savepoint {where}" if stopped and where else "")
    )


@app.command()
def status(
    name: str = typer.Argument("lakehouse", help="Job name."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
    verbose: bool = typer.Option(
        False, "--verbose", help="The full report: checkpoints, records per sink and "
        "operator, lag per topic, last commit per table (reads every table's timeline)."),
    group: str = typer.Option(
        None, "--group", help="Kafka consumer group (default: the job's own)."
    ),
    topic: list[str] = typer.Option(
        None, "--topic", help="Full topic name whose lag to show (repeatable; default: "
        "the job's topics)."
    ),
    timeout: float = typer.Option(5.0, help="Seconds per request to each service."),
) -> None:
    """Job state, uptime, last checkpoint, Kafka lag and rows/s (`--verbose`: everything).

    Exit code 1 when the job is not running. A service that cannot be reached is named
    with its error; the other sections are still shown.
    """
    # lazy: settings and the streaming monitor (httpx, Kafka, lake); `--help` needs none
    from infra.settings import load_settings

    settings = load_settings()
    if not verbose:
        summary = job_summary(settings, name, timeout)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            for key, value in summary.items():
                console.print(f"{key:>16}: {value if value is not None else '-'}",
                              highlight=False)
        if not summary["running"]:
            raise typer.Exit(1)
        return
    # lazy: see above
    from jobs.streaming.monitor import job_report

    report = job_report(settings, name, group_id=group, topics=topic or None,
                        timeout_s=timeout)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _render_report(report)
    if not report.job.running:
        raise typer.Exit(1)


def source_rate(job: dict[str, Any]) -> tuple[float | None, int | None]:
    """Uptime (s) and records read by the sources, from Flink's ``/jobs/<id>`` answer.

    A source vertex's ``write-records`` counts what it emitted; summed over the sources
    it is the rows the job has taken in since it started.
    """
    duration = job.get("duration")
    uptime = duration / 1000 if isinstance(duration, int | float) and duration > 0 else None
    total = None
    for v in job.get("vertices") or []:
        if str(v.get("name", "")).startswith("Source"):
            written = (v.get("metrics") or {}).get("write-records")
            if isinstance(written, int):
                total = (total or 0) + written
    return uptime, total


def job_summary(settings: GridLakeSettings, name: str, timeout_s: float) -> dict[str, Any]:
    """The short status view: a few lines, no lake reads (see ``--verbose``)."""
    # lazy: the streaming modules (httpx, Flink REST, Kafka admin)
    from infra.kafka_lag import KafkaUnavailableError, consumer_lag

    # lazy: see above
    from jobs.streaming import control

    # lazy: see above
    from jobs.streaming.flink_rest import FlinkRest, FlinkUnavailable

    # lazy: see above
    from jobs.streaming.monitor import JOB_SOURCES

    st = control.status(settings, name)
    out: dict[str, Any] = {
        "job": name, "running": st.running, "pid": st.pid, "state": st.flink_state,
        "uptime": None, "last checkpoint": None, "Kafka lag": None, "rows/s": None,
        "log": st.log_file,
    }
    if st.last_checkpoint_ms:
        age = max(0.0, time.time() - st.last_checkpoint_ms / 1000)
        out["last checkpoint"] = f"{_when(st.last_checkpoint_ms)} ({age:.0f} s ago)"
    if st.flink_job_id:
        try:
            with FlinkRest(control.rest_url(settings), timeout_s) as rest:
                uptime, rows = source_rate(rest.get(f"/jobs/{st.flink_job_id}"))
            if uptime:
                out["uptime"] = f"{uptime / 60:.1f} min"
                if rows is not None:
                    out["rows/s"] = round(rows / uptime, 1)
        except FlinkUnavailable as err:
            out["uptime"] = f"unknown ({err})"
    source = JOB_SOURCES.get(name)
    if source is not None:
        try:
            lags = consumer_lag(settings, source.group_id(settings),
                                source.topic_names(settings), timeout_s)
            out["Kafka lag"] = sum(t.lag or 0 for t in lags)
        except KafkaUnavailableError as err:
            out["Kafka lag"] = f"unknown ({err})"
    return out


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return from_ms(ms).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _instant(instant: str | None) -> str:
    """``20240101120000123`` -> ``2024-01-01 12:00:00.123`` (Hudi's timeline time zone)."""
    if not instant or len(instant) < 14:
        return instant or "-"
    i = instant
    return f"{i[:4]}-{i[4:6]}-{i[6:8]} {i[8:10]}:{i[10:12]}:{i[12:14]}" + (
        f".{i[14:]}" if len(i) > 14 else ""
    )


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _num(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _render_report(report: JobReport) -> None:
    """Print a :class:`~jobs.streaming.monitor.JobReport` as rich tables."""
    job = report.job
    state = "[green]running[/]" if job.running else "[red]not running[/]"
    flink = (
        f"Flink job {job.flink_job_id} {job.flink_state}" if job.flink_job_id else "no Flink job"
    )
    console.print(f"[bold]{job.name}[/]: {state}, pid {job.pid or '-'}, {flink}")
    console.print(f"log: {job.log_file}", highlight=False)

    cps = report.checkpoints
    if cps is not None:
        table = Table(title="checkpoints", title_justify="left")
        for col in ("completed", "failed", "in progress", "last id", "last end (UTC)",
                    "duration", "state size", "checkpointed"):
            table.add_column(col, justify="right")
        last = cps.last_completed
        table.add_row(
            _num(cps.completed), _num(cps.failed), _num(cps.in_progress),
            str(last.id) if last else "-", _when(last.end_ms if last else None),
            f"{last.duration_ms} ms" if last and last.duration_ms is not None else "-",
            _size(last.state_size if last else None),
            _size(last.checkpointed_size if last else None),
        )
        console.print(table)
        for cp in cps.in_flight:
            console.print(f"  checkpoint {cp.id} in progress since {_when(cp.trigger_ms)}")
        if cps.last_failed is not None:
            console.print(f"  last failed: {cps.last_failed.id} at "
                          f"{_when(cps.last_failed.end_ms)}: {cps.last_failed.failure}",
                          highlight=False)

    if report.sinks:
        table = Table(title="records per sink, by layer", title_justify="left")
        for col in ("layer", "sink", "records in"):
            table.add_column(col, justify="right" if col == "records in" else "left")
        for layer, sinks in report.sinks_by_layer().items():
            for s in sinks:
                table.add_row(layer, s.table, _num(s.records_in))
        console.print(table)
    if report.operators:
        table = Table(title="operators (Flink vertices)", title_justify="left")
        table.add_column("vertex", max_width=72)
        for col in ("layers", "par.", "status", "records in", "records out"):
            table.add_column(col, justify="right" if col.startswith("records") else "left")
        for op in report.operators:
            table.add_row(op.name, ",".join(op.layers) or "-", str(op.parallelism), op.status,
                          _num(op.records_in), _num(op.records_out))
        console.print(table)

    if report.lag:
        table = Table(title=f"Kafka lag of group {report.group_id} "
                      f"(total {report.total_lag:,})", title_justify="left")
        for col in ("topic", "partitions", "end offset", "committed", "lag"):
            table.add_column(col, justify="left" if col == "topic" else "right")
        for t in report.lag:
            if not t.exists:
                table.add_row(t.topic, "[yellow]no topic[/]", "-", "-", "-")
                continue
            note = f" ({t.uncommitted} uncommitted)" if t.uncommitted else ""
            table.add_row(t.topic, f"{len(t.partitions)}{note}", _num(t.end_offset),
                          _num(t.committed), _num(t.lag))
        console.print(table)

    if report.commits:
        table = Table(title="last commit per table", title_justify="left")
        for col in ("layer", "table", "state", "instant", "action", "completed"):
            table.add_column(col)
        for c in report.commits:
            state = c.state if c.state == "ok" else f"[yellow]{c.state}[/]"
            table.add_row(c.layer, c.table, state, _instant(c.instant), c.action or "-",
                          _instant(c.completed))
        console.print(table)

    for piece, message in report.errors.items():
        console.print(f"[yellow]{piece}:[/] {message}", highlight=False)
