"""``gridlake stream ...``: start, stop and inspect the streaming jobs."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from infra.settings import load_settings
from jobs.streaming import control

app = typer.Typer(help="Streaming jobs (PyFlink).", no_args_is_help=True)
console = Console()


@app.command()
def start(
    name: str = typer.Argument("meter_pipeline", help="Job name."),
    wait: bool = typer.Option(True, help="Wait until the Flink job is RUNNING."),
    timeout: float = typer.Option(240.0, help="Seconds to wait."),
    resume: bool = typer.Option(
        True, help="Resume from the savepoint of the last `stream stop` (if any)."
    ),
) -> None:
    """Start a streaming job detached.

    It resumes from the last stop's savepoint, else from the Kafka offsets committed at
    its last checkpoint.
    """
    settings = load_settings()
    try:
        pid = control.start(settings, name, resume=resume)
        if wait:
            st = control.wait_running(settings, name, timeout=timeout)
            console.print(f"{name}: pid {pid}, Flink job {st.flink_job_id} {st.flink_state}")
        else:
            console.print(f"{name}: started, pid {pid}")
    except (KeyError, FileNotFoundError, RuntimeError, TimeoutError) as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err


@app.command()
def stop(
    name: str = typer.Argument("meter_pipeline", help="Job name."),
    savepoint: bool = typer.Option(True, help="Stop through Flink with a savepoint."),
) -> None:
    """Stop a streaming job (with a savepoint that the next start resumes from)."""
    settings = load_settings()
    stopped = control.stop(settings, name, savepoint=savepoint)
    where = control.last_savepoint(settings, name) if savepoint else None
    console.print(
        f"{name}: {'stopped' if stopped else 'was not running'}"
        + (f", savepoint {where}" if stopped and where else "")
    )


@app.command()
def status(
    name: str = typer.Argument("meter_pipeline", help="Job name."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
) -> None:
    """Process, Flink state and checkpoints of a streaming job (exit 1 if not running)."""
    st = control.status(load_settings(), name)
    if as_json:
        typer.echo(json.dumps(st.as_dict(), indent=2))
    else:
        for key, value in st.as_dict().items():
            console.print(f"{key:>22}: {value}")
    if not st.running:
        raise typer.Exit(1)
