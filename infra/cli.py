"""The ``gridlake`` command line: a thin layer over :mod:`infra.stack`.

Commands: ``setup``, ``up``, ``down``, ``status``. Further command groups register
in the marked section at the end of this module (an import and an ``add_typer``).
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
    from infra.stack.manager import Stack

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
    from infra.stack.manager import Stack

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
    from infra.stack.manager import Stack

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
    from infra.stack.manager import Stack

    statuses = Stack(_settings()).status()
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
    else:
        console.print(_table(statuses, "GridLake status"))
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------
# Command groups. To add one: import its Typer app and register it, e.g.
#     from jobs.cli import app as stream_app
#     app.add_typer(stream_app, name="stream")
# ---------------------------------------------------------------------------------------
from infra.commands import register  # noqa: E402 - the groups import this module's app

register(app)


if __name__ == "__main__":
    app()
