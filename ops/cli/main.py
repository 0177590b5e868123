"""The ``gridlake`` console command (``pyproject.toml`` points its script here).

Own commands: ``setup``, ``up``, ``down``, ``status`` (the local stack), ``run`` and
``stop`` (the whole demo platform). Every other command is a module of :mod:`ops.cli`
named in :data:`GROUPS`, imported only when it is used: the API's, the benchmarks' and
ML's modules take seconds to import, and ``gridlake --help`` should not wait for them.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from infra.logs import configure_logging

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from infra.settings import GridLakeSettings
    from infra.stack.base import ServiceStatus


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
    "simulate": Group("ops.cli.simulate",
                      "Mock device fleet: grid telemetry into Kafka, equipment images."),
    "tables": Group("ops.cli.tables", "The lakehouse table catalog."),
    "health": Group("ops.cli.health", "Asset health index (transformers, ESS banks)."),
    "images": Group("ops.cli.images", "Equipment images: import into the lake."),
    "service": Group("ops.cli.service",
                     "Run one service in the foreground (the main process of a container)."),
    "web": Group("ops.cli.web", "The web dashboard (web/): API types, build."),
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
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    """Format ``command``'s help (and its subcommands') without Typer's rich panels.

    Typer's rich help imports rich's Markdown, Syntax and Traceback (Pygments,
    markdown-it): about a second before any help page, more than the page is worth.
    """
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


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
    rich_markup_mode=None,  # see _plain_help
    pretty_exceptions_enable=False,
)


@functools.cache
def _console(stderr: bool = False) -> Console:
    """The (stdout or stderr) console; rich's Console is imported by the commands only."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def _new_table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Configure logging for every command."""
    configure_logging("DEBUG" if verbose else None)
    # kafka-python reports every refused connection; the stack's own checks say it better.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _settings() -> GridLakeSettings:
    # lazy: settings (pydantic) take a second to import; ``--help`` does not need them
    from infra.settings import load_settings

    return load_settings()


def _fail(err: Exception) -> None:
    _console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
    raise typer.Exit(1)


def _table(statuses: Sequence[ServiceStatus], title: str) -> Table:
    table = _new_table(title)
    for col in ("service", "role", "address", "pid", "health", "detail"):
        table.add_column(col)
    for s in statuses:
        health = "[green]healthy[/]" if s.healthy else "[red]down[/]"
        pid = str(s.pid) if s.pid else ("external" if not s.managed else "-")
        table.add_row(s.name, s.role, s.address, pid, health, s.detail)
    return table


@app.command()
def setup() -> None:
    """Check prerequisites, resolve jars, install redis-server, build the dashboard."""
    # lazy: the stack's modules are only needed by the commands that manage it
    from infra.stack.errors import StackError

    # lazy: see above
    from infra.stack.manager import Stack

    # Maven prints nothing while it resolves: say what is happening and for how long
    with _console().status("setup: prerequisites; jars (the first time Maven resolves "
                           "them: about 2 min on a 2-core machine, then seconds)"):
        try:
            built = Stack(_settings()).setup()
        except StackError as err:
            _fail(err)
    _console().print(f"setup done; jars rebuilt: {', '.join(built) or 'none (up to date)'}")
    # lazy: the dashboard build imports the API app (seconds) only for setup
    from ops.web import build as build_web

    try:
        web = build_web()
    except RuntimeError as err:
        _fail(err)
    _console().print(f"dashboard (web/dist): {web.state}; {web.detail}", highlight=False)


@app.command()
def up(
    timeout: float = typer.Option(180.0, help="Seconds to wait for readiness."),
) -> None:
    """Start every managed service (in dependency order), wait until ready, create topics."""
    # lazy: the stack's modules are only needed by the commands that manage it
    from infra.stack.errors import StackError

    # lazy: see above
    from infra.stack.manager import Stack

    t0 = time.monotonic()
    try:
        result = Stack(_settings()).up(timeout_s=timeout)
    except StackError as err:
        _fail(err)
    took = time.monotonic() - t0
    started = ", ".join(result.started) or "nothing (already up)"
    _console().print(_table(result.statuses, f"GridLake up in {took:.1f} s; started: {started}"))
    if result.topics_created:
        _console().print(f"created topics: {', '.join(result.topics_created)}")


@app.command()
def down(
    only: list[str] = typer.Option(None, "--only", help="Stop only these services (e.g. "
                                   "nginx, to start it again with new settings)."),
) -> None:
    """Stop the services GridLake started; data is kept for the next ``up``."""
    # lazy: the stack's modules are only needed by the commands that manage it
    from infra.stack.errors import StackError

    # lazy: see above
    from infra.stack.manager import Stack

    try:
        stopped = Stack(_settings()).down(only or None)
    except StackError as err:
        _fail(err)
    _console().print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
    timeout: float = typer.Option(1.5, help="Seconds each probe may take."),
) -> None:
    """Show every part: stack services, streaming job, API, ML service, simulator.

    All parts are probed at once (about ``--timeout`` seconds in all). Exit 1 when any
    part is down; its line says what to do.
    """
    # lazy: the probes import the stack and streaming modules; --help does not need them
    from ops.status import platform_status

    t0 = time.monotonic()
    parts = platform_status(_settings(), timeout)
    took = time.monotonic() - t0
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in parts], indent=2))
    else:
        table = _new_table(f"GridLake status ({took:.1f} s)")
        for col in ("part", "kind", "address", "pid", "health", "detail"):
            table.add_column(col)
        for p in parts:
            health = "[green]healthy[/]" if p.healthy else "[red]down[/]"
            table.add_row(p.name, p.kind, p.address, str(p.pid or "-"), health, p.detail)
        _console().print(table)
    if not all(p.healthy for p in parts):
        raise typer.Exit(1)


@app.command()
def run() -> None:
    """Start everything (stack, history, streaming job, API, ML service, simulator)."""
    # lazy: run pulls in the stack, the streaming control and the API service modules
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # lazy: see above
    from ops.run import Step, run_all

    settings = _settings()
    console = _console()
    t0 = time.monotonic()
    bar = Progress(TextColumn("history: {task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   console=console, transient=True)
    task: list[Any] = []
    spinner: list[Any] = []

    def progress(step: Step, message: str) -> None:
        for live in spinner:  # the step's spinner (or lag bar) ends with its result
            live.stop()
        spinner.clear()
        if task:
            bar.stop()
            task.clear()
        console.print(f"[bold]{step.name}[/]: {message}", highlight=False)
        if message.startswith("expected"):
            spinner.append(console.status(f"{step.name} ({message})"))
            spinner[0].start()

    labels = {"ods": "days simulated into ODS", "backfill": "tables backfilled"}

    def on_history(phase: str, done: int, total: int) -> None:
        if not task:
            for live in spinner:  # one live display at a time: the bar replaces it
                live.stop()
            spinner.clear()
            bar.start()
        if not task or task[-1][0] != phase:
            task.append((phase, bar.add_task(labels.get(phase, phase), total=total or None)))
        bar.update(task[-1][1], completed=done, total=total or None)

    try:
        result = run_all(settings, progress, on_history)
    except Exception as err:  # noqa: BLE001 - one-line error for the operator
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    finally:
        for live in spinner:
            live.stop()
        bar.stop()
    console.print(f"ready in {time.monotonic() - t0:.0f} s", highlight=False)
    table = _new_table("GridLake is running")
    table.add_column("what")
    table.add_column("where")
    for name, link in result.links.items():
        table.add_row(name, link)
    _console().print(table)
    _console().print("Stop with `make stop` (or `gridlake stop`); data is kept.")


@app.command()
def stop(
    keep_stack: bool = typer.Option(False, help="Leave Kafka/HDFS/Redis running."),
) -> None:
    """Stop the simulator, ML service, API, streaming job and the stack (data is kept)."""
    # lazy: see ``run``
    from ops.run import stop_all

    stopped = stop_all(_settings(), stack=not keep_stack)
    _console().print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


if __name__ == "__main__":
    app()
