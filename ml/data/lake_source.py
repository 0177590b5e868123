"""Series from the lake: the DWD tables (Hudi on HDFS) read with Spark.

:class:`LakeSource` implements :class:`ml.data.sources.SeriesSource` over the detail layer:
one DWD table per message kind (``dwd_ess_bms``, ``dwd_transformer_telemetry``, ...,
declared in :mod:`lakehouse.contracts.tables`) holds one validated, de-duplicated row per
device and event time. A dataset is chosen by message kind, time range, devices and site
(substation); channels are the contract's numeric fields, as for every other source.

Gaps are explicit, exactly as in the other sources: readings are placed on a regular grid
(:func:`ml.data.sources.series_from_rows`) and every instant without a row becomes a NaN
row, which :mod:`ml.data.scaling` interpolates (short gaps) or splits at (long gaps).
Rows the quality rules exclude from the summaries (``usable = false``: out of range,
spike, too late) are left out by default, so they become gaps too. Labels, when asked
for, come from the simulator's ground truth in ``ods_sim_label`` (faults only).

Reads prune by ``dt`` partition and push the time, device and site filters down to Spark;
only the selected columns travel to the driver (as Arrow batches).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import frame_to_spark, spark_scope, write_options
from jobs.common.ddl import quote, sql_string
from lakehouse.contracts.messages import ESS_BMS, SIM_LABEL
from lakehouse.contracts.quality import DwdSpec, Measure, dwd_spec
from lakehouse.contracts.schema import MessageContract, TableContract
from lakehouse.contracts.tables import DWD_TABLES, ODS_TABLES
from lakehouse.time import dt_of, format_time_ms
from ml.data.sources import (
    DataDescription,
    Series,
    SourceError,
    infer_step_ms,
    resolve_channels,
    series_from_rows,
)

logger = logging.getLogger(__name__)

SITE_COLUMN = "substation_id"
"""DWD column a site filter matches: ESS banks, PV plants and feeders hang off a
substation, transformers too (through their feeder)."""


class NoDataError(SourceError):
    """The lake holds no readings for the requested devices and range."""


class LakeReadError(SourceError):
    """The lake could not be read (table missing, HDFS or Spark failure)."""


def enable_arrow(spark: Any) -> None:
    """Move DataFrames between Spark and pandas as Arrow batches (much faster than rows)."""
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")


def dwd_table(contract: MessageContract) -> tuple[DwdSpec, TableContract]:
    """The DWD spec and table of a message kind.

    Raises:
        SourceError: The message kind has no DWD table (e.g. the device registry).

    """
    try:
        return dwd_spec(contract.name), DWD_TABLES[contract.name]
    except KeyError:
        raise SourceError(
            f"{contract.name} has no DWD table; choose one of {', '.join(DWD_TABLES)}"
        ) from None


def _measure(spec: DwdSpec, channel: str) -> Measure:
    for m in spec.measures:
        if m.source.name == channel:
            return m
    raise SourceError(f"{spec.name}: channel {channel!r} is not carried into DWD")


def load_table(spark: Any, settings: GridLakeSettings, table: TableContract) -> Any:
    """A Hudi table as a DataFrame (snapshot read, as the backfill reads it).

    Raises:
        LakeReadError: The table does not exist or cannot be read.

    """
    path = hudi_table_path(settings, table)
    try:
        return spark.read.format("hudi").load(path)
    except Exception as err:  # py4j wraps the JVM's exception (AnalysisException, IO)
        raise LakeReadError(f"cannot read {table.name} at {path}: {_first_line(err)}") from err


def _first_line(err: Exception) -> str:
    """The useful line of an exception (py4j errors carry a whole JVM stack trace)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _collect(df: Any, what: str) -> pd.DataFrame:
    try:
        return df.toPandas()
    except Exception as err:  # py4j wraps the JVM's exception
        raise LakeReadError(f"cannot read {what}: {_first_line(err)}") from err


def upsert_rows(spark: Any, settings: GridLakeSettings, table: TableContract,
                frame: pd.DataFrame) -> Any:
    """Upsert ``frame`` (timestamps as epoch ms) into ``table``; returns the typed DataFrame.

    Hudi through Spark with the options every Spark writer of the lake uses (the backfill's
    :func:`infra.spark.write_options`: the catalog's key, ordering and partition
    settings plus ``settings.lake`` table services).
    """
    enable_arrow(spark)
    typed = frame_to_spark(spark, table, frame)
    if len(frame):
        typed.write.format("hudi").options(**write_options(settings, table)) \
            .mode("append").save(hudi_table_path(settings, table))
    return typed


@dataclass(frozen=True)
class LakeSource:
    """Series of one message kind from its DWD table in the lake.

    Attributes:
        settings: Where the lake is (``hdfs``) and how Spark runs (``spark``).
        start_ms: First event time (inclusive), epoch milliseconds UTC.
        end_ms: End of the range (exclusive).
        contract: Message kind; its DWD table is read and its numeric fields are the
            channels.
        devices: Only these devices (empty: every device with readings in the range).
        site: Only devices of this substation (DWD ``substation_id`` at some reading in
            the range; all their readings are kept).
        channels: Channel subset; ``None`` means every numeric field.
        step_ms: Grid spacing; ``None`` infers it (median spacing of the readings).
        usable_only: Leave out rows the quality rules exclude from summaries (they become
            gaps).
        labels: Take fault labels from ``ods_sim_label`` (simulator ground truth).
        spark: A Spark session to use (default: :func:`infra.spark.spark_scope`).

    """

    settings: GridLakeSettings
    start_ms: int
    end_ms: int
    contract: MessageContract = ESS_BMS
    devices: tuple[str, ...] = ()
    site: str | None = None
    channels: tuple[str, ...] | None = None
    step_ms: int | None = None
    usable_only: bool = True
    labels: bool = False
    spark: Any = field(default=None, compare=False, repr=False)

    def _check(self) -> tuple[DwdSpec, TableContract, list[Measure]]:
        if self.end_ms <= self.start_ms:
            raise SourceError(
                f"empty range: end {format_time_ms(self.end_ms)} is not after start "
                f"{format_time_ms(self.start_ms)}"
            )
        if self.step_ms is not None and self.step_ms <= 0:
            raise SourceError(f"step_ms must be positive, got {self.step_ms}")
        spec, table = dwd_table(self.contract)
        fields = resolve_channels(self.contract, self.channels)
        return spec, table, [_measure(spec, f.name) for f in fields]

    def _range(self) -> str:
        return f"{format_time_ms(self.start_ms)} .. {format_time_ms(self.end_ms)}"

    def _filtered(self, spark: Any, table: TableContract) -> Any:
        """The table's rows in range, devices and site (filters pushed down to Spark)."""
        last_day = dt_of(self.end_ms - 1)
        df = load_table(spark, self.settings, table).where(
            f"`dt` >= {sql_string(dt_of(self.start_ms))} "
            f"AND `dt` <= {sql_string(last_day)} "
            f"AND `event_ts` >= timestamp_millis(CAST({self.start_ms} AS BIGINT)) "
            f"AND `event_ts` < timestamp_millis(CAST({self.end_ms} AS BIGINT))"
        )
        if self.devices:
            df = df.where(f"`device_id` IN ({', '.join(sql_string(d) for d in self.devices)})")
        if self.site is not None:
            at_site = df.where(f"{quote(SITE_COLUMN)} = {sql_string(self.site)}") \
                .select("device_id").distinct()
            df = df.join(at_site, "device_id", "left_semi")
        return df

    def _read(self, spark: Any) -> tuple[pd.DataFrame, list[Measure]]:
        spec, table, measures = self._check()
        enable_arrow(spark)
        df = self._filtered(spark, table)
        if self.usable_only:
            df = df.where("`usable`")
        # the DWD column in the contract's unit (DWD may normalise units, e.g. kV → V)
        cols = [f"CAST({quote(m.name)} AS DOUBLE) / {m.scale!r} AS {quote(m.source.name)}"
                for m in measures]
        frame = _collect(
            df.selectExpr("`device_id`", "unix_millis(`event_ts`) AS `ts_ms`", *cols,
                          "`region_id`", "`substation_id`"),
            f"{table.name} {self._range()}",
        )
        if frame.empty:
            raise NoDataError(self._no_data(table.name, set()))
        missing = set(self.devices) - set(frame["device_id"])
        if missing:
            raise NoDataError(self._no_data(table.name, missing))
        return frame, measures

    def _no_data(self, table: str, missing: set[str]) -> str:
        asked = sorted(missing) or list(self.devices)
        who = f"device(s) {', '.join(asked)}" if asked else "any device"
        where = f" at site {self.site}" if self.site is not None else ""
        usable = " (usable rows only)" if self.usable_only else ""
        return f"no {table} readings of {who}{where} in {self._range()}{usable}"

    def _labels(self, spark: Any, frame: pd.DataFrame) -> np.ndarray:
        """Fault type per row from ``ods_sim_label`` ("" outside every fault)."""
        ods = ODS_TABLES[SIM_LABEL.name]
        devices = sorted(set(frame["device_id"]))
        faults = _collect(
            load_table(spark, self.settings, ods).where(
                f"`kind` = 'fault' AND `topic` = {sql_string(self.contract.topic)} "
                f"AND `device_id` IN ({', '.join(sql_string(d) for d in devices)}) "
                f"AND `start_ts` < timestamp_millis(CAST({self.end_ms} AS BIGINT)) "
                f"AND `end_ts` > timestamp_millis(CAST({self.start_ms} AS BIGINT))"
            ).selectExpr("`device_id`", "`type`", "unix_millis(`start_ts`) AS `start_ms`",
                         "unix_millis(`end_ts`) AS `end_ms`").dropDuplicates(),
            ods.name,
        )
        out = np.full(len(frame), "", dtype=object)
        dev = frame["device_id"].to_numpy()
        ts = frame["ts_ms"].to_numpy()
        for f in faults.itertuples():
            out[(dev == f.device_id) & (ts >= f.start_ms) & (ts < f.end_ms)] = f.type
        if not len(faults):
            logger.warning("%s holds no %s fault for these devices in %s: every step is "
                           "labelled normal", ods.name, self.contract.topic, self._range())
        return out.astype(str)

    def _step(self, devices: np.ndarray, ts: np.ndarray) -> int:
        """The grid spacing: ``step_ms``, else the readings' median spacing."""
        what = f"{self.contract.name} in the lake"
        if self.step_ms is None:
            return infer_step_ms(devices, ts, what)
        try:
            seen = infer_step_ms(devices, ts, what)
        except SourceError:  # single readings: nothing to compare
            return self.step_ms
        if seen != self.step_ms:
            # closer readings collapse onto the grid (the last wins), sparser ones leave NaN
            # rows between them: either way the model sees another cadence than it learnt
            logger.warning("%s readings are %d ms apart, the grid is %d ms", self.contract.name,
                           seen, self.step_ms)
        return self.step_ms

    @cached_property
    def _loaded(self) -> tuple[DataDescription, list[Series], dict[str, dict[str, str]]]:
        self._check()  # bad parameters fail before any JVM starts
        t0 = time.perf_counter()
        with spark_scope(self.settings, "gridlake-ml-lake", self.spark) as spark:
            frame, measures = self._read(spark)
            labels = self._labels(spark, frame) if self.labels else None
        devices = frame["device_id"].astype(str).to_numpy()
        ts = frame["ts_ms"].to_numpy(dtype=np.int64)
        names = [m.source.name for m in measures]
        # nulls (a measure the device did not send) arrive as None/NaN: missing readings
        values = frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
        step = self._step(devices, ts)
        series = series_from_rows(devices, ts, values, step, labels)
        topology = {
            str(dev): {k: str(part[k].iloc[-1]) for k in ("region_id", SITE_COLUMN)
                       if pd.notna(part[k].iloc[-1])}
            for dev, part in frame.sort_values("ts_ms").groupby("device_id")
        }
        desc = DataDescription(
            source="lake", contract=self.contract.name, channels=tuple(names),
            units=tuple(m.source.unit for m in measures), step_ms=step,
            site=self.site or "lake",
            details={"table": DWD_TABLES[self.contract.name].name,
                     "start": format_time_ms(self.start_ms), "end": format_time_ms(self.end_ms),
                     "devices": ",".join(s.device_id for s in series),
                     "usable_only": str(self.usable_only).lower()},
        )
        logger.info("read %d %s rows of %d device(s) from the lake in %.1f s", len(frame),
                    self.contract.name, len(series), time.perf_counter() - t0)
        return desc, series, topology

    def description(self) -> DataDescription:
        """Contract, channels, grid and range of the lake series (reads the lake once)."""
        return self._loaded[0]

    def load(self) -> list[Series]:
        """Every selected device's series (reads the lake once).

        Raises:
            SourceError: Bad parameters (empty range, unknown channel, no DWD table).
            NoDataError: No readings of a requested device (or of any) in the range.
            LakeReadError: The table cannot be read.

        """
        return self._loaded[1]

    def topology(self) -> dict[str, dict[str, str]]:
        """Device → ``region_id`` / ``substation_id`` of its last reading in the range."""
        return self._loaded[2]


def parse_devices(text: str | None) -> tuple[str, ...]:
    """A comma-separated device list (``None`` or blank: all devices)."""
    return tuple(d.strip() for d in (text or "").split(",") if d.strip())


def check_disjoint(train: tuple[int, int], test: tuple[int, int]) -> None:
    """Refuse a test range that overlaps the training range (it would leak).

    Raises:
        SourceError: The ranges overlap.

    """
    if train[0] < test[1] and test[0] < train[1]:
        raise SourceError(
            f"the test range {format_time_ms(test[0])} .. {format_time_ms(test[1])} overlaps "
            f"the training range {format_time_ms(train[0])} .. {format_time_ms(train[1])}"
        )

