"""``gridlake tables check`` / ``create`` (jobs.catalog, infra.lake properties).

Unit tests parse ``hoodie.properties`` and compare it with contracts; the integration
test (``-m integration``, slow: one Spark write per table) creates every table on an
empty lake root of its own, checks it, then breaks one table's properties.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from infra.lake import HudiTableConfig, WebHdfs, lake_path, parse_properties
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.spark import key_generator_class, spark_write_options
from jobs import catalog
from jobs.catalog import TableCheck, compare
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN, DIM_DEVICE, ODS_METER_READING, TABLES

# What the Flink connector wrote for ods_meter_reading (schema shortened).
PROPERTIES = r"""#Updated at 2026-11-21T00:19:30.564066961Z, host=192.0.2.2, hudi_version=1.2.1
#Sat Nov 21 00:19:30 UTC 2026
hoodie.table.initial.version=9
hoodie.table.keygenerator.type=COMPLEX
hoodie.table.type=COPY_ON_WRITE
hoodie.table.partition.fields=dt
hoodie.table.create.schema={"type"\:"record","name"\:"ods_meter_reading_record","fields"\:[]}
hoodie.timeline.layout.version=2
hoodie.table.name=ods_meter_reading
hoodie.table.recordkey.fields=kafka_topic,kafka_partition,kafka_offset
hoodie.table.ordering.fields=ingest_ts
hoodie.datasource.write.hive_style_partitioning=false
hoodie.record.merge.mode=EVENT_TIME_ORDERING
hoodie.table.version=9
"""


def _config(**changes: str) -> HudiTableConfig:
    props = parse_properties(PROPERTIES)
    props.update(changes)
    return HudiTableConfig.from_properties(props)


def test_parse_java_properties() -> None:
    props = parse_properties(PROPERTIES)
    assert props["hoodie.table.create.schema"].startswith('{"type":"record","name":')
    assert props["hoodie.table.recordkey.fields"] == "kafka_topic,kafka_partition,kafka_offset"
    assert not any(k.startswith("#") for k in props)
    odd = parse_properties(
        "! comment\n  a = 1\nb:2\nc 3\nd=x\\\n    y\ne=\\u00e9\\=\\\\\nf=\n"
        "key\\ with\\:colon=v\n"
    )
    assert odd == {"a": "1", "b": "2", "c": "3", "d": "xy", "e": "é=\\", "f": "",
                   "key with:colon": "v"}


def test_table_config_from_properties() -> None:
    cfg = _config()
    assert cfg.record_key == ("kafka_topic", "kafka_partition", "kafka_offset")
    assert cfg.ordering_fields == ("ingest_ts",)
    assert cfg.partition_fields == ("dt",)
    assert (cfg.table_type, cfg.merge_mode, cfg.version, cfg.name) == (
        "COPY_ON_WRITE", "EVENT_TIME_ORDERING", 9, "ods_meter_reading")
    # older tables: precombine field; custom key generators: "field:type"
    old = HudiTableConfig.from_properties({"hoodie.table.precombine.field": "ts",
                                           "hoodie.table.partition.fields": "dt:simple"})
    assert (old.ordering_fields, old.partition_fields, old.table_type) == (
        ("ts",), ("dt",), "COPY_ON_WRITE")
    assert HudiTableConfig.from_properties({"hoodie.table.partition.fields": ""}) \
        .partition_fields == ()


def test_compare_with_the_contract() -> None:
    assert compare(ODS_METER_READING, _config()) == []
    problems = compare(ODS_METER_READING, _config(**{
        "hoodie.table.recordkey.fields": "kafka_topic,kafka_offset",
        "hoodie.table.ordering.fields": "ts",
        "hoodie.table.partition.fields": "",
        "hoodie.table.type": "MERGE_ON_READ",
        "hoodie.record.merge.mode": "COMMIT_TIME_ORDERING",
    }))
    assert problems == [
        "record key kafka_topic,kafka_offset "
        "(contract: kafka_topic,kafka_partition,kafka_offset)",
        "ordering field ts (contract: ingest_ts)",
        "partition fields (none) (contract: dt)",
        "table type MERGE_ON_READ (contract: COPY_ON_WRITE)",
        "record merge mode COMMIT_TIME_ORDERING (GridLake: EVENT_TIME_ORDERING)",
    ]
    # key order matters: it is the order of the COMPLEX record key string
    swapped = _config(**{"hoodie.table.recordkey.fields":
                         "kafka_partition,kafka_topic,kafka_offset"})
    assert len(compare(ODS_METER_READING, swapped)) == 1


def test_check_line() -> None:
    ok = TableCheck("ods_x", "ods", "/l/ods/ods_x", "ok")
    bad = TableCheck("dwd_x", "dwd", "/l/dwd/dwd_x", "mismatch", ("record key a (contract: b)",))
    assert ok.line() == "ok       ods  ods_x"
    assert bad.line() == "mismatch dwd  dwd_x: record key a (contract: b)"


def test_write_options_follow_the_connector() -> None:
    assert key_generator_class(ODS_METER_READING).endswith(".ComplexKeyGenerator")
    assert key_generator_class(DIM_DEVICE).endswith(".NonpartitionedKeyGenerator")
    single = dataclasses.replace(ADS_METER_ENERGY_15MIN, record_key=("device_id",))
    assert key_generator_class(single).endswith(".SimpleKeyGenerator")
    opts = spark_write_options(ODS_METER_READING)
    assert opts["hoodie.datasource.write.recordkey.field"] == \
        "kafka_topic,kafka_partition,kafka_offset"
    assert opts["hoodie.datasource.write.partitionpath.field"] == "dt"
    assert opts["hoodie.table.ordering.fields"] == "ingest_ts"
    assert opts["hoodie.datasource.write.reconcile.schema"] == "true"
    assert opts["hoodie.write.table.version"] == "9"
    assert opts["hoodie.metadata.enable"] == "false"
    assert opts["hoodie.index.type"] == "SIMPLE"
    assert opts["hoodie.record.merge.mode"] == "EVENT_TIME_ORDERING"
    assert spark_write_options(DIM_DEVICE)["hoodie.datasource.write.partitionpath.field"] == ""
    # a contract's hoodie.* extras are passed on, but cannot override the key
    extra = dataclasses.replace(ODS_METER_READING, extra={
        "hoodie.clean.commits.retained": "3",
        "hoodie.datasource.write.recordkey.field": "x",
        "write.batch.max.rows": "9",
    })
    opts = spark_write_options(extra)
    assert opts["hoodie.clean.commits.retained"] == "3"
    assert opts["hoodie.datasource.write.recordkey.field"].startswith("kafka_topic")
    assert "write.batch.max.rows" not in opts


def test_spark_schema_of_a_contract() -> None:
    from pyspark.sql import types as T

    from infra.spark import spark_schema

    schema = spark_schema(ODS_METER_READING)
    assert schema.fieldNames() == ODS_METER_READING.field_names
    by_name = {f.name: f for f in schema.fields}
    assert not by_name["kafka_offset"].nullable and by_name["dt"].nullable
    assert isinstance(by_name["kafka_offset"].dataType, T.LongType)
    assert isinstance(by_name["ingest_ts"].dataType, T.TimestampType)


# ---------------------------------------------------------------------------------------
# Integration: a lake root of its own on the real HDFS, tables written by Spark
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lake(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """The stack's settings with an empty lake root of this module's own."""
    root = f"/gridlake/test/c{uuid.uuid4().hex[:8]}"
    settings = stack.model_copy(
        update={"hdfs": stack.hdfs.model_copy(update={"lake_root": root})}
    )
    yield settings
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(root, recursive=True)


def _cli(settings: GridLakeSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIDLAKE_HOME": str(settings.home),
           "GRIDLAKE_HDFS__LAKE_ROOT": settings.hdfs.lake_root}
    return subprocess.run(
        [sys.executable, "-m", "ops.cli.main", "tables", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.mark.integration
@pytest.mark.slow
def test_create_then_check_then_break_a_table(
    lake: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an empty lake: everything missing, which is not a mismatch
    assert {c.state for c in catalog.check_tables(lake)} == {"missing"}

    created = catalog.create_tables(lake)
    assert [c.table for c in created] == [t.name for t in TABLES]
    assert {c.action for c in created} == {"created"}
    checks = catalog.check_tables(lake)
    assert [(c.table, c.state, c.problems) for c in checks] == [
        (t.name, "ok", ()) for t in TABLES]
    with WebHdfs.from_settings(lake) as fs:
        props = parse_properties(fs.read(
            f"{lake_path(lake, DIM_DEVICE.layer, DIM_DEVICE.name)}/.hoodie/hoodie.properties"
        ).decode())
    assert props["hoodie.table.version"] == "9"
    assert props["hoodie.table.keygenerator.type"] == "NON_PARTITION"
    assert "hoodie.table.metadata.partitions" not in props

    # idempotent: nothing missing -> no Spark session at all, nothing touched
    def no_spark(*_: object, **__: object) -> None:
        raise AssertionError("create started Spark although nothing was missing")

    monkeypatch.setattr("infra.spark.spark_session", no_spark)
    assert {c.action for c in catalog.create_tables(lake)} == {"exists"}
    monkeypatch.undo()
    t0 = time.monotonic()
    res = _cli(lake, "create")
    assert res.returncode == 0, res.stderr
    assert f"0 created, {len(TABLES)} already existed" in res.stdout
    assert time.monotonic() - t0 < 60

    # a wrong record key in hoodie.properties is a mismatch (exit 1); others stay ok
    victim = ODS_METER_READING
    path = f"{lake_path(lake, victim.layer, victim.name)}/.hoodie/hoodie.properties"
    with WebHdfs.from_settings(lake) as fs:
        text = fs.read(path).decode()
        fs.write(path, text.replace(
            "hoodie.table.recordkey.fields=kafka_topic,kafka_partition,kafka_offset",
            "hoodie.table.recordkey.fields=device_id").encode())
    by_table = {c.table: c for c in catalog.check_tables(lake)}
    assert by_table[victim.name].state == "mismatch"
    assert by_table[victim.name].problems == (
        "record key device_id (contract: kafka_topic,kafka_partition,kafka_offset)",)
    assert all(c.state == "ok" for n, c in by_table.items() if n != victim.name)
    res = _cli(lake, "check")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"mismatch ods  {victim.name}: record key device_id" in res.stdout
    assert "Traceback" not in res.stderr

    # a mismatching table is left untouched by create; a deleted one is re-created
    gone = DIM_DEVICE
    with WebHdfs.from_settings(lake) as fs:
        fs.delete(lake_path(lake, gone.layer, gone.name), recursive=True)
    assert {c.table: c.state for c in catalog.check_tables(lake)}[gone.name] == "missing"
    again = {c.table: c.action for c in catalog.create_tables(lake)}
    assert again[gone.name] == "created"
    assert again[victim.name] == "exists"
    final = {c.table: c.state for c in catalog.check_tables(lake)}
    assert final[gone.name] == "ok" and final[victim.name] == "mismatch"


def test_check_cli_without_hdfs(settings: GridLakeSettings) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GRIDLAKE_")},
           "GRIDLAKE_HOME": str(settings.home),
           "GRIDLAKE_HDFS__NAMENODE_HTTP_PORT": str(settings.hdfs.namenode_http_port)}
    for cmd in ("check", "create"):
        res = subprocess.run(
            [sys.executable, "-m", "ops.cli.main", "tables", cmd], cwd=REPO_ROOT, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert res.returncode == 1
        assert "unreachable" in res.stdout + res.stderr
        assert "Traceback" not in res.stdout + res.stderr
