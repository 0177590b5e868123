"""Progress bars (rich) for long work: training steps, scoring devices."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Callable[[str], None]]:
    """A callable advancing a rich progress bar (or nothing when unavailable)."""
    if not enabled or importlib.util.find_spec("rich") is None:
        yield lambda _msg: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[msg]}"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total, msg="")
        yield lambda msg: bar.update(task, advance=1, msg=msg)
