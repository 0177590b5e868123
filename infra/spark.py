"""Spark sessions that read and write GridLake's Hudi tables, and the options they write with.

Every Spark writer of the lake (backfills, history imports, ML scoring, table creation)
writes with :func:`write_options` through :func:`with_retries`, so the tables' keys,
ordering, partitioning and table services are the same whichever job wrote a row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from lakehouse.contracts import FieldType, TableContract

if TYPE_CHECKING:  # pandas is loaded by the callers that hand frames over
    import pandas as pd

log = logging.getLogger(__name__)

#: Merge mode of every GridLake table (the Flink connector refuses any other).
MERGE_MODE = "EVENT_TIME_ORDERING"
#: Hudi table version GridLake writes (Hudi 1.x).
TABLE_VERSION = "9"
#: Attempts of one table write that lost an optimistic-concurrency conflict.
WRITE_ATTEMPTS = 4



def spark_session(settings: GridLakeSettings, app_name: str = "gridlake") -> Any:
    """A SparkSession with the Hudi bundle, against ``settings.spark.master``.

    Raises:
        FileNotFoundError: The Spark jars were not resolved (run ``gridlake setup``).

    """
    from pyspark.sql import SparkSession

    jars = sorted((settings.jars / "spark").glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"no Spark jars in {settings.jars / 'spark'}: run `gridlake setup` first"
        )
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark.master)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.sql.extensions", "org.apache.spark.sql.hudi.HoodieSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.hudi.catalog.HoodieCatalog"
        )
        .config("spark.kryo.registrator", "org.apache.spark.HoodieSparkKryoRegistrar")
        .config("spark.sql.session.timeZone", "UTC")
        # Hudi renders TIMESTAMP record keys in the JVM's default zone: UTC everywhere
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        # the lakehouse plans nest dozens of views: their full text for the SQL UI/listener
        # alone can exhaust the driver heap
        .config("spark.sql.maxPlanStringLength", "65536")
        .config("spark.hadoop.fs.defaultFS", settings.hdfs.uri)
        # the Hadoop client's own default is 3: on the stack's DataNodes every block
        # would stay under-replicated
        .config("spark.hadoop.dfs.replication", str(settings.hdfs.replication))
    )
    log.info("starting Spark session %s on %s", app_name, settings.spark.master)
    return builder.getOrCreate()


@contextmanager
def spark_scope(settings: GridLakeSettings, app_name: str = "gridlake",
                spark: Any = None) -> Iterator[Any]:
    """A Spark session for one piece of work, stopped afterwards only if this scope started it.

    ``SparkSession.builder.getOrCreate`` hands back the process's running session, so a job
    that "started" a session and stopped it at the end would stop a session its caller still
    uses (an API process, an ML service, a test fixture holding a lake slice). This scope
    yields ``spark`` when given, else the running session, else a new one (logging errors
    only) that it stops on exit.
    """
    if spark is not None:
        yield spark
        return
    from pyspark import SparkContext

    # no public API tells whether a context is running in this process
    running = SparkContext._active_spark_context is not None
    session = spark_session(settings, app_name)
    if not running:
        session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        if not running:
            session.stop()


def read_table(spark: Any, settings: GridLakeSettings, table: TableContract) -> Any:
    """The latest snapshot of a Hudi table as a DataFrame of its contract's columns."""
    df = spark.read.format("hudi").load(hudi_table_path(settings, table))
    return df.select(*table.field_names)


def spark_type(t: FieldType) -> Any:
    """The Spark SQL data type of a contract field type (``.simpleString()`` for DDL/CAST)."""
    from pyspark.sql import types as T

    return {
        FieldType.STRING: T.StringType(),
        FieldType.INT: T.IntegerType(),
        FieldType.BIGINT: T.LongType(),
        FieldType.DOUBLE: T.DoubleType(),
        FieldType.BOOLEAN: T.BooleanType(),
        FieldType.TIMESTAMP: T.TimestampType(),
    }[t]


def spark_schema(table: TableContract) -> Any:
    """The Spark ``StructType`` of a table's contract; record key columns are not nullable.

    Timestamps are ``TimestampType`` (microseconds in Spark; Hudi writes from Spark need
    ``hoodie.datasource.write.reconcile.schema=true`` against the connector's millisecond
    columns, see docs/connectors.md).
    """
    from pyspark.sql import types as T

    keys = set(table.record_key)
    return T.StructType(
        [T.StructField(f.name, spark_type(f.type), f.name not in keys) for f in table.fields]
    )


def frame_to_spark(spark: Any, table: TableContract, frame: pd.DataFrame) -> Any:
    """A pandas frame of ``table``'s columns as a Spark DataFrame of the contract's types.

    TIMESTAMP columns are given as epoch milliseconds (no time zone can creep in). Missing
    values (None, NaN) become nulls in every column: never a NaN double, never a cast
    error in an integer column, never a float where Arrow expects a string.
    """
    import pandas as pd  # noqa: F811 - the runtime import of the TYPE_CHECKING name
    from pyspark.sql import types as T  # noqa: N812

    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    cast: dict[FieldType, Any] = {FieldType.STRING: str, FieldType.DOUBLE: float,
                                  FieldType.BOOLEAN: bool, FieldType.INT: int,
                                  FieldType.BIGINT: int, FieldType.TIMESTAMP: int}
    clean = frame.copy()
    for f in table.fields:
        conv = cast[f.type]
        clean[f.name] = pd.Series([None if v is None or (not isinstance(v, str) and pd.isna(v))
                                   else conv(v) for v in clean[f.name]],
                                  index=clean.index, dtype=object)
    schema = T.StructType([
        T.StructField(f.name, T.LongType() if f.type is FieldType.TIMESTAMP
                      else spark_type(f.type), True) for f in table.fields])
    raw = spark.createDataFrame(clean, schema=schema)
    return raw.selectExpr(*[
        f"timestamp_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
        else f"CAST(`{f.name}` AS {spark_type(f.type).simpleString()}) AS `{f.name}`"
        for f in table.fields])


def key_generator_class(table: TableContract) -> str:
    """Key generator of a table, as the Flink connector chooses it.

    NON_PARTITION for an unpartitioned table, SIMPLE for one key column, COMPLEX for
    several: keys are then byte-identical whichever engine writes them.
    """
    if not table.partition_fields:
        return "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
    if len(table.record_key) == 1:
        return "org.apache.hudi.keygen.SimpleKeyGenerator"
    return "org.apache.hudi.keygen.ComplexKeyGenerator"


def spark_write_options(table: TableContract) -> dict[str, str]:
    """Hudi Spark write options for ``table``, consistent with the Flink connector.

    The contract's ``hoodie.*`` extras come first so that the key, ordering, partition
    and merge settings always follow the contract.
    """
    options = {k: v for k, v in table.extra.items() if k.startswith("hoodie.")}
    options.update(
        {
            "hoodie.table.name": table.name,
            "hoodie.datasource.write.table.type": table.table_type,
            "hoodie.datasource.write.operation": "upsert",
            "hoodie.datasource.write.recordkey.field": ",".join(table.record_key),
            "hoodie.datasource.write.partitionpath.field": ",".join(table.partition_fields),
            "hoodie.datasource.write.keygenerator.class": key_generator_class(table),
            "hoodie.table.ordering.fields": table.ordering_field,
            "hoodie.record.merge.mode": MERGE_MODE,
            "hoodie.metadata.enable": "false",
            "hoodie.index.type": table.index_type,
            "hoodie.datasource.write.hive_style_partitioning": "false",
            "hoodie.datasource.write.partitionpath.urlencode": "false",
            "hoodie.datasource.write.reconcile.schema": "true",
            "hoodie.write.table.version": TABLE_VERSION,
        }
    )
    return options


def write_options(settings: GridLakeSettings, table: TableContract) -> dict[str, str]:
    """Spark write options: the catalog's key/merge settings plus the lake's services."""
    options = {**spark_write_options(table), **settings.lake.hoodie_options()}
    options.update({
        "hoodie.embed.timeline.server": "false",
        "hoodie.write.markers.type": "DIRECT",
        "hoodie.clean.automatic": "true",
        "hoodie.clean.policy": "KEEP_LATEST_COMMITS",
        "hoodie.combine.before.upsert": "true",
    })
    if table.table_type == "MERGE_ON_READ":
        options["hoodie.compact.inline"] = "true"
    return options


def with_retries(write: Callable[[], None], table: str) -> None:
    """Run a Hudi write, again when another writer's commit conflicted with it."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            write()
            return
        except Exception as exc:  # py4j wraps the JVM's exception: match on its text
            if "HoodieWriteConflictException" not in str(exc) or attempt == WRITE_ATTEMPTS:
                raise
            log.warning("%s: write conflicted with a concurrent commit (attempt %d/%d); "
                        "retrying", table, attempt, WRITE_ATTEMPTS)
            time.sleep(attempt)
