"""Platform-level commands of ``gridlake``: run, stop, bench, and the command groups."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import load_settings

console = Console()


def register(app: typer.Typer) -> None:
    """Add the platform commands and groups to the ``gridlake`` app."""
    from api.cli import app as api_app
    from jobs.cli import app as stream_app

    app.add_typer(stream_app, name="stream")
    app.add_typer(api_app, name="api")
    from mock_devices.cli import app as simulate_app

    app.add_typer(simulate_app, name="simulate")
    from lakehouse.cli import app as tables_app

    app.add_typer(tables_app, name="tables")
    from infra.service_cli import app as service_app

    app.add_typer(service_app, name="service")
    from ml.cli import app as ml_app

    app.add_typer(ml_app, name="ml")
    app.command("run")(run)
    app.command("stop")(stop)
    app.command("bench")(bench)


def run() -> None:
    """Start everything (stack, streaming job, API, simulator) and print where to look."""
    from infra.run import run_all

    settings = load_settings()
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


def stop(
    keep_stack: bool = typer.Option(False, help="Leave Kafka/HDFS/Redis running."),
) -> None:
    """Stop the simulator, API, streaming job and the local stack (data is kept)."""
    from infra.run import stop_all

    stopped = stop_all(load_settings(), stack=not keep_stack)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def bench(
    only: list[str] = typer.Option(None, "--only", help="Run only these benchmarks."),
) -> None:
    """Run the benchmarks, print a table and write .gridlake/bench/results.json."""
    from infra.bench import BENCHMARKS, run_benchmarks

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
