"""Spark sessions that read and write GridLake's Hudi tables."""

from __future__ import annotations

import logging
from typing import Any

from infra.settings import GridLakeSettings
from jobs.common.ddl import hudi_table_path
from lakehouse.contracts import FieldType, TableContract

log = logging.getLogger(__name__)


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
    )
    log.info("starting Spark session %s on %s", app_name, settings.spark.master)
    return builder.getOrCreate()


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
