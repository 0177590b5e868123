"""``gridlake bench``: run the benchmarks (:mod:`ops.bench.harness`) and print their figures."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False)
console = Console()


@app.command()
def bench(
    only: list[str] = typer.Option(None, "--only", help="Run only these benchmarks."),
) -> None:
    """Run the benchmarks, print a table and write .gridlake/bench/results.json."""
    # lazy: every benchmark's dependencies (API, Spark, torch); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from ops.bench.harness import BENCHMARKS, run_benchmarks

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
