"""Data-quality rules and the per-device-type detail (DWD) specification.

A :class:`DwdSpec` says how one telemetry message becomes a DWD row: which columns are
kept and in which unit, the device's nominal reading interval (to find "the previous
reading"), and the parameters of the spike and stuck-value rules. The streaming SQL, the
batch backfill and the test oracles all read these same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lakehouse.contracts.messages import (
    ESS_BMS,
    FEEDER_SCADA,
    METER_READING,
    PV_INVERTER,
    SUBSTATION_SCADA,
    TRANSFORMER_DGA,
    TRANSFORMER_TELEMETRY,
)
from lakehouse.contracts.schema import Field, FieldType, MessageContract
from lakehouse.time import HOUR_MS, MINUTE_MS


@dataclass(frozen=True)
class Rule:
    """A data-quality rule evaluated per DWD record.

    Attributes:
        name: Rule name as it appears in ``quality_flags`` and column ``flag_<name>``.
        excludes: Whether a flagged record is left out of summaries (DWS/ADS).
        description: What the rule checks.

    """

    name: str
    excludes: bool
    description: str


RULES: tuple[Rule, ...] = (
    Rule("duplicate", False,
         "The same device and event time was received more than once (the first copy is "
         "kept; `copies` says how many arrived)."),
    Rule("late", False,
         "Arrived after the source watermark had passed its event time (within the allowed "
         "lateness: it still updates every summary it belongs to)."),
    Rule("too_late", True,
         "Arrived more than `flink.allowed_lateness` behind the watermark: kept in ODS and "
         "DWD, left out of summaries (a backfill recomputes them)."),
    Rule("unknown_device", False,
         "No version of the device in DIM at the event time: no region, substation, feeder "
         "or transformer; counted at device level only."),
    Rule("range", True,
         "A value outside the physically plausible range declared in its message contract."),
    Rule("spike", True,
         "A declared value jumped from the previous reading by more than its minimum delta "
         "and to more than `SPIKE_RATIO` times the previous magnitude."),
    Rule("stuck", False,
         "Every declared value equals the previous reading's (a frozen sensor)."),
    Rule("gap", False,
         "The previous reading (event time minus the nominal interval) is missing although "
         "the device reported earlier."),
)
"""Rules in the order their names appear in ``quality_flags``."""

SPIKE_RATIO = 4.0

REGISTER_TOLERANCE_KWH = 0.01
"""A cumulative register reading at most this much below the previous interval's is jitter
(re-reads, rounding of the display): the interval's energy is 0, no rule fires."""

REGISTER_RESET_KWH = 1.0
"""A register that fell and whose smallest reading in the interval is at most this has been
reset (meter replaced or cleared): the interval's energy counts from 0."""

REGISTER_ROLLOVER_SHARE = 0.1
"""A register with a declared maximum that fell from the top share of its range to the bottom
share has rolled over: energy = maximum − before + after."""

REGISTER_RULES: tuple[Rule, ...] = (
    Rule("register_rollover", False,
         "The register fell from within `REGISTER_ROLLOVER_SHARE` of its declared maximum to "
         "within that share of 0: energy = maximum − previous last + last."),
    Rule("register_reset", False,
         "The register fell and the interval's smallest reading is at most "
         "`REGISTER_RESET_KWH`: energy = the interval's last reading (counted from 0)."),
    Rule("register_decrease", True,
         "The register fell by more than `REGISTER_TOLERANCE_KWH`, neither a rollover nor a "
         "reset: the interval's energy is not computed (NULL, left out of sums)."),
)
"""Rules of the 15-minute register energies (meters and feeders), in the order they are
tried; the name is the interval's ``baseline`` in ``ads_meter_energy_15min``."""


@dataclass(frozen=True)
class Measure:
    """A DWD column taken from one message field, possibly rescaled to a normal unit."""

    source: Field
    name: str
    scale: float = 1.0
    unit: str = ""

    @property
    def field(self) -> Field:
        """The DWD column (range limits rescaled too)."""
        s = self.scale
        return Field(
            self.name,
            self.source.type,
            self.unit or self.source.unit,
            self.source.description,
            required=self.source.required,
            minimum=None if self.source.minimum is None else self.source.minimum * s,
            maximum=None if self.source.maximum is None else self.source.maximum * s,
        )


@dataclass(frozen=True)
class DwdSpec:
    """How one telemetry message becomes DWD rows.

    Attributes:
        message: The message contract.
        device_type: The registry's ``device_type`` of the reporting device.
        interval_ms: Nominal reading interval, when constant for the device type.
        interval_field: Message field (seconds) carrying the interval, when per reading.
        spike: DWD column → minimum absolute jump for the spike rule.
        stuck: DWD columns that must all repeat for the stuck rule.
        renames: Message field → (DWD column, scale factor, unit) for unit normalisation.
        drop: Message fields not carried into DWD (e.g. topology the DIM provides).

    """

    message: MessageContract
    device_type: str
    interval_ms: int | None = None
    interval_field: str | None = None
    spike: Mapping[str, float] = field(default_factory=dict)
    stuck: tuple[str, ...] = ()
    renames: Mapping[str, tuple[str, float, str]] = field(default_factory=dict)
    drop: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Subject name, e.g. ``meter_reading``."""
        return self.message.name

    @property
    def measures(self) -> tuple[Measure, ...]:
        """Carried message fields, in contract order, with their DWD names and units."""
        skip = {self.message.key_field, self.message.event_time_field, "seq", *self.drop}
        out = []
        for f in self.message.fields:
            if f.name in skip:
                continue
            new, scale, unit = self.renames.get(f.name, (f.name, 1.0, f.unit))
            out.append(Measure(f, new, scale, unit))
        return tuple(out)

    def measure(self, name: str) -> Measure:
        """The measure whose DWD column is ``name``."""
        for m in self.measures:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no measure {name!r}")

    def range_checked(self) -> tuple[Measure, ...]:
        """Numeric measures with a declared minimum or maximum."""
        return tuple(
            m for m in self.measures
            if m.source.type is not FieldType.STRING
            and m.source.type is not FieldType.BOOLEAN
            and (m.source.minimum is not None or m.source.maximum is not None)
        )


_KV = 1000.0

DWD_SPECS: tuple[DwdSpec, ...] = (
    DwdSpec(
        METER_READING, "meter", interval_field="interval_s",
        spike={"voltage_v": 50.0, "current_a": 20.0, "active_power_kw": 20.0},
        stuck=("voltage_v", "current_a", "active_power_kw"),
    ),
    DwdSpec(
        FEEDER_SCADA, "feeder", interval_ms=MINUTE_MS,
        spike={"active_power_kw": 2000.0, "bus_voltage_v": 2000.0, "current_a": 100.0},
        stuck=("active_power_kw", "reactive_power_kvar", "current_a", "bus_voltage_v"),
        renames={"bus_voltage_kv": ("bus_voltage_v", _KV, "V")},
        drop=("substation_id",),
    ),
    DwdSpec(
        SUBSTATION_SCADA, "substation", interval_ms=MINUTE_MS,
        spike={"active_power_kw": 5000.0, "bus_voltage_v": 2000.0},
        stuck=("active_power_kw", "reactive_power_kvar", "bus_voltage_v", "frequency_hz"),
        renames={"hv_voltage_kv": ("hv_voltage_v", _KV, "V"),
                 "bus_voltage_kv": ("bus_voltage_v", _KV, "V")},
    ),
    DwdSpec(
        TRANSFORMER_TELEMETRY, "transformer", interval_ms=MINUTE_MS,
        spike={"load_kva": 200.0, "lv_voltage_v": 50.0, "top_oil_temp_c": 30.0},
        stuck=("load_kva", "lv_voltage_v", "top_oil_temp_c"),
    ),
    DwdSpec(
        TRANSFORMER_DGA, "transformer", interval_ms=HOUR_MS,
        spike={"h2_ppm": 100.0, "c2h2_ppm": 10.0},
        stuck=("h2_ppm", "ch4_ppm", "c2h4_ppm", "c2h6_ppm", "co_ppm"),
    ),
    DwdSpec(
        ESS_BMS, "ess", interval_ms=1_000,
        spike={"dc_voltage_v": 100.0, "dc_current_a": 200.0, "max_cell_temp_c": 20.0},
        stuck=("dc_voltage_v", "dc_current_a", "soc_pct", "max_cell_temp_c"),
    ),
    DwdSpec(
        PV_INVERTER, "pv_inverter", interval_ms=MINUTE_MS,
        spike={"ac_power_kw": 500.0, "dc_voltage_v": 300.0},
        stuck=("irradiance_w_m2", "dc_power_kw", "ac_power_kw", "dc_voltage_v"),
    ),
)


def dwd_spec(message_name: str) -> DwdSpec:
    """The DWD spec of message ``message_name``."""
    for s in DWD_SPECS:
        if s.name == message_name:
            return s
    raise KeyError(f"no DWD spec for {message_name!r}")
