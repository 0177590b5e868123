"""The lake's tables against their contracts: ``gridlake tables check`` and ``create``.

``check`` reads each table's ``.hoodie/hoodie.properties`` over WebHDFS and compares
record key, ordering field, partition fields and table type (and the record merge mode,
which the Flink connector also insists on) with the :class:`TableContract`.

``create`` creates every missing table as an empty Hudi table (table version 9) by
writing an empty DataFrame of the contract's schema with the Hudi Spark bundle and the
options every GridLake writer uses (docs/connectors.md): key generator, ordering field,
``EVENT_TIME_ORDERING``, no metadata table, ``SIMPLE`` index, non-hive-style partitions,
schema reconciliation. The write initialises ``.hoodie`` and completes one empty commit,
so the table is readable at once; the Flink connector accepts it as its own (same key,
ordering, partition, type, merge mode and key generator type). Existing tables are never
touched, so both commands are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.lake import HudiTableConfig, WebHdfs, hudi_table_path, lake_path, read_table_config
from infra.settings import GridLakeSettings
from infra.spark import MERGE_MODE, spark_schema, spark_scope, spark_write_options
from lakehouse.contracts import TableContract
from lakehouse.contracts.tables import TABLES

log = logging.getLogger(__name__)

OK, MISSING, MISMATCH = "ok", "missing", "mismatch"


@dataclass(frozen=True)
class TableCheck:
    """How one lake table compares with its contract.

    Attributes:
        table: Table name.
        layer: Its layer.
        path: HDFS path of the table.
        state: ``ok``, ``missing`` (no ``.hoodie/hoodie.properties``) or ``mismatch``.
        problems: What differs, one entry per property (empty unless ``mismatch``).

    """

    table: str
    layer: str
    path: str
    state: str
    problems: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for the terminal: state, layer, table and what differs."""
        detail = f": {'; '.join(self.problems)}" if self.problems else ""
        return f"{self.state:8} {self.layer:4} {self.table}{detail}"


@dataclass(frozen=True)
class TableCreate:
    """What ``create`` did with one table: ``created`` or ``exists`` (left untouched)."""

    table: str
    layer: str
    path: str
    action: str




def compare(table: TableContract, config: HudiTableConfig) -> list[str]:
    """Differences between a table's ``hoodie.properties`` and its contract.

    Returns:
        One message per differing property (empty when the table matches).

    """

    def show(values: Iterable[str]) -> str:
        return ",".join(values) or "(none)"

    problems = []
    if config.record_key != table.record_key:
        problems.append(
            f"record key {show(config.record_key)} (contract: {show(table.record_key)})"
        )
    if config.ordering_fields != (table.ordering_field,):
        problems.append(
            f"ordering field {show(config.ordering_fields)} "
            f"(contract: {table.ordering_field})"
        )
    if config.partition_fields != table.partition_fields:
        problems.append(
            f"partition fields {show(config.partition_fields)} "
            f"(contract: {show(table.partition_fields)})"
        )
    if config.table_type != table.table_type:
        problems.append(f"table type {config.table_type} (contract: {table.table_type})")
    if config.merge_mode is not None and config.merge_mode != MERGE_MODE:
        problems.append(f"record merge mode {config.merge_mode} (GridLake: {MERGE_MODE})")
    return problems


def check_tables(
    settings: GridLakeSettings,
    tables: Iterable[TableContract] = TABLES,
    timeout_s: float = 10.0,
) -> list[TableCheck]:
    """Compare every table in the lake with its contract.

    Raises:
        infra.lake.LakeError: WebHDFS cannot be reached or answers with an error.

    """
    out = []
    with WebHdfs.from_settings(settings, timeout_s) as fs:
        for t in tables:
            path = lake_path(settings, t.layer, t.name)
            config = read_table_config(fs, path)
            if config is None:
                out.append(TableCheck(t.name, t.layer, path, MISSING))
                continue
            problems = compare(t, config)
            state = MISMATCH if problems else OK
            out.append(TableCheck(t.name, t.layer, path, state, tuple(problems)))
    return out




def create_table(spark: Any, settings: GridLakeSettings, table: TableContract) -> None:
    """Initialise ``table`` as an empty Hudi table (an empty DataFrame, one empty commit)."""
    uri = hudi_table_path(settings, table)
    options = {
        **spark_write_options(table),
        # nothing to clean or archive in a new table; no timeline server for one commit
        "hoodie.clean.automatic": "false",
        "hoodie.archive.automatic": "false",
        "hoodie.embed.timeline.server": "false",
    }
    empty = spark.createDataFrame([], spark_schema(table))
    empty.write.format("hudi").options(**options).mode("append").save(uri)
    log.info("created Hudi table %s at %s", table.name, uri)


def create_tables(
    settings: GridLakeSettings,
    tables: Sequence[TableContract] = TABLES,
    spark: Any = None,
) -> list[TableCreate]:
    """Create every table of ``tables`` that is missing from the lake.

    A table counts as existing when it has ``.hoodie/hoodie.properties``; existing tables
    are left untouched (mismatches are for :func:`check_tables` to report). A Spark
    session is started only when something is missing (and stopped afterwards unless
    it was passed in).

    Raises:
        infra.lake.LakeError: WebHDFS cannot be reached.
        FileNotFoundError: The Spark jars were not resolved (``gridlake setup``).

    """
    with WebHdfs.from_settings(settings) as fs:
        present = {
            t.name
            for t in tables
            if read_table_config(fs, lake_path(settings, t.layer, t.name)) is not None
        }
    missing = [t for t in tables if t.name not in present]
    out = [
        TableCreate(t.name, t.layer, lake_path(settings, t.layer, t.name), "exists")
        for t in tables if t.name in present
    ]
    if not missing:
        return out
    with spark_scope(settings, "gridlake-tables-create", spark) as session:
        for t in missing:
            create_table(session, settings, t)
            out.append(
                TableCreate(t.name, t.layer, lake_path(settings, t.layer, t.name), "created")
            )
    order = {t.name: i for i, t in enumerate(tables)}
    return sorted(out, key=lambda c: order[c.table])
