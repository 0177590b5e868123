"""``gridlake service ...``: one service in the foreground, for containers.

* ``run NAME``: prepare the service as ``gridlake up`` would, then ``exec`` its own
  command line (the JVM or redis-server becomes the container's PID 1);
* ``check NAME``: its health check, exit code 0 or 1 (compose healthchecks);
* ``provision``: wait for the NameNode and Kafka, create the lake root and the topics;
* ``list``: the names ``run`` accepts.

Also runnable without the ``gridlake`` console script, which imports every command
group: ``python -m ops.cli.service check kafka`` (cheap enough for a healthcheck).
"""

from __future__ import annotations

import logging
from typing import NoReturn

import typer

from infra.logs import configure_logging

#: Default streaming job of ``stream`` (ops.services.DEFAULT_JOB; that module imports the
#: stack and the API's service module, which `--help` does not need).
DEFAULT_JOB = "lakehouse"

app = typer.Typer(
    help="Run one service in the foreground (the main process of a container).",
    no_args_is_help=True,
)

_NAME_HELP = "Service: redis, namenode, datanode-<role>, kafka, api or stream (see `list`)."


def _fail(err: Exception) -> NoReturn:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1)


@app.command()
def run(
    name: str = typer.Argument(..., help=_NAME_HELP),
    job: str = typer.Option(DEFAULT_JOB, help="Streaming job of `stream`."),
) -> None:
    """Prepare the service (config, one-time format), then exec it in the foreground."""
    # lazy: the stack's and the API's modules (psutil, httpx); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from infra.stack.errors import StackError

    # lazy: see above
    from ops import services

    settings = load_settings()
    try:
        launch = services.prepare(settings, name, job=job)
    except StackError as err:
        _fail(err)
    services.exec_launch(launch)


@app.command()
def check(
    name: str = typer.Argument(..., help=_NAME_HELP),
    live: bool = typer.Option(
        False, "--live", help="NameNode: answering is enough (it may be in safe mode)."
    ),
    job: str = typer.Option(DEFAULT_JOB, help="Streaming job of `stream`."),
) -> None:
    """Run the service's health check; exit 0 when healthy, 1 otherwise."""
    # lazy: the stack's and the API's modules (psutil, httpx); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from infra.stack.errors import StackError

    # lazy: see above
    from ops import services

    try:
        health = services.probe(load_settings(), name, live=live, job=job)
    except StackError as err:
        _fail(err)
    typer.echo(f"{name}: {'healthy' if health.healthy else 'unhealthy'}: {health.detail}")
    if not health.healthy:
        raise typer.Exit(1)


@app.command()
def provision(
    timeout: float = typer.Option(300.0, help="Seconds to wait for the NameNode and Kafka."),
) -> None:
    """Wait for the NameNode and Kafka, then create the lake root and the Kafka topics."""
    # lazy: the stack's and the API's modules (psutil, httpx); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from infra.stack.errors import StackError

    # lazy: see above
    from ops import services

    try:
        created = services.provision(load_settings(), timeout_s=timeout)
    except StackError as err:
        _fail(err)
    typer.echo(f"provisioned; topics created: {', '.join(created) or 'none (all existed)'}")


@app.command("list")
def list_services() -> None:
    """Print the service names `run` accepts, one per line."""
    # lazy: the stack's and the API's modules (psutil, httpx); `--help` needs none
    from infra.settings import load_settings

    # lazy: see above
    from ops import services

    for name in services.service_names(load_settings()):
        typer.echo(name)


if __name__ == "__main__":
    configure_logging()
    # kafka-python logs every connection; the check's one line says what matters.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    app()
