"""``gridlake images``: equipment images in the lake (docs/images.md).

``import PATH... [--descriptions FILE] [--batch-id ID] [--report FILE]`` stores folders or
archives of images on HDFS and indexes them in ``ods_equipment_image``
(:mod:`jobs.images.job`). Every file gets a line in the report (accepted, already
imported, or refused with a reason); the exit status is 1 only when the batch as a whole
could not be imported (bad description file, no device registry, HDFS unreachable).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from infra.lake import LakeError
from infra.settings import load_settings
from jobs.images.checks import ImportBatchError
from jobs.images.job import ImportResult, new_batch_id, run_import

app = typer.Typer(name="images", help="Equipment images: import into the lake.",
                  no_args_is_help=True, add_completion=False)
console = Console()


@app.callback()
def _main() -> None:
    """Equipment images: import into the lake."""


def _show(result: ImportResult, report: Path) -> None:
    counts = result.counts()
    table = Table("outcome", "files", title=f"import {result.batch_id}")
    for key in ("accepted", "already_imported", "refused"):
        table.add_row(key, str(counts[key]))
    for key, n in sorted(counts.items()):
        if key.startswith("refused:"):
            table.add_row(f"  {key.removeprefix('refused:')}", str(n))
    console.print(table)
    secs = result.check_s + result.upload_s + result.write_s
    console.print(f"{result.rows} index row(s) written, {result.uploaded} file(s) uploaded "
                  f"({result.uploaded_bytes / 1e6:.1f} MB) in {secs:.1f} s "
                  f"(+ {result.read_s:.1f} s reading the registry and index); "
                  f"report: {report}")


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="Folders or .zip/.tar/.tar.gz/.tgz archives."),
    descriptions: Path | None = typer.Option(
        None, help="Description file (CSV or Parquet) of a single PATH; default: its "
                   "descriptions.csv/.parquet."),
    batch_id: str | None = typer.Option(None, help="Id of this import (default: new)."),
    report: Path | None = typer.Option(
        None, help="Per-file report, .csv or .json (default: "
                   "<home>/images/reports/<batch>.csv and .json)."),
) -> None:
    """Import image files and their descriptions into HDFS and ods_equipment_image."""
    settings = load_settings()
    batch = batch_id or new_batch_id()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(
                    "hashing + verifying" if phase == "check" else "uploading", total=total)
            bar.update(tasks[phase], completed=done)

        try:
            result = run_import(settings, paths, descriptions=descriptions, batch_id=batch,
                                progress=progress)
        except (ImportBatchError, LakeError) as err:
            bar.stop()
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err
    if report is None:
        base = settings.home / "images" / "reports" / batch
        result.write_report(base.with_suffix(".json"))
        report = base.with_suffix(".csv")
    result.write_report(report)
    _show(result, report)
