"""One piece of evidence about an asset's health: a factor, its value, severity and reason.

Every rule of :mod:`jobs.health` answers with a :class:`Factor`. A factor that cannot be
judged (no reading, a sensor gap too wide, negative concentrations) says so with a status
other than ``ok`` and a reason; it never answers "good" by default (docs/health.md,
"Bad input").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Severity(IntEnum):
    """How bad one factor is; the category of the index uses the same scale."""

    GOOD = 0
    FAIR = 1
    POOR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """Lower-case name (``good``, ``fair``, ``poor``, ``critical``)."""
        return self.name.lower()


class Status(StrEnum):
    """Whether a factor had evidence to judge."""

    OK = "ok"
    """Judged from evidence (a severity is set)."""
    NO_DATA = "no_data"
    """Nothing to judge (no reading in the look-back, table absent, not scored)."""
    INVALID = "invalid"
    """Readings exist but none is usable (negative, missing every needed value)."""


@dataclass(frozen=True)
class Factor:
    """One contributing factor of a health index.

    Attributes:
        name: Factor name (``dga_level``, ``hot_spot``, ...).
        status: Whether it was judged.
        severity: Its severity; None unless ``status`` is ``ok``.
        value: The headline value it was judged on (None without evidence).
        unit: Unit of ``value`` ("" for codes and ratios).
        reason: Why this severity, or why none: always set.
        detail: Further values (ratios, per-gas conditions, counts), JSON-ready.

    """

    name: str
    status: Status
    severity: Severity | None
    value: float | str | None
    unit: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.status is Status.OK) != (self.severity is not None):
            raise ValueError(f"{self.name}: a severity is set exactly when status is ok")
        if not self.reason:
            raise ValueError(f"{self.name}: every factor states its reason")

    @property
    def judged(self) -> bool:
        """Whether the factor had evidence (a severity)."""
        return self.severity is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored beside the score."""
        return {
            "name": self.name, "status": self.status.value,
            "severity": self.severity.label if self.severity is not None else None,
            "value": self.value, "unit": self.unit, "reason": self.reason,
            "detail": self.detail,
        }


def judged(name: str, severity: Severity, value: float | str | None, unit: str, reason: str,
           **detail: Any) -> Factor:
    """A factor judged from evidence."""
    return Factor(name, Status.OK, severity, value, unit, reason, dict(detail))


def no_data(name: str, reason: str, **detail: Any) -> Factor:
    """A factor without evidence, and why."""
    return Factor(name, Status.NO_DATA, None, None, "", reason, dict(detail))


def invalid(name: str, reason: str, **detail: Any) -> Factor:
    """A factor whose readings are unusable, and why."""
    return Factor(name, Status.INVALID, None, None, "", reason, dict(detail))


def grade(value: float, limits: tuple[float, float, float]) -> Severity:
    """Severity of ``value`` against ascending (fair, poor, critical) limits.

    A value above a limit reaches that severity: ``grade(115, (110, 120, 140))`` is FAIR.
    """
    fair, poor, critical = limits
    if value > critical:
        return Severity.CRITICAL
    if value > poor:
        return Severity.POOR
    if value > fair:
        return Severity.FAIR
    return Severity.GOOD


def finite(x: Any) -> bool:
    """Whether ``x`` is a real, finite number (not None, NaN or inf)."""
    if x is None or isinstance(x, bool):
        return False
    try:
        f = float(x)
    except (TypeError, ValueError):
        return False
    return f == f and f not in (float("inf"), float("-inf"))
