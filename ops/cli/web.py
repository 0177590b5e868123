"""``gridlake web ...``: the dashboard's generated API types and its build."""

from __future__ import annotations

import typer

app = typer.Typer(help="The web dashboard (web/): API types, build.", no_args_is_help=True)


@app.command()
def types() -> None:
    """Write web/src/api/schema.ts from the API's OpenAPI document."""
    # lazy: ops.web builds the API app (FastAPI and more); `--help` must not import it
    from ops.web import TYPES_FILE, write_types

    path = write_types(TYPES_FILE)
    typer.echo(f"wrote {path}")


@app.command("build")
def build_cmd(
    force: bool = typer.Option(False, "--force", help="Build even when web/dist is fresh."),
) -> None:
    """Run `npm ci` and `npm run build` in web/ when web/dist is older than the sources."""
    # lazy: as above
    from ops.web import WEB, build, bundle_size

    try:
        result = build(force=force)
    except RuntimeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"dashboard: {result.state} ({result.detail})")
    if (WEB / "dist" / "index.html").exists():
        size = bundle_size(WEB / "dist")
        typer.echo(f"bundle: {size.total_raw / 1024:.0f} KiB, {size.total_gzip / 1024:.0f} KiB "
                   f"gzipped; loaded before the first page: {size.entry_gzip / 1024:.0f} KiB "
                   "gzipped")
