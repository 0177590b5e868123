"""The ADS tables the API serves ("datasets"), described from their contracts.

A dataset is an ADS table with a serving copy: the streaming job's indicators
(:data:`~lakehouse.contracts.tables.SERVING_SCORE`) and the anomaly alarms of the ML scoring
job (:data:`~lakehouse.contracts.tables.ML_SERVING_SCORE`) and the health index
(:data:`~lakehouse.contracts.tables.HEALTH_SERVING_SCORE`). For each, this module knows
which column names the entity, which its time, and the grain, so that a query for one
entity over a range computes its serving-copy keys directly instead of scanning the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lakehouse.contracts.precision import roundings
from lakehouse.contracts.schema import Field, FieldType, TableContract
from lakehouse.contracts.serving import KEY_SEPARATOR
from lakehouse.contracts.tables import (
    ADS_ASSET_HEALTH,
    ADS_EQUIPMENT_ANOMALY,
    ADS_ESS_DAILY,
    ADS_FEEDER_DAILY,
    ADS_LOAD_CURVE,
    ADS_LOAD_DAILY,
    ADS_METER_ENERGY_15MIN,
    ADS_QUALITY_SCORECARD,
    ADS_TRANSFORMER_DAILY,
    ADS_VOLTAGE_DAILY,
    GRAINS,
    HEALTH_SERVING_SCORE,
    ML_SERVING_SCORE,
    SERVING_SCORE,
)

ENTITY_TYPES: tuple[str, ...] = ("region", "substation", "feeder", "transformer", "meter", "ess")
"""Entities indicators are kept for; every one but ``region`` is a device type."""

METER_LEVELS: tuple[str, ...] = ("meter", "transformer", "feeder", "substation", "region")
"""Entity types of the meter-based summaries (load, voltage)."""

PARTIAL = Field(
    "partial", FieldType.BOOLEAN,
    description="True while the row's window is not complete: it has not ended, the stream's "
    "watermark has not passed its end, or it is the newest window the stream has written. "
    "Computed by the API from the window and the current time; not stored in the lake.")
"""The column the API adds to every row of a dataset with a grain (docs/api.md)."""


@dataclass(frozen=True)
class Dataset:
    """One served ADS table.

    Attributes:
        name: Public name: the table name without ``ads_`` (``load_curve``).
        table: Its contract.
        time_field: The column the serving index is scored by.
        grain: ``15min`` or ``1d`` (rows aligned to it), or None for irregular times.
        entity_types: Entity types the rows are about.
        entity_id_field: Column holding the entity id.
        entity_type_field: Column holding the entity type, when rows mix several.
        region_field: Column holding the row's region, when the table has one.
        streamed: Written by the streaming job (its newest window is still filling).

    """

    name: str
    table: TableContract
    time_field: str
    grain: str | None
    entity_types: tuple[str, ...]
    entity_id_field: str
    entity_type_field: str | None = None
    region_field: str | None = None
    streamed: bool = False

    @property
    def grain_ms(self) -> int | None:
        """Length of the grain in milliseconds."""
        return GRAINS[self.grain] if self.grain else None

    @property
    def fields(self) -> list[str]:
        """Column names in contract order."""
        return self.table.field_names

    @property
    def answer_fields(self) -> tuple[Field, ...]:
        """Columns of an answer: the table's, then ``partial`` when the rows have a grain."""
        return (*self.table.fields, PARTIAL) if self.grain else self.table.fields

    @property
    def answer_names(self) -> list[str]:
        """Names of :attr:`answer_fields`."""
        return [f.name for f in self.answer_fields]

    @cached_property
    def roundings(self) -> list[tuple[str, int]]:
        """(column, decimals) of the double columns (:mod:`lakehouse.contracts.precision`)."""
        return roundings(self.table.fields)

    @property
    def keyed_by_entity_and_time(self) -> bool:
        """Whether the record key is exactly (entity [type], entity id, time column)."""
        expected = ((self.entity_type_field,) if self.entity_type_field else ()) + (
            self.entity_id_field, self.time_field)
        return self.grain is not None and self.table.record_key == expected

    def member(self, entity_type: str, entity_id: str, t_ms: int) -> str:
        """Serving-copy key suffix of one entity's row at ``t_ms`` (key-computable sets)."""
        parts = ([entity_type] if self.entity_type_field else []) + [entity_id, str(t_ms)]
        return KEY_SEPARATOR.join(parts)

    def parse_member(self, member: str) -> dict[str, str]:
        """Record key values of an index member (strings, as stored)."""
        return dict(zip(self.table.record_key, member.split(KEY_SEPARATOR), strict=False))

    def member_entity(self, member: str) -> tuple[str | None, str]:
        """(entity type or None when the table does not say, entity id) of a member."""
        key = self.parse_member(member)
        etype = key.get(self.entity_type_field) if self.entity_type_field else (
            self.entity_types[0] if len(self.entity_types) == 1 else None)
        return etype, key.get(self.entity_id_field, "")

    def row_entity(self, row: dict[str, Any]) -> tuple[str | None, str]:
        """(entity type or None, entity id) of a decoded row."""
        etype = row.get(self.entity_type_field) if self.entity_type_field else (
            self.entity_types[0] if len(self.entity_types) == 1 else None)
        return etype, str(row.get(self.entity_id_field))

    def aligned(self, start_ms: int, end_ms: int) -> list[int]:
        """Grain-aligned instants in ``[start_ms, end_ms)`` (key-computable sets only)."""
        step = self.grain_ms
        if step is None:
            raise ValueError(f"{self.name} has no grain")
        first = -(-start_ms // step) * step
        return list(range(first, end_ms, step))


def _ds(table: TableContract, grain: str | None, types: tuple[str, ...], id_field: str,
        type_field: str | None = None, region_field: str | None = None) -> Dataset:
    score = {**SERVING_SCORE, **ML_SERVING_SCORE, **HEALTH_SERVING_SCORE}[table.name]
    return Dataset(table.name.removeprefix("ads_"), table, score, grain, types, id_field,
                   type_field, region_field, streamed=table.name in SERVING_SCORE)


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    _ds(ADS_METER_ENERGY_15MIN, "15min", ("meter",), "device_id"),
    _ds(ADS_LOAD_CURVE, "15min", METER_LEVELS, "entity_id", "entity_type"),
    _ds(ADS_LOAD_DAILY, "1d", METER_LEVELS, "entity_id", "entity_type"),
    _ds(ADS_VOLTAGE_DAILY, "1d", METER_LEVELS, "entity_id", "entity_type"),
    _ds(ADS_FEEDER_DAILY, "1d", ("feeder",), "feeder_id"),
    _ds(ADS_TRANSFORMER_DAILY, "1d", ("transformer",), "transformer_id"),
    _ds(ADS_ESS_DAILY, "1d", ("ess",), "ess_id"),
    _ds(ADS_QUALITY_SCORECARD, "1d", ("region",), "region_id", region_field="region_id"),
    _ds(ADS_EQUIPMENT_ANOMALY, None, ("transformer", "ess", "feeder", "substation", "meter"),
        "device_id", region_field="region_id"),
    _ds(ADS_ASSET_HEALTH, "1d", ("transformer", "ess"), "asset_id", "asset_type",
        region_field="region_id"),
)}
"""Every dataset by public name."""

DAILY_BY_ENTITY: dict[str, tuple[str, ...]] = {
    "meter": ("load_daily", "voltage_daily"),
    "transformer": ("load_daily", "voltage_daily", "transformer_daily"),
    "feeder": ("load_daily", "voltage_daily", "feeder_daily"),
    "substation": ("load_daily", "voltage_daily"),
    "region": ("load_daily", "voltage_daily", "quality_scorecard"),
    "ess": ("ess_daily",),
}
"""Daily datasets holding indicators of each entity type."""

QUARTER_BY_ENTITY: dict[str, tuple[str, ...]] = {
    "meter": ("load_curve", "meter_energy_15min"),
    "transformer": ("load_curve",), "feeder": ("load_curve",), "substation": ("load_curve",),
    "region": ("load_curve",), "ess": (),
}
"""15-minute datasets holding indicators of each entity type."""


def dataset(name: str) -> Dataset:
    """The dataset called ``name``.

    Raises:
        KeyError: Unknown name.

    """
    return DATASETS[name]
