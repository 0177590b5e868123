"""``gridlake tables ...``: the table catalog (``list``, ``docs``) and the lake's tables.

``check`` and ``create`` compare the lake's Hudi tables with their contracts and create
the missing ones (:mod:`jobs.catalog`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from lakehouse.contracts.tables import TABLES
from lakehouse.reference import render_markdown

app = typer.Typer(help="The lakehouse table catalog.", no_args_is_help=True)
console = Console()


@app.command()
def docs(
    out: Path | None = typer.Option(None, help="Output file (default: docs/tables.md)."),
) -> None:
    """Write the generated table reference page."""
    # lazy: settings (pydantic) are only needed by the commands, not by `--help`
    from infra.settings import REPO_ROOT

    out = out or REPO_ROOT / "docs" / "tables.md"
    out.write_text(render_markdown(TABLES))
    typer.echo(f"wrote {out} ({len(TABLES)} tables)")


@app.command("list")
def list_tables() -> None:
    """List every table: layer, name, key."""
    for t in TABLES:
        typer.echo(f"{t.layer:4} {t.name:32} key={','.join(t.record_key)}")


@app.command("check")
def check() -> None:
    """Compare every lake table's hoodie.properties with its contract (exit 1 on mismatch).

    Checks record key, ordering field, partition fields, table type and merge mode; prints
    one line per table: ok, missing, or mismatch with what differs.
    """
    # lazy: the lake client (httpx) and settings; `--help` needs none
    from infra.lake import LakeError

    # lazy: see above
    from infra.settings import load_settings

    # lazy: see above
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


@app.command("create")
def create() -> None:
    """Create every missing lake table as an empty Hudi table (existing ones are kept)."""
    # lazy: the lake client (httpx), Spark and settings; `--help` needs none
    from infra.lake import LakeError

    # lazy: see above
    from infra.settings import load_settings

    # lazy: see above
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
