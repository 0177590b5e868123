"""The ``gridlake`` console command (``pyproject.toml`` points its script here).

Own commands: ``setup``, ``up``, ``down``, ``status`` (the local stack), ``run`` and
``stop`` (the whole demo platform). Every other command is a module of :mod:`ops.cli`
named in :data:`GROUPS`, imported only when it is used: the API's, the benchmarks' and
ML's modules take seconds to import, and ``gridlake --help`` should not wait for them.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from infra.logs import configure_logging
from infra.settings import GridLakeSettings, load_settings
from infra.stack.base import ServiceStatus
from infra.stack.errors import StackError
from infra.stack.manager import Stack
from ops.run import run_all, stop_all


class Group(NamedTuple):
    """A command (group) of its own module: the module, and its line in ``--help``."""

    module: str
    help: str


#: Commands whose module is imported when they run (or show their own help). ``help`` is
#: the module's own Typer help, repeated here so that listing them imports nothing.
GROUPS: dict[str, Group] = {
    "stream": Group("ops.cli.stream", "Streaming jobs (PyFlink)."),
    "backfill": Group("ops.cli.backfill", "Batch backfills (PySpark) on the lake's tables."),
    "api": Group("ops.cli.api", "The API service."),
    "ml": Group("ops.cli.ml", "Equipment anomaly detection (AnomalyBERT)."),
    "simulate": Group("ops.cli.simulate", "Mock device fleet: simulate grid telemetry into Kafka."),
    "tables": Group("ops.cli.tables", "The lakehouse table catalog."),
    "health": Group("ops.cli.health", "Asset health index (transformers, ESS banks)."),
    "service": Group("ops.cli.service",
                     "Run one service in the foreground (the main process of a container)."),
    "embed": Group("ops.cli.embed", "Signed embed URLs of dashboard views."),
    "bench": Group("ops.cli.bench",
                   "Run the benchmarks, print a table and write .gridlake/bench/results.json."),
}


# Typer 0.2x carries its own copy of click (``typer._click``, private), so the click types
# of these overrides are spelled ``Any``.
def load_group(name: str) -> Any:
    """The click command of a group in :data:`GROUPS` (its module is imported now)."""
    group = GROUPS[name]
    command = typer.main.get_command(importlib.import_module(group.module).app)
    command.name = name
    return command


class _LazyGroups(TyperGroup):
    """The top-level group: own commands, plus :data:`GROUPS` loaded on first use."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in GROUPS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in GROUPS:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # a line of the help page: no need to import the module
            return TyperCommand(cmd_name, help=GROUPS[cmd_name].help)
        self.commands[cmd_name] = load_group(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="gridlake",
    help="GridLake: stream-batch platform for power-grid telemetry.",
    no_args_is_help=True,
    add_completion=False,
    cls=_LazyGroups,
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
def down(
    only: list[str] = typer.Option(None, "--only", help="Stop only these services (e.g. "
                                   "nginx, to start it again with new settings)."),
) -> None:
    """Stop the services GridLake started; data is kept for the next ``up``."""
    try:
        stopped = Stack(_settings()).down(only or None)
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


if __name__ == "__main__":
    app()
