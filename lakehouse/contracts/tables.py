"""The lakehouse table catalog (Hudi on HDFS): every table of every layer, declared once.

ODS and DWD tables are derived from the message contracts (one per topic / telemetry
type); DIM, DWS and ADS tables are written out here. Flink DDL, Spark schemas, API models
and ``docs/tables.md`` are all rendered from these objects.
"""

from __future__ import annotations

from lakehouse.contracts.images import DESCRIPTION_FIELDS
from lakehouse.contracts.messages import DEVICE_REGISTRY, MESSAGES, METER_READING
from lakehouse.contracts.quality import DWD_SPECS, RULES, DwdSpec
from lakehouse.contracts.schema import Field, FieldType, MessageContract, TableContract
from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS

S, INT, B, D, TS, BOOL = (
    FieldType.STRING, FieldType.INT, FieldType.BIGINT, FieldType.DOUBLE, FieldType.TIMESTAMP,
    FieldType.BOOLEAN,
)

GRAINS: dict[str, int] = {
    "1min": MINUTE_MS, "15min": 15 * MINUTE_MS, "1h": HOUR_MS, "1d": DAY_MS,
}
"""Summary grains and their lengths in milliseconds (windows aligned to UTC epoch)."""

HIERARCHY: tuple[str, ...] = ("region_id", "substation_id", "feeder_id", "transformer_id")
"""Topology columns every DWD row carries (from DIM at event time)."""

ENTITY_LEVELS: dict[str, str] = {
    "meter": "device_id", "transformer": "transformer_id", "feeder": "feeder_id",
    "substation": "substation_id", "region": "region_id",
}
"""Entity types of the meter-based summaries and the DWD column identifying each."""

UNKNOWN_REGION = "unknown"

INGEST_FIELDS: tuple[Field, ...] = (
    Field("kafka_topic", S, description="Topic the message was read from."),
    Field("kafka_partition", INT, description="Partition the message was read from."),
    Field("kafka_offset", B, description="Offset of the message in its partition."),
    Field("ingest_ts", TS, "ms", "When the streaming job ingested the message."),
)
LATENESS = Field(
    "lateness", S, "",
    "Arrival relative to the partition's watermark when ingested: on_time, late or "
    "too_late (history imports: on_time). Kept so that a backfill from ODS decides "
    "exactly as the stream did.",
)
DT = Field("dt", S, description="Partition: event date (UTC) yyyy-MM-dd.")
UPDATED = Field("updated_ts", TS, "ms", "When this version of the row was computed.")


def _ods(message: MessageContract) -> TableContract:
    return TableContract(
        name=f"ods_{message.name}",
        layer="ods",
        fields=(*message.fields, *INGEST_FIELDS, LATENESS, DT),
        # One row per Kafka record: a replay rewrites the same keys; a device's duplicate
        # reading is kept as received (DWD de-duplicates).
        record_key=("kafka_topic", "kafka_partition", "kafka_offset"),
        ordering_field="ingest_ts",
        partition_fields=("dt",),
        description=f"Every schema-valid `{message.topic}` message exactly as received, with "
                    "its Kafka position.",
        grain="one row per Kafka record",
        fed_by=f"stream job `lakehouse` from topic `{message.topic}`",
        retention_days=400,
    )


ODS_TABLES: dict[str, TableContract] = {m.name: _ods(m) for m in MESSAGES}
ODS_METER_READING = ODS_TABLES[METER_READING.name]

QUARANTINE = TableContract(
    name="ods_quarantine",
    layer="ods",
    fields=(
        Field("kafka_topic", S, description="Topic the message was read from."),
        Field("kafka_partition", INT, description="Partition the message was read from."),
        Field("kafka_offset", B, description="Offset of the message in its partition."),
        Field("reason", S, description="Why it was rejected, e.g. missing_field:ts."),
        Field("payload", S, description="The raw message value as received.", required=False),
        Field("ingest_ts", TS, "ms", "When the streaming job ingested the message."),
        Field("dt", S, description="Partition: ingest date (UTC) yyyy-MM-dd."),
    ),
    record_key=("kafka_topic", "kafka_partition", "kafka_offset"),
    ordering_field="ingest_ts",
    partition_fields=("dt",),
    description="Messages of any topic that are not valid JSON or violate their contract.",
    grain="one row per rejected Kafka record",
    fed_by="stream job `lakehouse` from every consumed topic",
    retention_days=400,
)

_DEVICE_ATTRS = tuple(
    f for f in DEVICE_REGISTRY.fields if f.name not in ("device_id", "ts")
)

DIM_DEVICE = TableContract(
    name="dim_device",
    layer="dim",
    fields=(
        Field("device_id", S, description="Device id."),
        Field("valid_from", TS, "ms", "When this version took effect (registry `ts`; the "
              "earliest of a re-sent version's copies)."),
        Field("valid_to", TS, "ms",
              "When the next version took effect; empty for the current version.",
              required=False),
        *(Field(f.name, f.type, f.unit, f.description, required=f.name == "version")
          for f in _DEVICE_ATTRS),
        Field("is_current", BOOL, "", "Whether this is the device's latest version."),
        UPDATED,
    ),
    record_key=("device_id", "version"),
    ordering_field="updated_ts",
    description="Devices and topology with history (SCD type 2): one row per version. "
                "Facts join the version valid at their event time; version 1 also covers "
                "telemetry recorded before the device's first registry event.",
    grain="one row per device and version",
    fed_by="stream job `lakehouse` from topic `device.registry`",
)

QUALITY_FLAG_FIELDS: tuple[Field, ...] = tuple(
    Field(f"flag_{r.name}", BOOL, "", r.description) for r in RULES
)


def _dwd(spec: DwdSpec) -> TableContract:
    return TableContract(
        name=f"dwd_{spec.name}",
        layer="dwd",
        fields=(
            Field("device_id", S, description=f"Reporting {spec.device_type} id "
                  f"(message field `{spec.message.key_field}`)."),
            Field("event_ts", TS, "ms", "Event time of the reading."),
            *(m.field for m in spec.measures),
            Field("seq", B, "", "Device sequence number of the kept copy."),
            Field("region_id", S, description="Region (from DIM at event time).",
                  required=False),
            Field("substation_id", S, description="Substation (DIM at event time; the "
                  "device itself for a substation).", required=False),
            Field("feeder_id", S, description="Feeder (DIM at event time; the device "
                  "itself for a feeder).", required=False),
            Field("transformer_id", S, description="Distribution transformer (DIM at event "
                  "time; the device itself for a transformer).", required=False),
            Field("dim_version", INT, "", "DIM version joined; empty for unknown devices.",
                  required=False),
            Field("copies", B, "", "How many copies of this reading were received."),
            *QUALITY_FLAG_FIELDS,
            Field("quality_flags", S, "",
                  "Comma-separated names of the rules the record violates, in rule order; "
                  "empty when clean.", required=False),
            Field("usable", BOOL, "", "Whether the record feeds the summaries (no "
                  "excluding rule fired)."),
            *INGEST_FIELDS,
            UPDATED,
            DT,
        ),
        record_key=("device_id", "event_ts"),
        ordering_field="updated_ts",
        partition_fields=("dt",),
        description=f"Validated, de-duplicated `{spec.message.name}` readings in normal units, "
                    "enriched with DIM, with data-quality flags.",
        grain="one row per device and event time",
        fed_by=f"stream job `lakehouse` from `ods_{spec.name}` rows and `dim_device`",
        retention_days=400,
    )


DWD_TABLES: dict[str, TableContract] = {s.name: _dwd(s) for s in DWD_SPECS}

# Summaries and quality counts are rewritten every checkpoint while their windows are open,
# the case MERGE_ON_READ is for: updates go to log files, which compaction merges into new
# base files every few commits (lake.compaction_delta_commits), and new keys to file groups
# of their own, which clustering merges (HudiTableWriter.MERGE_ON_READ_OWNED says why).
# An existing COPY_ON_WRITE table is refused by the writers (table type mismatch): rewrite it
# into a new lake with a backfill.
UPDATED_IN_PLACE = "MERGE_ON_READ"
# ADS tables are rewritten in place too but stay COPY_ON_WRITE: the API reads older ranges
# of them straight from their Parquet base files (api/lake_reader.py), which hold every row only
# when there are no log files.
SERVED_IN_PLACE = "COPY_ON_WRITE"


DWD_QUALITY_DAILY = TableContract(
    name="dwd_quality_daily",
    layer="dwd",
    fields=(
        Field("dt", S, description="Event date (UTC) yyyy-MM-dd (ingest date for quarantine)."),
        Field("source", S, description="Message kind (contract name) the counts are of, "
              "e.g. meter_reading."),
        Field("region_id", S, description=f"Region; `{UNKNOWN_REGION}` when not attributable "
              "(unknown devices, quarantined messages)."),
        Field("received", B, "", "Valid messages received (duplicates included)."),
        Field("records", B, "", "Distinct readings (DWD rows)."),
        Field("clean", B, "", "DWD rows with no flag at all."),
        *(Field(r.name, B, "", f"Records flagged `{r.name}`" + (
            " (extra copies received)" if r.name == "duplicate" else "") + ".") for r in RULES),
        Field("quarantined", B, "", "Messages rejected to `ods_quarantine`."),
        UPDATED,
    ),
    record_key=("dt", "source", "region_id"),
    ordering_field="updated_ts",
    partition_fields=("dt",),
    description="Data-quality counts per rule, day, message kind and region.",
    grain="one row per day, message kind and region",
    fed_by="stream job `lakehouse` from the DWD rows and quarantine",
    table_type=UPDATED_IN_PLACE,
)


def _summary_key() -> tuple[Field, ...]:
    return (
        Field("entity_type", S, description="meter, transformer, feeder, substation, region, "
              "ess (what `entity_id` names)."),
        Field("entity_id", S, description="Id of the entity."),
        Field("grain", S, description="Window length: 1min, 15min, 1h or 1d."),
        Field("window_start", TS, "ms", "Window start (UTC, aligned to the grain)."),
        Field("window_end", TS, "ms", "Window end (exclusive)."),
    )


_SUMMARY_KEY = ("entity_type", "entity_id", "grain", "window_start")


def _summary(name: str, description: str, fed_by: str, fields: tuple[Field, ...],
             layer: str = "dws") -> TableContract:
    return TableContract(
        name=name, layer=layer,
        fields=(*_summary_key(), *fields, UPDATED, DT),
        record_key=_SUMMARY_KEY, ordering_field="updated_ts", partition_fields=("dt",),
        description=description, grain="one row per entity, grain and window",
        fed_by=fed_by, table_type=UPDATED_IN_PLACE,
    )


DWS_LOAD = _summary(
    "dws_load",
    "Energy and load per meter, transformer, feeder, substation and region at 15min, 1h "
    "and 1d, from the meters' registers.",
    "stream job `lakehouse` from `dwd_meter_reading`",
    (
        Field("energy_import_kwh", D, "kWh", "Import energy in the window (register "
              "differences, see docs/indicators.md)."),
        Field("energy_export_kwh", D, "kWh", "Export energy in the window."),
        Field("avg_load_kw", D, "kW", "Mean of the window's 15-minute net loads."),
        Field("peak_load_kw", D, "kW", "Largest 15-minute net load in the window."),
        Field("valley_load_kw", D, "kW", "Smallest 15-minute net load in the window."),
        Field("points", B, "", "15-minute load points in the window."),
        Field("devices", B, "", "Meters contributing (largest count of any 15-minute point)."),
    ),
)

DWS_VOLTAGE = _summary(
    "dws_voltage",
    "Supply voltage statistics at the meters (phase A) per meter, transformer, feeder, "
    "substation and region at 15min, 1h and 1d.",
    "stream job `lakehouse` from `dwd_meter_reading`",
    (
        Field("readings", B, "", "Usable meter readings."),
        Field("voltage_min_v", D, "V", "Lowest phase-A voltage."),
        Field("voltage_avg_v", D, "V", "Mean phase-A voltage."),
        Field("voltage_max_v", D, "V", "Highest phase-A voltage."),
        Field("qualified", B, "", "Readings within the qualified band (207–246.1 V: 230 V "
              "+7 % / −10 %)."),
        Field("voltage_sum_v", D, "V", "Sum of phase-A voltages (for exact roll-ups)."),
    ),
)

DWS_TRANSFORMER = _summary(
    "dws_transformer",
    "Distribution transformer loading and thermal state at 1min, 15min, 1h and 1d.",
    "stream job `lakehouse` from `dwd_transformer_telemetry`",
    (
        Field("readings", B, "", "Usable readings."),
        Field("load_kva_avg", D, "kVA", "Mean apparent power."),
        Field("load_kva_max", D, "kVA", "Largest apparent power."),
        Field("load_pu_avg", D, "", "Mean load in per unit of rated kVA."),
        Field("load_pu_max", D, "", "Largest load in per unit of rated kVA."),
        Field("top_oil_max_c", D, "°C", "Highest top-oil temperature."),
        Field("hot_spot_max_c", D, "°C", "Highest winding hot-spot temperature."),
        Field("ambient_avg_c", D, "°C", "Mean ambient temperature."),
        Field("aging_hours", D, "h", "Equivalent aging (IEEE C57.91): Σ F_AA × reading "
              "interval."),
        Field("overload_minutes", D, "min", "Minutes with load above 1.0 pu."),
    ),
)

DWS_ESS = _summary(
    "dws_ess",
    "Battery bank (ESS) state of charge, temperature and cell balance at 1min, 15min, 1h "
    "and 1d.",
    "stream job `lakehouse` from `dwd_ess_bms`",
    (
        Field("readings", B, "", "Usable BMS readings."),
        Field("soc_min_pct", D, "%", "Lowest state of charge."),
        Field("soc_avg_pct", D, "%", "Mean state of charge."),
        Field("soc_max_pct", D, "%", "Highest state of charge."),
        Field("cell_temp_max_c", D, "°C", "Highest cell temperature."),
        Field("cell_temp_avg_c", D, "°C", "Mean of the highest-cell temperature."),
        Field("cell_gap_avg_mv", D, "mV", "Mean cell voltage gap."),
        Field("cell_gap_max_mv", D, "mV", "Largest cell voltage gap."),
        Field("charge_kwh", D, "kWh", "Energy charged: Σ max(−P, 0) × interval."),
        Field("discharge_kwh", D, "kWh", "Energy discharged: Σ max(P, 0) × interval."),
    ),
)

DWS_FEEDER = _summary(
    "dws_feeder",
    "Feeder head (SCADA) energy, power and phase balance at 15min, 1h and 1d.",
    "stream job `lakehouse` from `dwd_feeder_scada`",
    (
        Field("readings", B, "", "Usable SCADA readings."),
        Field("energy_import_kwh", D, "kWh", "Energy into the feeder (register differences)."),
        Field("energy_export_kwh", D, "kWh", "Energy back-fed to the bus."),
        Field("active_power_avg_kw", D, "kW", "Mean active power."),
        Field("reactive_power_avg_kvar", D, "kvar", "Mean reactive power."),
        Field("active_power_max_kw", D, "kW", "Largest active power."),
        Field("unbalance_avg_pct", D, "%", "Mean current unbalance (max deviation of a phase "
              "current from the three-phase mean, over the mean)."),
        Field("unbalance_max_pct", D, "%", "Largest current unbalance."),
        Field("bus_voltage_avg_v", D, "V", "Mean MV bus voltage."),
    ),
)

ADS_METER_ENERGY_15MIN = TableContract(
    name="ads_meter_energy_15min",
    layer="ads",
    fields=(
        Field("device_id", S, description="Meter id."),
        Field("window_start", TS, "ms", "Start of the 15-minute interval (UTC)."),
        Field("window_end", TS, "ms", "End of the interval (exclusive)."),
        Field("energy_kwh", D, "kWh",
              "Import energy in the interval: last register in it minus the last register "
              "of the previous interval (or the first register in it when the previous "
              "interval has no reading); a fallen register follows the register rules "
              "(docs/indicators.md): empty after a decrease."),
        Field("register_last_kwh", D, "kWh", "Last (largest) import register in the interval."),
        Field("readings", B, "", "Distinct usable readings in the interval."),
        Field("baseline", S, "", "previous_interval or first_reading; register_rollover, "
              "register_reset or register_decrease when the register fell."),
        UPDATED,
        Field("dt", S, description="Partition: interval date (UTC) yyyy-MM-dd."),
    ),
    record_key=("device_id", "window_start"),
    ordering_field="updated_ts",
    partition_fields=("dt",),
    description="15-minute import energy per meter.",
    grain="one row per meter and 15-minute interval",
    fed_by="stream job `lakehouse` from `dwd_meter_reading`",
    table_type=SERVED_IN_PLACE,
)


def _ads(name: str, description: str, grain: str, fed_by: str, key: tuple[Field, ...],
         fields: tuple[Field, ...]) -> TableContract:
    return TableContract(
        name=name, layer="ads",
        fields=(*key, *fields, UPDATED, DT),
        record_key=tuple(f.name for f in key), ordering_field="updated_ts",
        partition_fields=("dt",), description=description, grain=grain, fed_by=fed_by,
        table_type=SERVED_IN_PLACE,
    )


_ENTITY_DAY = (
    Field("entity_type", S, description="meter, transformer, feeder, substation or region."),
    Field("entity_id", S, description="Id of the entity."),
    Field("day", TS, "ms", "Start of the (UTC) day."),
)

ADS_LOAD_CURVE = _ads(
    "ads_load_curve",
    "The 96-point daily load curve: 15-minute net load per entity.",
    "one row per entity and 15-minute point", "stream job `lakehouse` from `dws_load`",
    (
        Field("entity_type", S, description="meter, transformer, feeder, substation or region."),
        Field("entity_id", S, description="Id of the entity."),
        Field("window_start", TS, "ms", "Start of the 15-minute point (UTC)."),
    ),
    (
        Field("point", INT, "", "Index of the point in its day, 0–95."),
        Field("load_kw", D, "kW", "Net load: (import − export energy) / 0.25 h."),
        Field("energy_import_kwh", D, "kWh", "Import energy of the point."),
        Field("devices", B, "", "Meters contributing to the point."),
    ),
)

ADS_LOAD_DAILY = _ads(
    "ads_load_daily",
    "Daily load indicators: peak, valley, peak-valley difference rate, load factor.",
    "one row per entity and day", "stream job `lakehouse` from `dws_load` (grain 1d)",
    _ENTITY_DAY,
    (
        Field("energy_import_kwh", D, "kWh", "Import energy of the day."),
        Field("energy_export_kwh", D, "kWh", "Export energy of the day."),
        Field("avg_load_kw", D, "kW", "Mean of the day's 15-minute loads."),
        Field("peak_load_kw", D, "kW", "Largest 15-minute load."),
        Field("valley_load_kw", D, "kW", "Smallest 15-minute load."),
        Field("peak_valley_diff_kw", D, "kW", "peak − valley."),
        Field("peak_valley_rate_pct", D, "%", "(peak − valley) / peak × 100; empty when "
              "peak ≤ 0.", required=False),
        Field("load_factor_pct", D, "%", "avg / peak × 100; empty when peak ≤ 0.",
              required=False),
        Field("points", B, "", "15-minute points of the day with data (96 when complete)."),
    ),
)

ADS_FEEDER_DAILY = _ads(
    "ads_feeder_daily",
    "Daily feeder indicators: line-loss rate, power factor, current unbalance.",
    "one row per feeder and day",
    "stream job `lakehouse` from `dws_feeder` and `dws_load` (grain 1d)",
    (Field("feeder_id", S, description="Feeder id."),
     Field("day", TS, "ms", "Start of the (UTC) day.")),
    (
        Field("supply_kwh", D, "kWh", "Energy supplied: feeder import − feeder export + "
              "meters' export."),
        Field("delivered_kwh", D, "kWh", "Energy delivered: meters' import (0 when no meter "
              "data)."),
        Field("loss_kwh", D, "kWh", "supply − delivered."),
        Field("line_loss_rate_pct", D, "%", "loss / supply × 100; empty when supply ≤ 0.",
              required=False),
        Field("power_factor", D, "", "P̄ / √(P̄² + Q̄²) from the day's mean active and reactive "
              "power; empty when both are 0.", required=False),
        Field("unbalance_avg_pct", D, "%", "Mean current unbalance."),
        Field("unbalance_max_pct", D, "%", "Largest current unbalance."),
        Field("readings", B, "", "Usable SCADA readings of the day."),
    ),
)

ADS_VOLTAGE_DAILY = _ads(
    "ads_voltage_daily",
    "Daily voltage qualification rate per meter, transformer, feeder, substation and region.",
    "one row per entity and day", "stream job `lakehouse` from `dws_voltage` (grain 1d)",
    _ENTITY_DAY,
    (
        Field("readings", B, "", "Usable readings."),
        Field("qualified", B, "", "Readings inside 207–246.1 V."),
        Field("qualification_rate_pct", D, "%", "qualified / readings × 100."),
        Field("voltage_min_v", D, "V", "Lowest voltage."),
        Field("voltage_avg_v", D, "V", "Mean voltage."),
        Field("voltage_max_v", D, "V", "Highest voltage."),
    ),
)

ADS_TRANSFORMER_DAILY = _ads(
    "ads_transformer_daily",
    "Daily transformer loading rate, overload flag and hot-spot ageing (IEEE C57.91).",
    "one row per transformer and day",
    "stream job `lakehouse` from `dws_transformer` (grain 1d)",
    (Field("transformer_id", S, description="Distribution transformer id."),
     Field("day", TS, "ms", "Start of the (UTC) day.")),
    (
        Field("loading_rate_pct", D, "%", "Largest load in % of rated kVA."),
        Field("avg_loading_pct", D, "%", "Mean load in % of rated kVA."),
        Field("overload_minutes", D, "min", "Minutes above 100 % of rated kVA."),
        Field("overloaded", BOOL, "", "Whether any minute of the day was above 100 %."),
        Field("hot_spot_max_c", D, "°C", "Highest winding hot-spot temperature."),
        Field("top_oil_max_c", D, "°C", "Highest top-oil temperature."),
        Field("aging_hours", D, "h", "Equivalent aging hours of the day (Σ F_AA × Δt)."),
        Field("loss_of_life_pct", D, "%", "aging_hours / 180 000 h normal insulation life "
              "× 100."),
        Field("readings", B, "", "Usable readings of the day."),
    ),
)

ADS_ESS_DAILY = _ads(
    "ads_ess_daily",
    "Daily battery bank statistics: SOC, cell temperature, cell voltage gap, throughput.",
    "one row per ESS bank and day", "stream job `lakehouse` from `dws_ess` (grain 1d)",
    (Field("ess_id", S, description="Battery bank id."),
     Field("day", TS, "ms", "Start of the (UTC) day.")),
    (
        Field("soc_min_pct", D, "%", "Lowest SOC."),
        Field("soc_avg_pct", D, "%", "Mean SOC."),
        Field("soc_max_pct", D, "%", "Highest SOC."),
        Field("cell_temp_max_c", D, "°C", "Highest cell temperature."),
        Field("cell_gap_avg_mv", D, "mV", "Mean cell voltage gap."),
        Field("cell_gap_max_mv", D, "mV", "Largest cell voltage gap."),
        Field("charge_kwh", D, "kWh", "Energy charged."),
        Field("discharge_kwh", D, "kWh", "Energy discharged."),
        Field("readings", B, "", "Usable readings of the day."),
    ),
)

ADS_QUALITY_SCORECARD = _ads(
    "ads_quality_scorecard",
    "Daily data-quality scorecard per region: counts per rule and a score.",
    "one row per region and day", "stream job `lakehouse` from `dwd_quality_daily`",
    (Field("region_id", S, description=f"Region (`{UNKNOWN_REGION}`: not attributable)."),
     Field("day", TS, "ms", "Start of the (UTC) day.")),
    (
        Field("received", B, "", "Valid messages received (duplicates included)."),
        Field("records", B, "", "Distinct readings."),
        Field("clean", B, "", "Readings with no flag."),
        *(Field(r.name, B, "", f"Readings flagged `{r.name}`.") for r in RULES),
        Field("quarantined", B, "", "Rejected messages."),
        Field("score_pct", D, "%", "clean / (received + quarantined) × 100."),
    ),
)

# Equipment anomaly detection (issue 7): written by the batch scoring job `gridlake ml score`
# with Spark, never by the streaming job (it is not among jobs.transforms.pipeline.outputs).
_ML_FED_BY = ("batch job `gridlake ml score` (AnomalyBERT) from the DWD table of the model's "
              "message kind (`dwd_ess_bms`, `dwd_transformer_telemetry`, ...)")
_ML_SCORED = (
    Field("device_id", S, description="Scored device (DWD `device_id`)."),
    Field("source", S, description="Message kind (contract name) the channels come from, "
          "e.g. ess_bms."),
)
_ML_MODEL = (
    Field("model_id", S, description="Registry id of the model that scored (docs/ml.md)."),
    Field("threshold", D, "", "Decision threshold on the score used by that run."),
)

ADS_EQUIPMENT_ANOMALY_SCORE = _ads(
    "ads_equipment_anomaly_score",
    "AnomalyBERT anomaly score of every scored time step of a device's series.",
    "one row per device, message kind and scored time step", _ML_FED_BY,
    (*_ML_SCORED, Field("event_ts", TS, "ms", "Time step (on the model's regular grid).")),
    (
        *_ML_MODEL,
        Field("score", D, "", "Anomaly probability of the step: mean over the windows "
              "covering it."),
        Field("anomalous", BOOL, "", "score ≥ threshold."),
        Field("imputed", BOOL, "", "A reading of the step was missing or unusable and was "
              "interpolated (gaps of at most `max_gap` steps, docs/ml.md)."),
    ),
)

ADS_EQUIPMENT_ANOMALY = _ads(
    "ads_equipment_anomaly",
    "Anomalous intervals (alarms) per device: runs of consecutive steps scoring at or above "
    "the threshold.",
    "one row per device, message kind and anomalous interval", _ML_FED_BY,
    (*_ML_SCORED, Field("start_ts", TS, "ms", "First anomalous step of the interval.")),
    (
        Field("end_ts", TS, "ms", "End of the interval (exclusive): last anomalous step + "
              "one grid step."),
        Field("steps", B, "", "Anomalous steps in the interval."),
        Field("peak_score", D, "", "Highest score in the interval."),
        Field("mean_score", D, "", "Mean score of the interval's anomalous steps."),
        *_ML_MODEL,
        Field("ongoing", BOOL, "", "The interval reaches the last scored step of the run: "
              "it may continue."),
        Field("region_id", S, description="Region of the device (DWD, last reading of the "
              "scored range).", required=False),
        Field("substation_id", S, description="Substation of the device (DWD, last reading "
              "of the scored range).", required=False),
    ),
)

ML_TABLES: tuple[TableContract, ...] = (ADS_EQUIPMENT_ANOMALY_SCORE, ADS_EQUIPMENT_ANOMALY)
"""ADS tables of the anomaly scoring job (Spark); not written by the streaming job."""

ML_SERVING_SCORE: dict[str, str] = {ADS_EQUIPMENT_ANOMALY.name: "start_ts"}
"""ML tables copied to the serving store (the alarms), with the time column scoring their
index. Kept apart from :data:`SERVING_SCORE`, which lists the streaming job's copies."""

# Asset health (issue 22): written by the batch job `gridlake health run` with Spark
# (jobs/health/job.py, rules in docs/health.md), never by the streaming job.
ADS_ASSET_HEALTH = _ads(
    "ads_asset_health",
    "Daily health index per distribution transformer and battery bank: score, category, "
    "recommended action and the contributing factors with their values and reasons "
    "(docs/health.md).",
    "one row per asset and day",
    "batch job `gridlake health run` from `dws_transformer`, `dwd_transformer_dga`, "
    "`ads_ess_daily`, `ads_equipment_anomaly(_score)` and `dim_device`",
    (
        Field("asset_type", S, description="transformer or ess."),
        Field("asset_id", S, description="Asset id (transformer_id / ess_id)."),
        Field("day", TS, "ms", "Start of the (UTC) day judged."),
    ),
    (
        Field("region_id", S, description="Region of the asset (dim_device, current "
              "version).", required=False),
        Field("substation_id", S, description="Substation of the asset (dim_device).",
              required=False),
        Field("score", D, "", "Health index 0–100 (100: no finding); empty when no factor "
              "had evidence.", required=False),
        Field("category", S, "", "good, fair, poor, critical, or unknown (no evidence)."),
        Field("previous_category", S, "", "Category of the previous day's row; empty when "
              "there is none.", required=False),
        Field("worsened", BOOL, "", "The category is worse than the previous day's, or a "
              "first poor/critical verdict after none (no row or unknown): raises a feed "
              "alarm."),
        Field("worst_factor", S, "", "Factor that took most points; empty when none did.",
              required=False),
        Field("evidence_pct", D, "%", "Share of the asset type's factor weight with "
              "evidence."),
        Field("factors", S, "", "The factors as a JSON array: name, status, severity, value, "
              "unit, reason, detail."),
        Field("action", S, "", "Recommended action for the category."),
        Field("scoring_version", S, "", "Version of the scoring rules, e.g. health-v1."),
    ),
)

HEALTH_TABLES: tuple[TableContract, ...] = (ADS_ASSET_HEALTH,)
"""ADS tables of the health job (Spark); not written by the streaming job."""

HEALTH_SERVING_SCORE: dict[str, str] = {ADS_ASSET_HEALTH.name: "day"}
"""Health tables copied to the serving store, with the time column scoring their index."""

# Equipment images (issue 21): imported in batches by `gridlake images import` (files on
# HDFS under settings.images, one index row per distinct file), scored by
# `gridlake ml images score`. Neither is written by the streaming job.
_DESC = {f.name: f for f in DESCRIPTION_FIELDS}

ODS_EQUIPMENT_IMAGE = TableContract(
    name="ods_equipment_image",
    layer="ods",
    fields=(
        Field("image_id", S, description="SHA-256 of the file's bytes (hex): the same photo "
              "imported twice is one row."),
        Field("path", S, description="Where the file is on HDFS (content-addressed)."),
        Field("bytes", B, "B", "File size."),
        Field("format", S, description="Image format, e.g. PNG or JPEG."),
        Field("width", INT, "px", "Width."),
        Field("height", INT, "px", "Height."),
        Field("asset_id", S, description=_DESC["asset_id"].description),
        Field("asset_type", S, description="Device type of the asset (device registry)."),
        Field("region_id", S, description="Region of the asset (device registry)."),
        Field("substation_id", S, description="Substation of the asset.", required=False),
        Field("captured_ts", TS, "ms", _DESC["captured_ts"].description),
        Field("camera", S, description=_DESC["camera"].description),
        Field("inspector", S, description=_DESC["inspector"].description, required=False),
        Field("component", S, description=_DESC["component"].description, required=False),
        Field("label", S, description=_DESC["label"].description, required=False),
        Field("source_file", S, description="The file's path in the imported folder or "
              "archive."),
        Field("import_batch", S, description="Id of the import run that first stored it."),
        Field("imported_ts", TS, "ms", "When that import stored it."),
        Field("dt", S, description="Partition: capture date (UTC) yyyy-MM-dd."),
    ),
    record_key=("image_id",),
    ordering_field="imported_ts",
    partition_fields=("dt",),
    description="Index of the equipment images stored on HDFS: one row per distinct file, "
                "with its description.",
    grain="one row per distinct image file",
    fed_by="batch job `gridlake images import` from image folders or archives and their "
           "description file",
    retention_days=3650,
)

ADS_IMAGE_ANOMALY = _ads(
    "ads_image_anomaly",
    "Image anomaly model results: one score per image and model, with the defect flag.",
    "one row per image and model",
    "batch job `gridlake ml images score` from `ods_equipment_image`",
    (
        Field("image_id", S, description="Image (ods_equipment_image.image_id)."),
        Field("model_id", S, description="Registry id of the image model that scored."),
    ),
    (
        Field("asset_id", S, description="Device id of the equipment shown."),
        Field("asset_type", S, description="Device type of the asset."),
        Field("region_id", S, description="Region of the asset."),
        Field("substation_id", S, description="Substation of the asset.", required=False),
        Field("captured_ts", TS, "ms", "When the photo was taken."),
        Field("camera", S, description="visible or infrared."),
        Field("model_kind", S, description="image_classifier (supervised ResNet-18) or "
              "image_autoencoder (unsupervised, normal images only)."),
        Field("score", D, "", "Anomaly score: the defect probability (classifier) or the "
              "normalised reconstruction error (autoencoder)."),
        Field("threshold", D, "", "Decision threshold of the model (chosen on validation)."),
        Field("defect", BOOL, "", "score ≥ threshold."),
    ),
)

IMAGE_TABLES: tuple[TableContract, ...] = (ODS_EQUIPMENT_IMAGE, ADS_IMAGE_ANOMALY)
"""Tables of the image import and scoring jobs (Spark); not written by the streaming job."""

DWD_DERIVED: tuple[TableContract, ...] = (DWD_QUALITY_DAILY,)
DWS_TABLES: tuple[TableContract, ...] = (DWS_LOAD, DWS_VOLTAGE, DWS_TRANSFORMER, DWS_ESS,
                                         DWS_FEEDER)
ADS_TABLES: tuple[TableContract, ...] = (
    ADS_METER_ENERGY_15MIN, ADS_LOAD_CURVE, ADS_LOAD_DAILY, ADS_FEEDER_DAILY,
    ADS_VOLTAGE_DAILY, ADS_TRANSFORMER_DAILY, ADS_ESS_DAILY, ADS_QUALITY_SCORECARD,
)

SERVING_SCORE: dict[str, str] = {
    ADS_METER_ENERGY_15MIN.name: "window_start",
    ADS_LOAD_CURVE.name: "window_start",
    ADS_LOAD_DAILY.name: "day",
    ADS_FEEDER_DAILY.name: "day",
    ADS_VOLTAGE_DAILY.name: "day",
    ADS_TRANSFORMER_DAILY.name: "day",
    ADS_ESS_DAILY.name: "day",
    ADS_QUALITY_SCORECARD.name: "day",
}
"""ADS tables copied to the serving store, with the time column scoring their index."""

TABLES: tuple[TableContract, ...] = (
    *ODS_TABLES.values(), QUARANTINE, DIM_DEVICE, *DWD_TABLES.values(), *DWD_DERIVED,
    *DWS_TABLES, *ADS_TABLES, *ML_TABLES, *HEALTH_TABLES, *IMAGE_TABLES,
)
