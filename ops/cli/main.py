"""The ``gridlake`` console command (``pyproject.toml`` points its script here).

Own commands: ``setup``, ``up``, ``down``, ``status`` (the local stack), ``run`` and
``stop`` (the whole demo platform), ``bench``. Every other group is a module of
:mod:`ops.cli` added with ``add_typer`` at the end of this one.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence

import typer
from rich.console import Console
from rich.table import Table

from infra.logs import configure_logging
from infra.settings import GridLakeSettings, load_settings
from infra.stack.base import ServiceStatus
from infra.stack.errors import StackError
from infra.stack.manager import Stack
from ops.bench.harness import BENCHMARKS, run_benchmarks
from ops.cli import api, backfill, ml, service, simulate, stream, tables
from ops.run import run_all, stop_all

app = typer.Typer(
    name="gridlake",
    help="GridLake: stream-batch platform for power-grid telemetry.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Configure logging for every command."""
    configure_logging("DEBUG" if verbose else None)
    # kafka-python reports every refused connection; the stack's own checks say it better.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _settings() -> GridLakeSettings:
    return load_settings()


def _fail(err: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
    raise typer.Exit(1)


def _table(statuses: Sequence[ServiceStatus], title: str) -> Table:
    table = Table(title=title)
    for col in ("service", "role", "address", "pid", "health", "detail"):
        table.add_column(col)
    for s in statuses:
        health = "[green]healthy[/]" if s.healthy else "[red]down[/]"
        pid = str(s.pid) if s.pid else ("external" if not s.managed else "-")
        table.add_row(s.name, s.role, s.address, pid, health, s.detail)
    return table


@app.command()
def setup() -> None:
    """Check prerequisites, resolve jars with Maven, install redis-server if missing."""
    try:
        built = Stack(_settings()).setup()
    except StackError as err:
        _fail(err)
    console.print(f"setup done; jars rebuilt: {', '.join(built) or 'none (up to date)'}")


@app.command()
def up(
    timeout: float = typer.Option(180.0, help="Seconds to wait for readiness."),
) -> None:
    """Start every managed service (in dependency order), wait until ready, create topics."""
    t0 = time.monotonic()
    try:
        result = Stack(_settings()).up(timeout_s=timeout)
    except StackError as err:
        _fail(err)
    took = time.monotonic() - t0
    started = ", ".join(result.started) or "nothing (already up)"
    console.print(_table(result.statuses, f"GridLake up in {took:.1f} s; started: {started}"))
    if result.topics_created:
        console.print(f"created topics: {', '.join(result.topics_created)}")


@app.command()
def down() -> None:
    """Stop the services GridLake started; data is kept for the next ``up``."""
    try:
        stopped = Stack(_settings()).down()
    except StackError as err:
        _fail(err)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Show every service: address, pid and health (exit 1 when any is unhealthy)."""
    statuses = Stack(_settings()).status()
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
    else:
        console.print(_table(statuses, "GridLake status"))
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


@app.command()
def run() -> None:
    """Start everything (stack, streaming job, API, simulator) and print where to look."""
    settings = _settings()
    try:
        result = run_all(settings)
    except Exception as err:  # noqa: BLE001 - one-line error for the operator
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    table = Table(title="GridLake is running")
    table.add_column("what")
    table.add_column("where")
    for name, link in result.links.items():
        table.add_row(name, link)
    console.print(table)
    console.print("Stop with `make stop` (or `gridlake stop`); data is kept.")


@app.command()
def stop(
    keep_stack: bool = typer.Option(False, help="Leave Kafka/HDFS/Redis running."),
) -> None:
    """Stop the simulator, API, streaming job and the local stack (data is kept)."""
    stopped = stop_all(load_settings(), stack=not keep_stack)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def bench(
    only: list[str] = typer.Option(None, "--only", help="Run only these benchmarks."),
) -> None:
    """Run the benchmarks, print a table and write .gridlake/bench/results.json."""
    settings = load_settings()
    names = only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        console.print(
            f"[bold red]error:[/] unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}"
        )
        raise typer.Exit(2)
    results = run_benchmarks(settings, names)
    table = Table(title="GridLake benchmarks")
    for col in ("benchmark", "figure", "value"):
        table.add_column(col)
    for name, figures in results["results"].items():
        for key, value in figures.items():
            table.add_row(name, key, str(value))
    console.print(table)


app.add_typer(stream.app, name="stream")
app.add_typer(backfill.app, name="backfill")
app.add_typer(api.app, name="api")
app.add_typer(ml.app, name="ml")
app.add_typer(simulate.app, name="simulate")
app.add_typer(tables.app, name="tables")
app.add_typer(service.app, name="service")


if __name__ == "__main__":
    app()
