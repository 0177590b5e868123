"""``gridlake health``: the asset health index (docs/health.md).

``run --start D --end D`` judges every transformer and battery bank for each day of the
range and writes ``ads_asset_health`` (lake and serving copy) with the batch job
:mod:`jobs.health.job`; a rerun of a range rewrites the same rows. ``--end`` defaults to
yesterday (UTC), ``--start`` to ``--end``: the daily run.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import typer

app = typer.Typer(name="health", help="Asset health index (transformers, ESS banks).",
                  no_args_is_help=True, add_completion=False)


def _day(text: str | None, name: str, default: date) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a yyyy-MM-dd date", param_hint=name) \
            from None


@app.callback()
def _main() -> None:
    """Asset health index (transformers, ESS banks)."""


@app.command()
def run(
    start: str | None = typer.Option(None, help="First day (yyyy-MM-dd, UTC); default: "
                                                "--end."),
    end: str | None = typer.Option(None, help="Last day, inclusive; default: yesterday."),
    serving: bool = typer.Option(True, help="Mirror the rows into the serving copy (Redis)."),
    write: bool = typer.Option(True, help="Write (--no-write: compute and report only)."),
) -> None:
    """Compute the health index of every asset for each day of a range."""
    # lazy: the health job (pandas, pyarrow, Spark helpers); `--help` needs none
    from infra.lake import LakeError

    # lazy: see above
    from infra.settings import load_settings

    # lazy: see above
    from jobs.health.job import HealthJobError, run_health

    last = _day(end, "--end", datetime.now(UTC).date() - timedelta(days=1))
    first = _day(start, "--start", last)
    try:
        result = run_health(load_settings(), first, last, serving=serving, write=write)
    except (HealthJobError, LakeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps(result.to_dict(), indent=2))
