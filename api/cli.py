"""``gridlake api ...``: run the API service."""

from __future__ import annotations

import os

import typer
from rich.console import Console

from api import service
from infra.settings import load_settings

app = typer.Typer(help="The API service.", no_args_is_help=True)
console = Console()


@app.command()
def serve() -> None:
    """Run the API in the foreground."""
    cmd = service.command(load_settings())
    os.execv(cmd[0], cmd)  # noqa: S606 - replace this process with the server


@app.command()
def start() -> None:
    """Start the API detached and wait until it answers."""
    settings = load_settings()
    try:
        pid = service.start(settings)
    except TimeoutError as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    console.print(f"API: pid {pid}, {settings.api.base_url}/docs")


@app.command()
def stop() -> None:
    """Stop the detached API."""
    console.print("API: " + ("stopped" if service.stop(load_settings()) else "was not running"))
