"""Platform-level commands of ``gridlake``: run, stop, bench, and the command groups.

The ``tables`` group comes from :mod:`lakehouse.cli` (contracts only: ``list``, ``docs``);
the commands that touch the lake (``tables check``, ``tables create``) need HDFS and
Spark, which :mod:`lakehouse` must not depend on, so they are added to the group here.
"""

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

    tables_app.command("check")(tables_check)
    tables_app.command("create")(tables_create)
    app.add_typer(tables_app, name="tables")
    from infra.service_cli import app as service_app

    app.add_typer(service_app, name="service")
    from ml.cli import app as ml_app

    app.add_typer(ml_app, name="ml")
    from jobs.batch.cli import app as backfill_app

    app.add_typer(backfill_app, name="backfill")
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


def tables_check() -> None:
    """Compare every lake table's hoodie.properties with its contract (exit 1 on mismatch).

    Checks record key, ordering field, partition fields, table type and merge mode; prints
    one line per table: ok, missing, or mismatch with what differs.
    """
    from infra.lake import LakeError
    from jobs.catalog import MISMATCH, OK, check_tables

    settings = load_settings()
    try:
        checks = check_tables(settings)
    except LakeError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise typer.Exit(1) from err
    colour = {OK: "green", MISMATCH: "red"}
    for c in checks:
        console.print(
            f"[{colour.get(c.state, 'yellow')}]{c.line()}[/]", highlight=False, soft_wrap=True
        )
    counts = {s: sum(1 for c in checks if c.state == s) for s in (OK, "missing", MISMATCH)}
    console.print(
        f"{len(checks)} tables under {settings.hdfs.lake_uri}: "
        + ", ".join(f"{n} {s}" for s, n in counts.items()),
        highlight=False,
    )
    if counts[MISMATCH]:
        raise typer.Exit(1)


def tables_create() -> None:
    """Create every missing lake table as an empty Hudi table (existing ones are kept)."""
    from infra.lake import LakeError
    from jobs.catalog import create_tables

    settings = load_settings()
    try:
        results = create_tables(settings)
    except (LakeError, FileNotFoundError) as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise typer.Exit(1) from err
    except Exception as err:  # noqa: BLE001 - Spark/py4j errors: one line for the operator
        console.print(f"[bold red]error:[/] creating tables failed: {err}", highlight=False)
        raise typer.Exit(1) from err
    for r in results:
        console.print(f"{r.action:8} {r.layer:4} {r.table}", highlight=False, soft_wrap=True)
    created = sum(1 for r in results if r.action == "created")
    console.print(f"{created} created, {len(results) - created} already existed "
                  f"(under {settings.hdfs.lake_uri})", highlight=False)
