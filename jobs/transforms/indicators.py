"""ADS layer and data-quality counts as SQL (formulas: docs/indicators.md)."""

from __future__ import annotations

from collections.abc import Mapping

from jobs.common.ddl import quote, sql_string
from jobs.transforms.dialect import FLINK, Dialect
from jobs.transforms.summary import QUARTER_MS, union
from lakehouse.contracts.quality import RULES
from lakehouse.contracts.tables import UNKNOWN_REGION
from lakehouse.time import DAY_MS

NORMAL_LIFE_H = 180_000.0
"""IEEE C57.91 normal insulation life (hours) behind the loss-of-life percentage."""


def _tail(d: Dialect, time_col: str = "`window_ms`") -> str:
    return f"{d.stamp()} AS `updated_ts`, {d.date(time_col)} AS `dt`"


def _daily(dws: str, key: str, values: str, d: Dialect) -> str:
    """An ADS daily table from the 1d rows of a DWS view: key, ``day``, values, tail."""
    return (
        f"SELECT {key}, {d.ts('`window_ms`')} AS `day`,\n  {values},\n  {_tail(d)}\n"
        f"FROM {quote(dws)} WHERE `grain` = '1d'"
    )


_ENTITY = "`entity_type`, `entity_id`"


def meter_energy_15min_sql(meter_energy: str, d: Dialect = FLINK) -> str:
    """``ads_meter_energy_15min`` rows."""
    return (
        f"SELECT `device_id`, {d.ts('`window_ms`')} AS `window_start`,\n"
        f"  {d.ts(f'`window_ms` + {QUARTER_MS}')} AS `window_end`,\n"
        "  `energy_import_kwh` AS `energy_kwh`, `energy_import_kwh_last` AS `register_last_kwh`,\n"
        "  `readings`,\n"
        "  `energy_import_kwh_baseline` AS `baseline`,\n"
        f"  {_tail(d)}\n"
        f"FROM {quote(meter_energy)}"
    )


def load_curve_sql(dws_load: str, d: Dialect = FLINK) -> str:
    """``ads_load_curve``: the 15-minute points (96 a day)."""
    return (
        f"SELECT `entity_type`, `entity_id`, {d.ts('`window_ms`')} AS `window_start`,\n"
        f"  CAST(MOD(`window_ms`, {DAY_MS}) / {QUARTER_MS} AS INT) AS `point`,\n"
        "  `avg_load_kw` AS `load_kw`, `energy_import_kwh`, `devices`,\n"
        f"  {_tail(d)}\n"
        f"FROM {quote(dws_load)} WHERE `grain` = '15min'"
    )


def load_daily_sql(dws_load: str, d: Dialect = FLINK) -> str:
    """``ads_load_daily``: peak, valley, peak-valley difference rate, load factor."""
    return _daily(dws_load, _ENTITY, (
        "`energy_import_kwh`, `energy_export_kwh`, `avg_load_kw`, `peak_load_kw`,\n"
        "  `valley_load_kw`, `peak_load_kw` - `valley_load_kw` AS `peak_valley_diff_kw`,\n"
        "  CASE WHEN `peak_load_kw` > 0 THEN (`peak_load_kw` - `valley_load_kw`) * 100.0 /"
        " `peak_load_kw` END AS `peak_valley_rate_pct`,\n"
        "  CASE WHEN `peak_load_kw` > 0 THEN `avg_load_kw` * 100.0 / `peak_load_kw` END"
        " AS `load_factor_pct`,\n"
        "  `points`"
    ), d)


def feeder_daily_sql(dws_feeder: str, dws_load: str, d: Dialect = FLINK) -> str:
    """``ads_feeder_daily``: line loss (SCADA supply vs meters), power factor, unbalance."""
    supply = ("(f.`energy_import_kwh` - f.`energy_export_kwh` + "
              "COALESCE(l.`energy_export_kwh`, 0.0))")
    delivered = "COALESCE(l.`energy_import_kwh`, 0.0)"
    p, q = "f.`active_power_avg_kw`", "f.`reactive_power_avg_kvar`"
    return (
        f"SELECT f.`entity_id` AS `feeder_id`, {d.ts('f.`window_ms`')} AS `day`,\n"
        f"  {supply} AS `supply_kwh`, {delivered} AS `delivered_kwh`,\n"
        f"  {supply} - {delivered} AS `loss_kwh`,\n"
        f"  CASE WHEN {supply} > 0 THEN ({supply} - {delivered}) * 100.0 / {supply} END"
        " AS `line_loss_rate_pct`,\n"
        f"  CASE WHEN {p} = 0 AND {q} = 0 THEN CAST(NULL AS DOUBLE)"
        f" ELSE {p} / SQRT({p} * {p} + {q} * {q}) END AS `power_factor`,\n"
        "  f.`unbalance_avg_pct`, f.`unbalance_max_pct`, f.`readings`,\n"
        f"  {d.stamp()} AS `updated_ts`, {d.date('f.`window_ms`')} AS `dt`\n"
        f"FROM {quote(dws_feeder)} AS f\n"
        f"LEFT JOIN {quote(dws_load)} AS l\n"
        "  ON l.`entity_type` = 'feeder' AND l.`grain` = '1d' AND l.`entity_id` = f.`entity_id`"
        " AND l.`window_ms` = f.`window_ms`\n"
        "WHERE f.`grain` = '1d'"
    )


def voltage_daily_sql(dws_voltage: str, d: Dialect = FLINK) -> str:
    """``ads_voltage_daily``: voltage qualification rate."""
    return _daily(dws_voltage, _ENTITY, (
        "`readings`, `qualified`, `qualified` * 100.0 / `readings` AS"
        " `qualification_rate_pct`,\n"
        "  `voltage_min_v`, `voltage_avg_v`, `voltage_max_v`"
    ), d)


def transformer_daily_sql(dws_transformer: str, d: Dialect = FLINK) -> str:
    """``ads_transformer_daily``: loading rate, overload, hot-spot ageing."""
    return _daily(dws_transformer, "`entity_id` AS `transformer_id`", (
        "`load_pu_max` * 100.0 AS `loading_rate_pct`,"
        " `load_pu_avg` * 100.0 AS `avg_loading_pct`,\n"
        "  `overload_minutes`, `overload_minutes` > 0 AS `overloaded`,\n"
        "  `hot_spot_max_c`, `top_oil_max_c`, `aging_hours`,\n"
        f"  `aging_hours` * 100.0 / {NORMAL_LIFE_H} AS `loss_of_life_pct`, `readings`"
    ), d)


def ess_daily_sql(dws_ess: str, d: Dialect = FLINK) -> str:
    """``ads_ess_daily``: SOC, temperature, cell gap and throughput statistics."""
    return _daily(dws_ess, "`entity_id` AS `ess_id`", (
        "`soc_min_pct`, `soc_avg_pct`, `soc_max_pct`, `cell_temp_max_c`,\n"
        "  `cell_gap_avg_mv`, `cell_gap_max_mv`, `charge_kwh`, `discharge_kwh`, `readings`"
    ), d)


_COUNTS = ("received", "records", "clean", *(r.name for r in RULES), "quarantined")


def quality_rows_sql(
    dwd: Mapping[str, str], checked: Mapping[str, str], d: Dialect = FLINK
) -> str:
    """Per-record contributions to the quality counts, before aggregation.

    Args:
        dwd: Message name → detail view.
        checked: Message name → checked view (for quarantined messages).
        d: SQL dialect.

    """
    parts = []
    for source, view in dwd.items():
        vals = {
            "received": "`copies`", "records": "CAST(1 AS BIGINT)",
            "clean": "CAST(CASE WHEN `quality_flags` = '' THEN 1 ELSE 0 END AS BIGINT)",
            "quarantined": "CAST(0 AS BIGINT)",
        }
        for r in RULES:
            vals[r.name] = (
                "`copies` - 1" if r.name == "duplicate"
                else f"CAST(CASE WHEN `flag_{r.name}` THEN 1 ELSE 0 END AS BIGINT)"
            )
        cols = ", ".join(f"{vals[c]} AS {quote(c)}" for c in _COUNTS)
        parts.append(
            f"SELECT {d.date('`event_ms`')} AS `dt`, {sql_string(source)} AS `source`,\n"
            f"  COALESCE(`region_id`, {sql_string(UNKNOWN_REGION)}) AS `region_id`, {cols}\n"
            f"FROM {quote(view)}"
        )
    for source, view in checked.items():
        cols = ", ".join(
            f"CAST({1 if c == 'quarantined' else 0} AS BIGINT) AS {quote(c)}" for c in _COUNTS
        )
        parts.append(
            f"SELECT DATE_FORMAT(`ingest_ts`, 'yyyy-MM-dd') AS `dt`, {sql_string(source)} AS"
            f" `source`,\n  {sql_string(UNKNOWN_REGION)} AS `region_id`, {cols}\n"
            f"FROM {quote(view)} WHERE `reason` IS NOT NULL"
        )
    return union(parts)


def quality_daily_sql(rows: str, d: Dialect = FLINK) -> str:
    """``dwd_quality_daily``: counts per day, message kind and region."""
    sums = ", ".join(f"SUM({quote(c)}) AS {quote(c)}" for c in _COUNTS)
    return (
        f"SELECT `dt`, `source`, `region_id`, {sums}, {d.stamp()} AS `updated_ts`\n"
        f"FROM {quote(rows)} GROUP BY `dt`, `source`, `region_id`"
    )


def scorecard_sql(rows: str, d: Dialect = FLINK) -> str:
    """``ads_quality_scorecard``: counts per region and day, score = clean share."""
    sums = ", ".join(f"SUM({quote(c)}) AS {quote(c)}" for c in _COUNTS)
    day = d.day_ms("`dt`")
    return (
        f"SELECT `region_id`, {d.ts(day)} AS `day`, {sums},\n"
        "  SUM(`clean`) * 100.0 / (SUM(`received`) + SUM(`quarantined`)) AS `score_pct`,\n"
        f"  {d.stamp()} AS `updated_ts`, `dt`\n"
        f"FROM {quote(rows)} GROUP BY `region_id`, `dt`"
    )
