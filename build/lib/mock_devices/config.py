"""Configuration of a simulation run, validated before anything is generated or published."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from lakehouse import time as lake_time
from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS

Record = tuple[str, str, "dict[str, Any] | bytes"]
"""One message of a stream: (topic without prefix, key, message dict or raw bytes)."""

DEVICE_KINDS: tuple[str, ...] = (
    "meter", "feeder", "substation", "transformer", "dga", "ess", "pv", "registry",
)
"""Message families a run can emit; ``--devices`` selects a subset."""


class ConfigError(ValueError):
    """An invalid simulation setting; the message is one line meant for the user."""


@dataclass(frozen=True)
class FleetConfig:
    """Size and cadence of the simulated fleet.

    Attributes:
        meters: Number of smart meters before ``scale`` is applied.
        scale: Multiplier of the fleet size (benchmarks use e.g. 10).
        seed: Seed of every random choice; the same seed gives the same messages.
        meter_interval_s: Meter reading interval: 900 (15-minute AMI) or 60 or 300.
        ess_interval_s: BMS reporting interval of the battery banks (divides 60).
        dga_interval_s: Sampling interval of the online DGA monitors (multiple of 60).
        registry_changes_per_day: Mean number of registry changes (transformer
            replaced, meter moved) per simulated day.
        devices: Message families to emit (a subset of :data:`DEVICE_KINDS`); the
            physics of every device is simulated regardless.
        latitude: Latitude of the region centre (solar geometry).
        longitude: Longitude of the region centre.
        utc_offset_h: Offset of the region's local (load-profile) time from UTC in hours.

    """

    meters: int = 3000
    scale: float = 1.0
    seed: int = 42
    meter_interval_s: int = 900
    ess_interval_s: int = 1
    dga_interval_s: int = 3600
    registry_changes_per_day: float = 4.0
    devices: frozenset[str] = frozenset(DEVICE_KINDS)
    latitude: float = 31.2
    longitude: float = 121.5
    utc_offset_h: float = 8.0

    def __post_init__(self) -> None:
        if self.meters < 1:
            raise ConfigError(f"meters must be at least 1, got {self.meters}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ConfigError(f"scale must be a positive number, got {self.scale}")
        if self.total_meters > 5_000_000:
            raise ConfigError(f"meters x scale = {self.total_meters} is more than 5,000,000")
        if self.meter_interval_s not in (60, 300, 900):
            raise ConfigError(
                f"meter interval must be 60, 300 or 900 s, got {self.meter_interval_s}"
            )
        if self.ess_interval_s < 1 or 60 % self.ess_interval_s:
            raise ConfigError(f"ESS interval must divide 60 s, got {self.ess_interval_s}")
        if self.dga_interval_s < 60 or self.dga_interval_s % 60:
            raise ConfigError(
                f"DGA interval must be a multiple of 60 s, got {self.dga_interval_s}"
            )
        if self.registry_changes_per_day < 0:
            raise ConfigError("registry changes per day must not be negative")
        unknown = set(self.devices) - set(DEVICE_KINDS)
        if unknown:
            raise ConfigError(
                f"unknown device kind(s) {sorted(unknown)}; choose from {', '.join(DEVICE_KINDS)}"
            )
        if not -90 <= self.latitude <= 90 or not -180 <= self.longitude <= 180:
            raise ConfigError("latitude/longitude out of range")

    @property
    def total_meters(self) -> int:
        """Meters after scaling."""
        return max(1, round(self.meters * self.scale))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": MINUTE_MS, "min": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS,
            "w": 7 * DAY_MS}


def parse_duration_ms(text: str) -> int:
    """Parse ``"90s"``, ``"15m"``, ``"2h"``, ``"1.5d"`` (bare numbers are seconds).

    Raises:
        ConfigError: When the text is not a positive duration.

    """
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"invalid duration {text!r}; use e.g. 90s, 15m, 2h, 1d")
    value = float(m.group(1)) * _UNIT_MS[(m.group(2) or "s").lower()]
    if value <= 0:
        raise ConfigError(f"duration must be positive, got {text!r}")
    return int(round(value))


def parse_time_ms(text: str) -> int:
    """:func:`lakehouse.time.parse_time_ms`, failing as the simulator's settings do.

    Raises:
        ConfigError: When the text is not a date (the one-line message of the command line).

    """
    try:
        return lake_time.parse_time_ms(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None
