"""Anomaly labels in the forms people keep them, turned into one per-step form.

GridLake's per-step form is a *fault type* string per step: ``""`` for normal, anything
else for anomalous (``"anomaly"`` when the source only says yes/no). Sources bring labels
as:

* booleans (``True`` anomalous);
* numbers: ``0`` normal, any other finite value anomalous (``1`` in practice);
* strings: fault-type names, with ``""``, ``"0"``, ``"false"``, ``"normal"`` and
  ``"none"`` (any case) meaning normal and ``"1"``/``"true"`` meaning ``"anomaly"``;
* intervals: ``[start, end)`` pairs (optionally with a fault type) in step indices or in
  the series' time stamps.

A missing label (NaN or None) is an error rather than a guess: reading it as normal would
silently lower recall, reading it as anomalous would make a whole series "anomalous".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Fault type of a step labelled only "anomalous".
ANOMALY = "anomaly"
_NORMAL_WORDS = frozenset({"", "0", "0.0", "false", "normal", "none", "no"})
_ANOMALY_WORDS = frozenset({"1", "1.0", "true", "anomaly", "anomalous", "yes"})


class LabelError(ValueError):
    """Labels that cannot be read unambiguously."""


def as_fault_types(labels: Any) -> np.ndarray:
    """Per-step fault types (``""`` = normal) from booleans, numbers or strings.

    Args:
        labels: A 1-D array-like of labels.

    Returns:
        A 1-D array of ``str`` (numpy unicode), one per step.

    Raises:
        LabelError: Not 1-D, or a missing (NaN/None) or non-finite label.

    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise LabelError(f"labels must be one value per step, got shape {arr.shape}")
    if arr.dtype == bool:
        return np.where(arr, ANOMALY, "")
    if np.issubdtype(arr.dtype, np.number):
        bad = ~np.isfinite(arr.astype(np.float64))
        if bad.any():
            raise LabelError(f"{int(bad.sum())} label(s) are missing or not finite "
                             f"(first at step {int(np.flatnonzero(bad)[0])})")
        return np.where(arr != 0, ANOMALY, "")
    if arr.dtype.kind == "U":
        out = np.char.strip(arr)
    else:
        missing = [i for i, v in enumerate(arr.tolist())
                   if v is None or (isinstance(v, float) and not np.isfinite(v))]
        if missing:
            raise LabelError(f"{len(missing)} label(s) are missing (first at step "
                             f"{missing[0]})")
        out = np.array([str(v).strip() for v in arr.tolist()], dtype=str)
    if out.size == 0:
        return out.astype(str)
    lower = np.char.lower(out)
    normal = np.isin(lower, list(_NORMAL_WORDS))
    yes = np.isin(lower, list(_ANOMALY_WORDS))
    return np.where(normal, "", np.where(yes, ANOMALY, out))


def fault_types_from_intervals(
    n_steps: int,
    intervals: Iterable[Sequence[Any]],
    ts: np.ndarray | None = None,
) -> np.ndarray:
    """Per-step fault types from ``[start, end)`` intervals.

    Args:
        n_steps: Length of the series.
        intervals: ``(start, end)`` or ``(start, end, fault_type)`` items. Without ``ts``
            the bounds are step indices; with ``ts`` they are compared with the time
            stamps (a step is inside when ``start <= ts < end``).
        ts: The series' time stamps (e.g. epoch ms), shape ``(n_steps,)``.

    Raises:
        LabelError: An interval with end before start, or a malformed item.

    """
    out = np.full(n_steps, "", dtype=object)
    axis = np.arange(n_steps) if ts is None else np.asarray(ts)
    if axis.shape != (n_steps,):
        raise LabelError(f"ts must have {n_steps} steps, got {axis.shape}")
    for i, item in enumerate(intervals):
        if len(item) not in (2, 3):
            raise LabelError(f"interval {i}: expected (start, end[, type]), got {item!r}")
        start, end = item[0], item[1]
        kind = str(item[2]).strip() if len(item) == 3 and item[2] is not None else ANOMALY
        if end < start:
            raise LabelError(f"interval {i}: end {end!r} is before start {start!r}")
        out[(axis >= start) & (axis < end)] = kind or ANOMALY
    return out.astype(str)
