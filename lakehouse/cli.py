"""``gridlake tables ...``: the table catalog.

The commands here need the contracts only. ``tables check`` and ``tables create`` touch
the lake (WebHDFS, Spark); they live in :mod:`jobs.catalog` and are added to this group by
``infra.commands.register`` (this package does not import ``infra`` or ``jobs``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from lakehouse.contracts.tables import TABLES
from lakehouse.reference import render_markdown

app = typer.Typer(help="The lakehouse table catalog.", no_args_is_help=True)


@app.command()
def docs(
    out: Path = typer.Option(
        Path(__file__).resolve().parent.parent / "docs" / "tables.md", help="Output file."
    ),
) -> None:
    """Write the generated table reference page."""
    out.write_text(render_markdown(TABLES))
    typer.echo(f"wrote {out} ({len(TABLES)} tables)")


@app.command("list")
def list_tables() -> None:
    """List every table: layer, name, key."""
    for t in TABLES:
        typer.echo(f"{t.layer:4} {t.name:32} key={','.join(t.record_key)}")
