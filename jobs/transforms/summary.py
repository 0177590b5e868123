"""DWS layer as SQL: summaries per entity, grain and window from the usable DWD rows.

Summaries are plain GROUP BYs on aligned windows (``ms - MOD(ms, grain)``) rather than
event-time window operators: a late record simply updates the windows it belongs to, for
as long as their state lives (``flink.allowed_lateness_ms`` < ``flink.state_ttl``).
Roll-ups keep sums and counts, so an hourly mean is the exact mean of its readings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from jobs.common.ddl import project_sql, quote
from jobs.transforms.dialect import FLINK, Dialect
from lakehouse.contracts.messages import FEEDER_SCADA, METER_READING
from lakehouse.contracts.quality import (
    REGISTER_RESET_KWH,
    REGISTER_ROLLOVER_SHARE,
    REGISTER_TOLERANCE_KWH,
)
from lakehouse.contracts.schema import MessageContract, TableContract
from lakehouse.contracts.tables import ENTITY_LEVELS, GRAINS, HIERARCHY

QUARTER_MS = GRAINS["15min"]
V_LOW, V_HIGH = 207.0, 246.1
"""Qualified supply voltage band at the meters: 230 V −10 % / +7 % (GB/T 12325)."""



def _win(col: str, grain_ms: int) -> str:
    return f"{col} - MOD({col}, {grain_ms})"


def union(parts: Iterable[str]) -> str:
    """UNION ALL of queries."""
    return "\nUNION ALL\n".join(parts)


def register_intervals_sql(
    source: str, registers: Sequence[str], extra: Sequence[str] = (), hierarchy: bool = False
) -> str:
    """Per device and 15-minute interval: last/first of each cumulative register + extras.

    Args:
        source: Detail view (usable rows are used).
        registers: Cumulative register columns.
        extra: Additional aggregate expressions ``"EXPR AS `name`"``.
        hierarchy: Whether to carry the topology columns (largest value in the interval).

    """
    aggs = []
    for r in registers:
        aggs += [f"MAX({quote(r)}) AS {quote(r + '_last')}",
                 f"MIN({quote(r)}) AS {quote(r + '_first')}"]
    if hierarchy:
        aggs += [f"MAX({quote(h)}) AS {quote(h)}" for h in HIERARCHY]
    aggs += ["COUNT(*) AS `readings`", *extra]
    return (
        f"SELECT `device_id`, {_win('`event_ms`', QUARTER_MS)} AS `window_ms`,\n  "
        + ",\n  ".join(aggs) + "\n"
        f"FROM {quote(source)} WHERE `usable`\n"
        f"GROUP BY `device_id`, {_win('`event_ms`', QUARTER_MS)}"
    )


def register_cases(last: str, first: str, prev: str, has_prev: str,
                   maximum: float | None) -> list[tuple[str, str, str]]:
    """(condition, energy, baseline) of one register's interval, tried in order.

    The register rules of :data:`lakehouse.contracts.quality.REGISTER_RULES`: a fall within
    the tolerance is jitter (energy 0), a fall from the top of a declared range to its
    bottom a rollover, a fall to (near) 0 a reset, any other fall a decrease (no energy).
    """
    dbl0, null = "CAST(0 AS DOUBLE)", "CAST(NULL AS DOUBLE)"
    cases = [
        (f"NOT ({has_prev})", f"{last} - {first}", "first_reading"),
        (f"{last} >= {prev}", f"{last} - {prev}", "previous_interval"),
        (f"{last} >= {prev} - {REGISTER_TOLERANCE_KWH!r}", dbl0, "previous_interval"),
    ]
    if maximum is not None:
        share = round(REGISTER_ROLLOVER_SHARE * maximum, 6)
        cases.append((f"{prev} >= {round(maximum - share, 6)!r} AND {last} <= {share!r}",
                      f"{maximum!r} - {prev} + {last}", "register_rollover"))
    cases += [(f"{first} <= {REGISTER_RESET_KWH!r}", last, "register_reset"),
              ("TRUE", null, "register_decrease")]  # the last case is the ELSE
    return cases


def register_energy_sql(intervals: str, registers: dict[str, str], carry: Sequence[str],
                        maxima: Mapping[str, float | None] | None = None) -> str:
    """Energy per device and interval from register differences, with the register rules.

    ``energy = last(k) − last(k−1)`` when the previous interval has readings, else
    ``last(k) − first(k)``: exact under duplicates, disorder and late arrival. A register
    that fell is handled by the rules of :func:`register_cases` (docs/indicators.md);
    ``<energy>_baseline`` names the case.

    Args:
        intervals: View from :func:`register_intervals_sql`.
        registers: Register column → output energy column.
        carry: Columns of the interval view passed through.
        maxima: Register column → its declared maximum (rollover), when it has one.

    """
    cols = ["c.`device_id`", "c.`window_ms`"]
    has_prev = "p.`device_id` IS NOT NULL"
    for reg, out in registers.items():
        last, first = quote(reg + "_last"), quote(reg + "_first")
        cases = register_cases(f"c.{last}", f"c.{first}", f"p.{last}", has_prev,
                               (maxima or {}).get(reg))
        *tried, (_, no_energy, fallen) = cases
        energy = " ".join(f"WHEN {c} THEN {e}" for c, e, _ in tried) + f" ELSE {no_energy}"
        baseline = " ".join(f"WHEN {c} THEN '{b}'" for c, _, b in tried) + f" ELSE '{fallen}'"
        cols.append(f"CASE {energy} END AS {quote(out)}")
        cols.append(f"CASE {baseline} END AS {quote(out + '_baseline')}")
    cols.append(f"{has_prev} AS `has_previous`")
    cols += [f"c.{quote(c)}" for c in carry]
    return (
        "SELECT " + ",\n  ".join(cols) + "\n"
        f"FROM {quote(intervals)} AS c\n"
        f"LEFT JOIN {quote(intervals)} AS p\n"
        f"  ON p.`device_id` = c.`device_id` AND p.`window_ms` = c.`window_ms` - {QUARTER_MS}"
    )


def _maxima(message: MessageContract, registers: Sequence[str]) -> dict[str, float | None]:
    return {r: message.field(r).maximum for r in registers}


def meter_intervals_sql(dwd_meter: str) -> str:
    """Meter 15-minute stage: registers, voltage sums and the topology of the interval."""
    return register_intervals_sql(
        dwd_meter, ("energy_import_kwh", "energy_export_kwh"),
        extra=(
            "SUM(`voltage_v`) AS `voltage_sum_v`", "MIN(`voltage_v`) AS `voltage_min_v`",
            "MAX(`voltage_v`) AS `voltage_max_v`",
            f"SUM(CASE WHEN `voltage_v` >= {V_LOW} AND `voltage_v` <= {V_HIGH} THEN 1 "
            "ELSE 0 END) AS `qualified`",
        ),
        hierarchy=True,
    )


def meter_energy_sql(intervals: str) -> str:
    """Meter 15-minute energies and net load (kW = (import − export) / 0.25 h)."""
    inner = register_energy_sql(
        intervals, {"energy_import_kwh": "energy_import_kwh",
                    "energy_export_kwh": "energy_export_kwh"},
        carry=("energy_import_kwh_last", "readings", *HIERARCHY),
        maxima=_maxima(METER_READING, ("energy_import_kwh", "energy_export_kwh")),
    )
    return (
        "SELECT e.*, (e.`energy_import_kwh` - e.`energy_export_kwh`) * 4 AS `load_kw`\n"
        f"FROM (\n{inner}\n) AS e"
    )


def load_points_sql(meter_energy: str) -> str:
    """15-minute load points per entity at every level (meter … region)."""
    parts = []
    for level, col in ENTITY_LEVELS.items():
        parts.append(
            f"SELECT '{level}' AS `entity_type`, {quote(col)} AS `entity_id`, `window_ms`,\n"
            "  SUM(`energy_import_kwh`) AS `energy_import_kwh`,\n"
            "  SUM(`energy_export_kwh`) AS `energy_export_kwh`,\n"
            "  SUM(`load_kw`) AS `load_kw`, COUNT(*) AS `devices`\n"
            f"FROM {quote(meter_energy)} WHERE {quote(col)} IS NOT NULL\n"
            f"GROUP BY {quote(col)}, `window_ms`"
        )
    return union(parts)


def dws_load_sql(points: str) -> str:
    """``dws_load`` rows (BIGINT window_ms) at 15min, 1h and 1d."""
    parts = [
        "SELECT `entity_type`, `entity_id`, '15min' AS `grain`, `window_ms`,\n"
        f"  CAST({QUARTER_MS} AS BIGINT) AS `grain_ms`,\n"
        "  `energy_import_kwh`, `energy_export_kwh`, `load_kw` AS `avg_load_kw`,\n"
        "  `load_kw` AS `peak_load_kw`, `load_kw` AS `valley_load_kw`,\n"
        "  CAST(1 AS BIGINT) AS `points`, `devices`\n"
        f"FROM {quote(points)}"
    ]
    for grain in ("1h", "1d"):
        g = GRAINS[grain]
        parts.append(
            f"SELECT `entity_type`, `entity_id`, '{grain}' AS `grain`, "
            f"{_win('`window_ms`', g)} AS `window_ms`,\n"
            f"  CAST({g} AS BIGINT) AS `grain_ms`,\n"
            "  SUM(`energy_import_kwh`) AS `energy_import_kwh`,\n"
            "  SUM(`energy_export_kwh`) AS `energy_export_kwh`,\n"
            "  AVG(`load_kw`) AS `avg_load_kw`, MAX(`load_kw`) AS `peak_load_kw`,\n"
            "  MIN(`load_kw`) AS `valley_load_kw`, COUNT(*) AS `points`,\n"
            "  MAX(`devices`) AS `devices`\n"
            f"FROM {quote(points)}\n"
            f"GROUP BY `entity_type`, `entity_id`, {_win('`window_ms`', g)}"
        )
    return union(parts)


def dws_voltage_sql(intervals: str) -> str:
    """``dws_voltage`` rows: voltage statistics per level at 15min, 1h and 1d."""
    parts = []
    for level, col in ENTITY_LEVELS.items():
        for grain in ("15min", "1h", "1d"):
            g = GRAINS[grain]
            parts.append(
                f"SELECT '{level}' AS `entity_type`, {quote(col)} AS `entity_id`, "
                f"'{grain}' AS `grain`, {_win('`window_ms`', g)} AS `window_ms`,\n"
                f"  CAST({g} AS BIGINT) AS `grain_ms`,\n"
                "  SUM(`readings`) AS `readings`, MIN(`voltage_min_v`) AS `voltage_min_v`,\n"
                "  SUM(`voltage_sum_v`) / SUM(`readings`) AS `voltage_avg_v`,\n"
                "  MAX(`voltage_max_v`) AS `voltage_max_v`,\n"
                "  SUM(`qualified`) AS `qualified`, SUM(`voltage_sum_v`) AS `voltage_sum_v`\n"
                f"FROM {quote(intervals)} WHERE {quote(col)} IS NOT NULL\n"
                f"GROUP BY {quote(col)}, {_win('`window_ms`', g)}"
            )
    return union(parts)


def grain_stats_sql(
    source: str, entity_type: str, grains: Sequence[str], aggs: Sequence[str]
) -> str:
    """Per device summaries at several grains straight from usable detail rows."""
    parts = []
    for grain in grains:
        g = GRAINS[grain]
        parts.append(
            f"SELECT '{entity_type}' AS `entity_type`, `device_id` AS `entity_id`, "
            f"'{grain}' AS `grain`, {_win('`event_ms`', g)} AS `window_ms`,\n"
            f"  CAST({g} AS BIGINT) AS `grain_ms`,\n  COUNT(*) AS `readings`,\n  "
            + ",\n  ".join(aggs) + "\n"
            f"FROM {quote(source)} WHERE `usable`\n"
            f"GROUP BY `device_id`, {_win('`event_ms`', g)}"
        )
    return union(parts)


def dws_transformer_sql(dwd: str) -> str:
    """``dws_transformer`` rows at 1min, 15min, 1h and 1d."""
    return grain_stats_sql(dwd, "transformer", ("1min", "15min", "1h", "1d"), (
        "AVG(`load_kva`) AS `load_kva_avg`", "MAX(`load_kva`) AS `load_kva_max`",
        "AVG(`load_pu`) AS `load_pu_avg`", "MAX(`load_pu`) AS `load_pu_max`",
        "MAX(`top_oil_temp_c`) AS `top_oil_max_c`",
        "MAX(`hot_spot_temp_c`) AS `hot_spot_max_c`",
        "AVG(`ambient_temp_c`) AS `ambient_avg_c`",
        "SUM(`aging_factor` * `interval_ms` / 3600000.0) AS `aging_hours`",
        "SUM(CASE WHEN `load_pu` > 1.0 THEN `interval_ms` / 60000.0 ELSE 0.0 END)"
        " AS `overload_minutes`",
    ))


def dws_ess_sql(dwd: str) -> str:
    """``dws_ess`` rows at 1min, 15min, 1h and 1d."""
    return grain_stats_sql(dwd, "ess", ("1min", "15min", "1h", "1d"), (
        "MIN(`soc_pct`) AS `soc_min_pct`", "AVG(`soc_pct`) AS `soc_avg_pct`",
        "MAX(`soc_pct`) AS `soc_max_pct`", "MAX(`max_cell_temp_c`) AS `cell_temp_max_c`",
        "AVG(`max_cell_temp_c`) AS `cell_temp_avg_c`",
        "AVG(`cell_voltage_gap_mv`) AS `cell_gap_avg_mv`",
        "MAX(`cell_voltage_gap_mv`) AS `cell_gap_max_mv`",
        "SUM(CASE WHEN `power_kw` < 0 THEN -`power_kw` ELSE 0.0 END * `interval_ms`"
        " / 3600000.0) AS `charge_kwh`",
        "SUM(CASE WHEN `power_kw` > 0 THEN `power_kw` ELSE 0.0 END * `interval_ms`"
        " / 3600000.0) AS `discharge_kwh`",
    ))


_UNBALANCE = (
    "CASE WHEN (`current_a` + `current_b_a` + `current_c_a`) = 0 THEN 0.0 ELSE "
    "100.0 * GREATEST(ABS(`current_a` - (`current_a` + `current_b_a` + `current_c_a`) / 3.0), "
    "ABS(`current_b_a` - (`current_a` + `current_b_a` + `current_c_a`) / 3.0), "
    "ABS(`current_c_a` - (`current_a` + `current_b_a` + `current_c_a`) / 3.0)) "
    "/ ((`current_a` + `current_b_a` + `current_c_a`) / 3.0) END"
)


def feeder_intervals_sql(dwd_feeder: str) -> str:
    """Feeder 15-minute stage: registers plus sums for exact roll-ups."""
    return register_intervals_sql(
        dwd_feeder, ("energy_import_kwh", "energy_export_kwh"),
        extra=(
            "SUM(`active_power_kw`) AS `p_sum`", "SUM(`reactive_power_kvar`) AS `q_sum`",
            "MAX(`active_power_kw`) AS `p_max`", f"SUM({_UNBALANCE}) AS `u_sum`",
            f"MAX({_UNBALANCE}) AS `u_max`", "SUM(`bus_voltage_v`) AS `v_sum`",
        ),
    )


def feeder_energy_sql(intervals: str) -> str:
    """Feeder 15-minute energies with the interval's sums."""
    return register_energy_sql(
        intervals, {"energy_import_kwh": "energy_import_kwh",
                    "energy_export_kwh": "energy_export_kwh"},
        carry=("readings", "p_sum", "q_sum", "p_max", "u_sum", "u_max", "v_sum"),
        maxima=_maxima(FEEDER_SCADA, ("energy_import_kwh", "energy_export_kwh")),
    )


def dws_feeder_sql(energy: str) -> str:
    """``dws_feeder`` rows at 15min, 1h and 1d."""
    parts = []
    for grain in ("15min", "1h", "1d"):
        g = GRAINS[grain]
        parts.append(
            f"SELECT 'feeder' AS `entity_type`, `device_id` AS `entity_id`, '{grain}' AS `grain`,"
            f" {_win('`window_ms`', g)} AS `window_ms`,\n"
            f"  CAST({g} AS BIGINT) AS `grain_ms`,\n"
            "  SUM(`readings`) AS `readings`,\n"
            "  SUM(`energy_import_kwh`) AS `energy_import_kwh`,\n"
            "  SUM(`energy_export_kwh`) AS `energy_export_kwh`,\n"
            "  SUM(`p_sum`) / SUM(`readings`) AS `active_power_avg_kw`,\n"
            "  SUM(`q_sum`) / SUM(`readings`) AS `reactive_power_avg_kvar`,\n"
            "  MAX(`p_max`) AS `active_power_max_kw`,\n"
            "  SUM(`u_sum`) / SUM(`readings`) AS `unbalance_avg_pct`,\n"
            "  MAX(`u_max`) AS `unbalance_max_pct`,\n"
            "  SUM(`v_sum`) / SUM(`readings`) AS `bus_voltage_avg_v`\n"
            f"FROM {quote(energy)}\n"
            f"GROUP BY `device_id`, {_win('`window_ms`', g)}"
        )
    return union(parts)


def summary_table_sql(table: TableContract, view: str, d: Dialect = FLINK) -> str:
    """Rows of a DWS table (window columns as timestamps) from its BIGINT-window view."""
    return project_sql(table, view, {
        "window_start": d.ts("`window_ms`"), "window_end": d.ts("`window_ms` + `grain_ms`"),
        "updated_ts": d.stamp(), "dt": d.date("`window_ms`"),
    })
