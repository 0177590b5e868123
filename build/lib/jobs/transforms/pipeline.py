"""The lakehouse's layers as one chain of named SQL views, for either engine.

Streaming (:mod:`jobs.streaming.lakehouse_job`) and backfills (:mod:`jobs.batch.backfill`)
both build their plan from here: the same views, rendered with their engine's
:class:`~jobs.transforms.dialect.Dialect`, feeding the same tables. Only the inputs differ:
the stream defines ``checked_<message>`` from Kafka, a backfill from ODS and quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.transforms import detail, indicators, summary
from jobs.transforms.dialect import Dialect
from lakehouse.contracts.messages import DEVICE_REGISTRY, MESSAGES
from lakehouse.contracts.quality import DWD_SPECS
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import (
    ADS_ESS_DAILY,
    ADS_FEEDER_DAILY,
    ADS_LOAD_CURVE,
    ADS_LOAD_DAILY,
    ADS_METER_ENERGY_15MIN,
    ADS_QUALITY_SCORECARD,
    ADS_TRANSFORMER_DAILY,
    ADS_VOLTAGE_DAILY,
    DIM_DEVICE,
    DWD_QUALITY_DAILY,
    DWD_TABLES,
    DWS_ESS,
    DWS_FEEDER,
    DWS_LOAD,
    DWS_TRANSFORMER,
    DWS_VOLTAGE,
)

#: Layers a backfill can start from, upstream first.
LAYERS: tuple[str, ...] = ("dim", "dwd", "dws", "ads")


def checked(message: str) -> str:
    """Name of the input view of one message kind (valid and rejected messages)."""
    return f"checked_{message}"


def first_seen(spec: str) -> str:
    """Name of the view of each device's earliest event time for one telemetry type."""
    return f"first_{spec}"


def views(d: Dialect, first_seen_given: bool = False) -> dict[str, str]:
    """Every view after the inputs, name → query, in dependency order.

    Args:
        d: The engine's dialect.
        first_seen_given: The caller defines the ``first_<spec>`` views itself (a backfill
            over a time range takes each device's first reading from the whole history).

    """
    v: dict[str, str] = {}
    v["registry_versions"] = detail.registry_versions_sql(checked(DEVICE_REGISTRY.name), d)
    v["dim_versions"] = detail.dim_versions_sql("registry_versions", d)
    for spec in DWD_SPECS:
        v[f"dedup_{spec.name}"] = detail.dedup_sql(spec, checked(spec.name), d)
        if not first_seen_given:
            v[first_seen(spec.name)] = detail.first_seen_sql(f"dedup_{spec.name}", d)
        v[f"detail_{spec.name}"] = detail.dwd_sql(
            spec, f"dedup_{spec.name}", first_seen(spec.name), "dim_versions", d
        )
    v["quality_rows"] = indicators.quality_rows_sql(
        {s.name: f"detail_{s.name}" for s in DWD_SPECS},
        {m.name: checked(m.name) for m in MESSAGES},
        d,
    )
    v["meter_intervals"] = summary.meter_intervals_sql("detail_meter_reading")
    v["meter_energy"] = summary.meter_energy_sql("meter_intervals")
    v["load_points"] = summary.load_points_sql("meter_energy")
    v["v_dws_load"] = summary.dws_load_sql("load_points")
    v["v_dws_voltage"] = summary.dws_voltage_sql("meter_intervals")
    v["v_dws_transformer"] = summary.dws_transformer_sql("detail_transformer_telemetry")
    v["v_dws_ess"] = summary.dws_ess_sql("detail_ess_bms")
    v["feeder_intervals"] = summary.feeder_intervals_sql("detail_feeder_scada")
    v["feeder_energy"] = summary.feeder_energy_sql("feeder_intervals")
    v["v_dws_feeder"] = summary.dws_feeder_sql("feeder_energy")
    return v


@dataclass(frozen=True)
class Output:
    """A table of the layers after ODS and the query that computes its rows.

    Attributes:
        table: The table.
        query: SQL over the views of :func:`views` (columns in any order).
        sources: Message kinds whose input the rows depend on.

    """

    table: TableContract
    query: str
    sources: frozenset[str]


_METER = frozenset({"meter_reading"})


def outputs(d: Dialect) -> list[Output]:
    """Every DIM, DWD, DWS and ADS table with its query, upstream first."""
    out = [Output(DIM_DEVICE, detail.dim_device_sql("dim_versions", d),
                  frozenset({DEVICE_REGISTRY.name}))]
    for spec in DWD_SPECS:
        out.append(Output(DWD_TABLES[spec.name],
                          detail.dwd_table_sql(spec, f"detail_{spec.name}", d),
                          frozenset({spec.name})))
    out.append(Output(DWD_QUALITY_DAILY, indicators.quality_daily_sql("quality_rows", d),
                      frozenset(m.name for m in MESSAGES)))
    dws = (
        (DWS_LOAD, _METER), (DWS_VOLTAGE, _METER),
        (DWS_TRANSFORMER, frozenset({"transformer_telemetry"})),
        (DWS_ESS, frozenset({"ess_bms"})), (DWS_FEEDER, frozenset({"feeder_scada"})),
    )
    for table, sources in dws:
        out.append(Output(table, summary.summary_table_sql(table, f"v_{table.name}", d),
                          sources))
    out += [
        Output(ADS_METER_ENERGY_15MIN, indicators.meter_energy_15min_sql("meter_energy", d),
               _METER),
        Output(ADS_LOAD_CURVE, indicators.load_curve_sql("v_dws_load", d), _METER),
        Output(ADS_LOAD_DAILY, indicators.load_daily_sql("v_dws_load", d), _METER),
        Output(ADS_FEEDER_DAILY, indicators.feeder_daily_sql("v_dws_feeder", "v_dws_load", d),
               _METER | {"feeder_scada"}),
        Output(ADS_VOLTAGE_DAILY, indicators.voltage_daily_sql("v_dws_voltage", d), _METER),
        Output(ADS_TRANSFORMER_DAILY,
               indicators.transformer_daily_sql("v_dws_transformer", d),
               frozenset({"transformer_telemetry"})),
        Output(ADS_ESS_DAILY, indicators.ess_daily_sql("v_dws_ess", d),
               frozenset({"ess_bms"})),
        Output(ADS_QUALITY_SCORECARD, indicators.scorecard_sql("quality_rows", d),
               frozenset(m.name for m in MESSAGES)),
    ]
    return out
