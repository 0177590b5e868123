"""End-to-end proof of GridLake's Flink connectors ``gridlake-hudi`` and ``gridlake-redis``.

Self-contained: builds the jars (``settings.jars``) when missing or stale, runs three
PyFlink jobs (bounded changelog sources in streaming mode) in one subprocess launched
with :func:`jobs.common.flink_env.flink_launch_env`, then reads the Hudi tables back with
pyspark 3.5 + the Hudi Spark bundle in a second subprocess, and checks Redis directly.

The lake defaults to a ``file://`` temp dir; ``GRIDLAKE_TEST_LAKE_URI`` (for example
``hdfs://127.0.0.1:8020/gridlake/test``) points it elsewhere (a fresh sub-folder per run).
Redis is started on a free port when ``redis-server`` is installed, else its test skips.

The module doubles as the subprocess entry point: ``python test_connectors.py
flink|spark <config.json>``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
HEAP = "768m"
PREFIX = "gridlake:test:meter:"
#: The same changes into a sink ordered by updated_ts (the serving protocol's guard).
PREFIX_ORDERED = "gridlake:test:meter-ordered:"
CKPT_ROWS = 24

# ---------------------------------------------------------------------------------------
# Input: two changelog rounds in Debezium JSON (op c = insert, u = update, d = delete).
# w0 = 2024-01-01T00:00Z, the ordering column is updated_ts (epoch ms in the source).
W0 = 1704067200000
W1 = W0 + 15 * 60 * 1000


def _sql_ts(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_ms / 1000))


def _row(
    meter: str,
    updated: int,
    kwh: float,
    *,
    window: int = W0,
    dt: str = "2024-01-01",
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "meter_id": meter,
        "window_start": _sql_ts(window),
        "updated_ms": updated,
        "kwh": kwh,
        "quality": int(kwh * 10),
        "ok": kwh < 5,
        "f": kwh / 2,
        "d": dt,
        "note": note,
        "dt": dt,
    }


def _c(after: dict[str, Any]) -> dict[str, Any]:
    return {"before": None, "after": after, "op": "c"}


def _u(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {"before": before, "after": after, "op": "u"}


def _d(before: dict[str, Any]) -> dict[str, Any]:
    return {"before": before, "after": None, "op": "d"}


ROUND1 = [
    _c(_row("m1", 1000, 1.0)),
    _c(_row("m2", 1000, 2.0, note="first")),
    _c(_row("m3", 1000, 3.0)),
    _u(_row("m1", 1000, 1.0), _row("m1", 2000, 1.5)),  # higher ordering: replaces
    _u(_row("m2", 1000, 2.0), _row("m2", 500, 9.9)),  # lower ordering: ignored (Hudi)
    _c(_row("m4", 1000, 4.0, window=W1, dt="2024-01-02")),
    _d(_row("m3", 1000, 3.0)),  # delete
    _c(_row("m5", 1000, 5.0)),
    _d(_row("m5", 1000, 5.0)),  # insert then delete in the same round
]
ROUND2 = [
    _u(_row("m1", 2000, 1.5), _row("m1", 1500, 7.7)),  # lower than the stored row: ignored
    _u(_row("m2", 1000, 2.0, note="first"), _row("m2", 3000, 2.5)),  # higher: replaces
    _d(_row("m4", 1000, 4.0, window=W1, dt="2024-01-02")),  # delete in another partition
    _c(_row("m6", 1000, 6.0, window=W1, dt="2024-01-02")),
    _c(_row("m3", 100, 3.3)),  # re-insert of a deleted key, lower ordering than before
]

# (meter_id, window_start_ms, updated_ms, kwh, note, dt) expected in Hudi after round 2
HUDI_AFTER_ROUND2 = {
    ("m1", W0, 2000, 1.5, None, "2024-01-01"),
    ("m2", W0, 3000, 2.5, None, "2024-01-01"),
    ("m3", W0, 100, 3.3, None, "2024-01-01"),
    ("m6", W1, 1000, 6.0, None, "2024-01-02"),
}
HUDI_AFTER_ROUND1 = {
    ("m1", W0, 2000, 1.5, None, "2024-01-01"),
    ("m2", W0, 1000, 2.0, "first", "2024-01-01"),
    ("m4", W1, 1000, 4.0, None, "2024-01-02"),
}

# The source declares the key so that the planner keeps -U/+U pairs as updates.
SOURCE_COLUMNS = """
  meter_id STRING NOT NULL, window_start TIMESTAMP(3) NOT NULL, updated_ms BIGINT, kwh DOUBLE,
  quality INT, ok BOOLEAN, f FLOAT, d STRING, note STRING, dt STRING,
  PRIMARY KEY (meter_id, window_start) NOT ENFORCED
"""
SINK_COLUMNS = """
  meter_id STRING NOT NULL, window_start TIMESTAMP(3) NOT NULL, updated_ts TIMESTAMP_LTZ(3),
  seq BIGINT, kwh DOUBLE, quality INT, ok BOOLEAN, f FLOAT, d DATE, note STRING, dt STRING
"""
PROJECTION = """
  meter_id, window_start, TO_TIMESTAMP_LTZ(updated_ms, 3) AS updated_ts, updated_ms AS seq,
  kwh, quality, ok, f, TO_DATE(d) AS d, note, dt
"""


# ---------------------------------------------------------------------------------------
# Subprocess side: the PyFlink jobs.
def _hudi_ddl(name: str, path: str, extra: dict[str, str]) -> str:
    options = {
        "connector": "gridlake-hudi",
        "path": path,
        "table.name": name,
        "record.key.fields": "meter_id,window_start",
        "ordering.field": "updated_ts",
        "partition.path.field": "dt",
        **extra,
    }
    body = ",\n".join(f"  '{k}' = '{v}'" for k, v in options.items())
    return (
        f"CREATE TEMPORARY TABLE {name} ({SINK_COLUMNS}, "
        f"PRIMARY KEY (meter_id, window_start) NOT ENFORCED) WITH (\n{body}\n)"
    )


def run_flink_jobs(cfg: dict[str, Any]) -> None:
    """Run the three rounds; every sink is declared once and fed per round."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("parallelism.default", "1")
    conf.set("table.local-time-zone", "UTC")
    conf.set("pipeline.name", "gridlake-connector-test")
    # t_latest's key (meter_id) is not the source's upsert key: the planner would add a
    # SinkUpsertMaterializer, whose state starts empty in every round's job and would swallow
    # round 2's delete of a row it never saw. Each round is a separate job here, so pass through.
    conf.set("table.exec.sink.upsert-materialize", "NONE")
    for i in (1, 2):
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE src{i} ({SOURCE_COLUMNS}) WITH ("
            f"'connector' = 'filesystem', 'path' = '{cfg[f'round{i}']}', "
            "'format' = 'debezium-json')"
        )
        t_env.execute_sql(f"CREATE TEMPORARY VIEW v{i} AS SELECT {PROJECTION} FROM src{i}")
    lake = cfg["lake"]
    # t_twice gets round 2 twice, many small commits and aggressive cleaning/archival.
    t_env.execute_sql(
        _hudi_ddl(
            "t_twice",
            f"{lake}/t_twice",
            {
                "write.batch.max.rows": "3",
                "hoodie.clean.commits.retained": "1",
                "hoodie.keep.min.commits": "2",
                "hoodie.keep.max.commits": "3",
            },
        )
    )
    t_env.execute_sql(_hudi_ddl("t_once", f"{lake}/t_once", {}))
    # MERGE_ON_READ: updates/deletes in log files (no small-file packing), inline compaction
    t_env.execute_sql(
        _hudi_ddl(
            "t_mor",
            f"{lake}/t_mor",
            {
                "table.type": "MERGE_ON_READ",
                "write.batch.max.rows": "3",
                "hoodie.parquet.small.file.limit": "0",
                "hoodie.compact.inline.max.delta.commits": "3",
            },
        )
    )
    t_env.execute_sql(_hudi_ddl("t_round1", f"{lake}/t_round1", {}))
    # unpartitioned, single key column: the NON_PARTITION key generator
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE t_latest (meter_id STRING NOT NULL, "
        "updated_ts TIMESTAMP_LTZ(3) NOT NULL, kwh DOUBLE, PRIMARY KEY (meter_id) NOT ENFORCED)"
        " WITH ('connector' = 'gridlake-hudi', "
        f"'path' = '{lake}/t_latest', 'table.name' = 't_latest', "
        "'record.key.fields' = 'meter_id', 'ordering.field' = 'updated_ts')"
    )
    if cfg.get("redis_url"):
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE serving ({SINK_COLUMNS}, "
            "PRIMARY KEY (meter_id, window_start) NOT ENFORCED) WITH ("
            f"'connector' = 'gridlake-redis', 'url' = '{cfg['redis_url']}', "
            f"'key.prefix' = '{PREFIX}', 'index.score.field' = 'window_start', "
            "'write.batch.max.rows' = '3')"
        )
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE serving_ordered ({SINK_COLUMNS}, "
            "PRIMARY KEY (meter_id, window_start) NOT ENFORCED) WITH ("
            f"'connector' = 'gridlake-redis', 'url' = '{cfg['redis_url']}', "
            f"'key.prefix' = '{PREFIX_ORDERED}', 'index.score.field' = 'window_start', "
            "'ordering.field' = 'updated_ts', 'write.batch.max.rows' = '3')"
        )
    rounds = [
        (1, ["t_twice", "t_once", "t_round1", "t_latest", "t_mor"]),
        (2, ["t_twice", "t_once", "t_latest", "t_mor"]),
        (2, ["t_twice", "t_mor"]),
    ]
    for view, sinks in rounds:
        stmt = t_env.create_statement_set()
        for sink in sinks:
            if sink == "t_latest":
                stmt.add_insert_sql(
                    f"INSERT INTO t_latest SELECT meter_id, updated_ts, kwh FROM v{view}"
                )
            else:
                stmt.add_insert_sql(f"INSERT INTO {sink} SELECT * FROM v{view}")
        if cfg.get("redis_url"):
            stmt.add_insert_sql(f"INSERT INTO serving SELECT * FROM v{view}")
            stmt.add_insert_sql(f"INSERT INTO serving_ordered SELECT * FROM v{view}")
        stmt.execute().wait()

    # Failures must fail the job with a clear message (no restarts: checkpointing is off).
    errors = {}
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE t_mismatch (meter_id STRING NOT NULL, window_start TIMESTAMP(3) "
        "NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (meter_id, window_start) NOT ENFORCED) "
        f"WITH ('connector' = 'gridlake-hudi', 'path' = '{lake}/t_once', "
        "'table.name' = 't_once', 'record.key.fields' = 'meter_id,window_start', "
        "'ordering.field' = 'seq', 'partition.path.field' = '')"
    )
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE dead_redis (meter_id STRING NOT NULL, kwh DOUBLE, "
        "PRIMARY KEY (meter_id) NOT ENFORCED) WITH ('connector' = 'gridlake-redis', "
        f"'url' = 'redis://127.0.0.1:{cfg['dead_port']}/0', 'key.prefix' = 'x:', "
        "'max.retries' = '2', 'retry.backoff' = '100 ms', 'timeout' = '1 s')"
    )
    for name, sql in (
        ("hudi_mismatch", "INSERT INTO t_mismatch SELECT meter_id, window_start, seq FROM v1"),
        ("redis_down", "INSERT INTO dead_redis SELECT meter_id, kwh FROM v1"),
    ):
        try:
            t_env.execute_sql(sql).wait()
            errors[name] = ""
        except Exception as e:  # noqa: BLE001 - the message is what is checked
            errors[name] = str(e)
    Path(cfg["flink_out"]).write_text(json.dumps(errors))

    # A slow bounded source with checkpointing: commits must come from checkpoint flushes
    # (write.batch.max.rows stays at its default of 50000).
    conf.set("execution.checkpointing.interval", "1 s")
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE gen (id BIGINT NOT NULL, v DOUBLE) WITH ("
        "'connector' = 'datagen', 'rows-per-second' = '6', "
        f"'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{CKPT_ROWS}')"
    )
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE t_ckpt (id BIGINT NOT NULL, ts TIMESTAMP_LTZ(3), v DOUBLE, "
        "PRIMARY KEY (id) NOT ENFORCED) WITH ('connector' = 'gridlake-hudi', "
        f"'path' = '{lake}/t_ckpt', 'table.name' = 't_ckpt', "
        "'record.key.fields' = 'id', 'ordering.field' = 'ts')"
    )
    t_env.execute_sql("INSERT INTO t_ckpt SELECT id, TO_TIMESTAMP_LTZ(id, 3), v FROM gen").wait()


# ---------------------------------------------------------------------------------------
# Subprocess side: reading the tables back with Spark.
def run_spark_reads(cfg: dict[str, Any]) -> None:
    """Read every table with the Hudi Spark bundle; write rows and file facts as JSON."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("gridlake-connector-test-read")
        .config("spark.jars", cfg["spark_jars"])
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.sql.extensions", "org.apache.spark.sql.hudi.HoodieSparkSessionExtension")
        .config("spark.driver.memory", HEAP)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out: dict[str, Any] = {}
    lake = cfg["lake"]
    for table in ("t_twice", "t_once", "t_round1", "t_mor"):
        df = spark.read.format("hudi").load(f"{lake}/{table}")
        rows = df.selectExpr(
            "_hoodie_record_key AS record_key",
            "_hoodie_partition_path AS partition_path",
            "meter_id",
            "unix_millis(window_start) AS window_start_ms",
            "unix_millis(updated_ts) AS updated_ms",
            "seq",
            "kwh",
            "quality",
            "ok",
            "f",
            "CAST(d AS STRING) AS d",
            "note",
            "dt",
        ).collect()
        out[table] = [r.asDict() for r in rows]
    latest = spark.read.format("hudi").load(f"{lake}/t_latest")
    out["t_latest"] = [
        r.asDict()
        for r in latest.selectExpr(
            "_hoodie_record_key AS record_key",
            "_hoodie_partition_path AS partition_path",
            "meter_id",
            "kwh",
        ).collect()
    ]
    out["t_latest_columns"] = latest.columns
    ckpt = spark.read.format("hudi").load(f"{lake}/t_ckpt")
    out["t_ckpt"] = sorted(r.id for r in ckpt.select("id").collect())
    out["files"] = _list_files(spark, f"{lake}/t_twice")
    out["props"] = _read_text(spark, f"{lake}/t_twice/.hoodie/hoodie.properties")
    out["mor_files"] = _list_files(spark, f"{lake}/t_mor")
    out["spark_upsert"] = _spark_upsert(spark, f"{lake}/t_round1")
    Path(cfg["spark_out"]).write_text(json.dumps(out))
    if cfg.get("remove_lake"):
        jvm: Any = spark.sparkContext._jvm
        root = jvm.org.apache.hadoop.fs.Path(lake)
        root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(root, True)
    spark.stop()


# What a Spark writer needs to upsert into a table the gridlake-hudi connector created
# (docs/connectors.md): same key generator, ordering field, merge mode, no metadata table,
# and schema reconciliation (both store timestamps as timestamp-micros).
SPARK_WRITE_OPTIONS = {
    "hoodie.datasource.write.operation": "upsert",
    "hoodie.datasource.write.recordkey.field": "meter_id,window_start",
    "hoodie.datasource.write.partitionpath.field": "dt",
    "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.ComplexKeyGenerator",
    "hoodie.table.ordering.fields": "updated_ts",
    "hoodie.record.merge.mode": "EVENT_TIME_ORDERING",
    "hoodie.metadata.enable": "false",
    "hoodie.index.type": "SIMPLE",
    "hoodie.datasource.write.hive_style_partitioning": "false",
    "hoodie.datasource.write.reconcile.schema": "true",
}


def _spark_upsert(spark: Any, path: str) -> list[dict[str, Any]]:
    """Upsert from Spark: m1 one hour newer, m2 one hour older (ignored), new key m9."""
    from pyspark.sql import functions as F

    cur = spark.read.format("hudi").load(path)
    cols = [c for c in cur.columns if not c.startswith("_hoodie")]
    newer = F.expr("updated_ts + INTERVAL 1 HOUR")
    older = F.expr("updated_ts - INTERVAL 1 HOUR")
    changes = (
        cur.select(*cols)
        .where("meter_id IN ('m1', 'm2')")
        .withColumn("kwh", F.lit(42.0))
        .withColumn("updated_ts", F.when(F.col("meter_id") == "m1", newer).otherwise(older))
        .unionByName(cur.select(*cols).where("meter_id = 'm4'").withColumn("meter_id", F.lit("m9")))
    )
    name = path.rstrip("/").rsplit("/", 1)[-1]
    changes.write.format("hudi").options(**SPARK_WRITE_OPTIONS).option(
        "hoodie.table.name", name
    ).mode("append").save(path)
    after = spark.read.format("hudi").load(path)
    return [
        r.asDict()
        for r in after.selectExpr(
            "_hoodie_record_key AS record_key",
            "meter_id",
            "unix_millis(updated_ts) AS updated_ms",
            "kwh",
        ).collect()
    ]


def _list_files(spark: Any, root: str) -> list[str]:
    """All file paths under ``root`` (relative), through Hadoop's FileSystem API."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(root)
    fs = path.getFileSystem(conf)
    base = fs.makeQualified(path).toString().rstrip("/")
    it = fs.listFiles(path, True)
    files = []
    while it.hasNext():
        files.append(it.next().getPath().toString()[len(base) + 1 :])
    return files


def _read_text(spark: Any, path: str) -> str:
    return "\n".join(r.value for r in spark.read.text(path).collect())


# ---------------------------------------------------------------------------------------
# pytest side.
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def jars() -> Path:
    """GridLake's jars (``settings.jars``), built by ``gridlake setup``'s step when stale."""
    from infra.jars import ensure_jars
    from infra.settings import load_settings

    settings = load_settings()
    if shutil.which("mvn") is None and not (settings.jars / "flink").is_dir():
        pytest.skip("jars not built and mvn not installed")
    ensure_jars(settings, ["flink", "spark"])
    assert glob.glob(str(settings.jars / "flink" / "gridlake-flink-connectors-*.jar"))
    assert glob.glob(str(settings.jars / "spark" / "hudi-spark3.5-bundle_*.jar"))
    return settings.jars


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """URL of a throw-away redis-server, or None when it is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    import redis

    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=20)


@dataclass
class Run:
    """What the jobs produced."""

    tables: dict[str, Any]
    errors: dict[str, str]
    flink_log: str
    redis_url: str | None
    events: list[int]
    timings: dict[str, float]  # wall seconds of the two subprocesses, for the log


def _write_changelog(path: Path, records: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path.resolve().as_uri()


def _run_self(mode: str, cfg: dict[str, Any], env: dict[str, str], timeout: int) -> None:
    cfg_file = Path(cfg["work"]) / f"{mode}.json"
    cfg_file.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), mode, str(cfg_file)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{mode} subprocess failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-8000:]}"
        )


@pytest.fixture(scope="module")
def run(
    jars: Path, redis_server: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """Run the Flink rounds once, then read the results back with Spark."""
    from jobs.common.flink_env import flink_launch_env

    work = tmp_path_factory.mktemp("connectors")
    base_uri = os.environ.get("GRIDLAKE_TEST_LAKE_URI")
    lake = (
        f"{base_uri.rstrip('/')}/run-{uuid.uuid4().hex[:8]}"
        if base_uri
        else (work / "lake").resolve().as_uri()
    )
    cfg: dict[str, Any] = {
        "work": str(work),
        "lake": lake,
        "round1": _write_changelog(work / "round1.json", ROUND1),
        "round2": _write_changelog(work / "round2.json", ROUND2),
        "redis_url": redis_server,
        "spark_jars": ",".join(sorted(glob.glob(str(jars / "spark" / "*.jar")))),
        "spark_out": str(work / "spark.json"),
        "flink_out": str(work / "flink.json"),
        "dead_port": _free_port(),
        "remove_lake": bool(base_uri),  # a shared file system: leave nothing behind
    }
    events: list[int] = []
    pubsub = None
    if redis_server:
        import redis

        client = redis.Redis.from_url(redis_server)
        pubsub = client.pubsub()
        pubsub.subscribe(PREFIX + "events")
    log_dir = work / "flink-log"
    log_dir.mkdir()
    env = flink_launch_env(jars, HEAP)
    env["FLINK_LOG_DIR"] = str(log_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    timings = {}
    start = time.monotonic()
    _run_self("flink", cfg, env, timeout=600)
    timings["flink"] = time.monotonic() - start
    start = time.monotonic()
    spark_env = dict(os.environ)
    spark_env["TZ"] = "UTC"
    _run_self("spark", cfg, spark_env, timeout=600)
    timings["spark"] = time.monotonic() - start
    log.info("connector test timings (s): %s", timings)
    if pubsub is not None:
        while (msg := pubsub.get_message(timeout=0.5)) is not None:
            if msg["type"] == "message":
                events.append(int(msg["data"]))
        pubsub.close()
    flink_log = "\n".join(Path(p).read_text() for p in glob.glob(str(log_dir / "*.log")))
    yield Run(
        tables=json.loads(Path(cfg["spark_out"]).read_text()),
        errors=json.loads(Path(cfg["flink_out"]).read_text()),
        flink_log=flink_log,
        redis_url=redis_server,
        events=events,
        timings=timings,
    )


def _facts(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (r["meter_id"], r["window_start_ms"], r["updated_ms"], r["kwh"], r["note"], r["dt"])
        for r in rows
    }


def _data(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(v for k, v in r.items() if k != "record_key") for r in rows)


def test_hudi_round1_exact_rows(run: Run) -> None:
    rows = run.tables["t_round1"]
    assert _facts(rows) == HUDI_AFTER_ROUND1
    m1 = next(r for r in rows if r["meter_id"] == "m1")
    assert m1 == {
        # the key renders the stored long: epoch microseconds, as Spark writes them
        "record_key": f"meter_id:m1,window_start:{W0 * 1000}",
        "partition_path": "2024-01-01",
        "meter_id": "m1",
        "window_start_ms": W0,
        "updated_ms": 2000,
        "seq": 2000,
        "kwh": 1.5,
        "quality": 15,
        "ok": True,
        "f": 0.75,
        "d": "2024-01-01",
        "note": None,
        "dt": "2024-01-01",
    }
    assert {r["partition_path"] for r in rows} == {"2024-01-01", "2024-01-02"}


def test_hudi_ordering_and_deletes_across_commits(run: Run) -> None:
    rows = run.tables["t_once"]
    # m1: lower ordering value did not replace; m2: higher did; m4: deleted; m3: re-inserted
    assert _facts(rows) == HUDI_AFTER_ROUND2


def test_hudi_replay_is_idempotent(run: Run) -> None:
    twice, once = run.tables["t_twice"], run.tables["t_once"]
    assert _facts(twice) == HUDI_AFTER_ROUND2
    assert _data(twice) == _data(once)
    keys = [r["record_key"] for r in twice]
    assert len(keys) == len(set(keys)) == 4


def test_hudi_merge_on_read(run: Run) -> None:
    mor = run.tables["t_mor"]
    assert _data(mor) == _data(run.tables["t_once"])
    files = run.tables["mor_files"]
    timeline = [f for f in files if f.startswith(".hoodie/timeline/")]
    assert any(".log." in f for f in files if not f.startswith(".hoodie")), files
    assert any(f.endswith(".deltacommit") for f in timeline)
    assert any(f.endswith(".compaction.requested") for f in timeline), timeline


def test_spark_upserts_into_connector_table(run: Run) -> None:
    rows = {r["record_key"]: r for r in run.tables["spark_upsert"]}
    assert len(rows) == len(run.tables["spark_upsert"]) == 4  # no duplicated keys
    m1 = rows[f"meter_id:m1,window_start:{W0 * 1000}"]
    assert (m1["updated_ms"], m1["kwh"]) == (2000 + 3600_000, 42.0)
    m2 = rows[f"meter_id:m2,window_start:{W0 * 1000}"]
    assert (m2["updated_ms"], m2["kwh"]) == (1000, 2.0)  # older: ignored
    assert rows[f"meter_id:m9,window_start:{W1 * 1000}"]["kwh"] == 4.0


def test_hudi_unpartitioned_single_key(run: Run) -> None:
    rows = {r["meter_id"]: r for r in run.tables["t_latest"]}
    assert set(rows) == {"m1", "m2", "m3", "m6"}
    assert rows["m1"]["record_key"] == "m1"
    assert rows["m1"]["partition_path"] == ""
    assert rows["m2"]["kwh"] == 2.5


def test_hudi_commits_cleaning_and_archival(run: Run) -> None:
    files = run.tables["files"]
    props = run.tables["props"]
    assert "hoodie.table.keygenerator.type=COMPLEX" in props
    assert "hoodie.record.merge.mode=EVENT_TIME_ORDERING" in props
    assert "hoodie.table.ordering.fields=updated_ts" in props
    assert "hoodie.table.metadata.partitions" not in props
    commits = [f for f in files if f.startswith(".hoodie/timeline/") and f.endswith(".commit")]
    cleans = [f for f in files if f.startswith(".hoodie/timeline/") and f.endswith(".clean")]
    archived = [f for f in files if f.startswith(".hoodie/timeline/history/")]
    assert cleans, "no clean action completed"
    assert archived, "no commit was archived"
    assert len(commits) <= 3  # hoodie.keep.max.commits
    # KEEP_LATEST_COMMITS with 1 retained: at most 2 versions of any file group remain
    versions: dict[str, int] = {}
    for f in files:
        if f.endswith(".parquet") and not f.startswith(".hoodie"):
            group = f.rsplit("/", 1)[-1].split("_", 1)[0]
            versions[group] = versions.get(group, 0) + 1
    assert versions and max(versions.values()) <= 2, versions
    logged = [ln for ln in run.flink_log.splitlines() if "Hudi commit table=t_twice" in ln]
    assert len(logged) >= 6, "t_twice should have committed every 3 keys"
    assert all("upserted=" in ln and "deleted=" in ln and "ms=" in ln for ln in logged)


def test_hudi_commit_per_checkpoint(run: Run) -> None:
    assert run.tables["t_ckpt"] == list(range(1, CKPT_ROWS + 1))
    lines = run.flink_log.splitlines()
    commits = [i for i, ln in enumerate(lines) if "Hudi commit table=t_ckpt" in ln]
    checkpoints = [i for i, ln in enumerate(lines) if "Completed checkpoint" in ln]
    # no size-triggered commit is possible here: the commits come from checkpoint flushes
    triggered = [i for i, ln in enumerate(lines) if "Triggering checkpoint" in ln]
    assert len(commits) >= 2, len(commits)
    for c in commits[:-1]:
        # each commit happens while a checkpoint is in flight: after its trigger, before its
        # completion (the last one may come from the end-of-input flush instead)
        assert any(t < c for t in triggered) and any(k > c for k in checkpoints)
        before = max(t for t in triggered if t < c)
        assert not any(before < k < c for k in checkpoints), "commit outside a checkpoint"


def test_failures_fail_the_job_clearly(run: Run) -> None:
    mismatch = run.errors["hudi_mismatch"]
    assert "does not match the sink definition" in mismatch, mismatch[-2000:]
    assert "ordering fields [updated_ts] (sink: [seq])" in mismatch
    redis_down = run.errors["redis_down"]
    assert "unreachable after 3 attempts" in redis_down, redis_down[-2000:]


def test_redis_serving_copy(run: Run) -> None:
    if run.redis_url is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    import redis

    client = redis.Redis.from_url(run.redis_url, decode_responses=True)
    # Redis applies changes in arrival order (no ordering field): round 2's m1 wins there.
    expected = {
        f"m1|{W0}": ("7.7", "1500"),
        f"m2|{W0}": ("2.5", "3000"),
        f"m3|{W0}": ("3.3", "100"),
        f"m6|{W1}": ("6.0", "1000"),
    }
    assert sorted(client.keys(PREFIX + "*")) == sorted(
        [PREFIX + "index"] + [PREFIX + k for k in expected]
    )
    for suffix, (kwh, updated) in expected.items():
        h = client.hgetall(PREFIX + suffix)
        assert h["kwh"] == kwh and h["updated_ts"] == updated and h["seq"] == updated
        assert h["window_start"] == suffix.split("|")[1]
        assert "note" not in h  # m2's note became NULL in round 2: HDEL
    h = client.hgetall(f"{PREFIX}m1|{W0}")
    assert h == {
        "meter_id": "m1",
        "window_start": str(W0),
        "updated_ts": "1500",
        "seq": "1500",
        "kwh": "7.7",
        "quality": "77",
        "ok": "false",
        "f": "3.85",
        "d": "2024-01-01",
        "dt": "2024-01-01",
    }
    index = client.zrange(PREFIX + "index", 0, -1, withscores=True)
    assert index == [
        (f"m1|{W0}", float(W0)),
        (f"m2|{W0}", float(W0)),
        (f"m3|{W0}", float(W0)),
        (f"m6|{W1}", float(W1)),
    ]
    assert client.zrangebyscore(PREFIX + "index", W1, W1) == [f"m6|{W1}"]
    assert run.events and all(n > 0 for n in run.events)


def test_redis_ordered_by_updated_ts_keeps_what_hudi_keeps(run: Run) -> None:
    # The serving protocol (infra/serving_store.py) in the connector: lower ordering values
    # are refused (m1's 1500 after 2000, m2's 500 after 1000), deletes remove what they
    # delete, a deleted key comes back with a lower value (m3): the rows Hudi keeps.
    if run.redis_url is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    import redis

    client = redis.Redis.from_url(run.redis_url, decode_responses=True)
    got = set()
    for member, score in client.zrange(PREFIX_ORDERED + "index", 0, -1, withscores=True):
        h = client.hgetall(PREFIX_ORDERED + member)
        assert score == float(h["window_start"]) and h["seq"] == h["updated_ts"], member
        got.add((h["meter_id"], int(h["window_start"]), int(h["updated_ts"]), float(h["kwh"]),
                 h.get("note"), h["dt"]))
    assert got == HUDI_AFTER_ROUND2
    assert len(client.keys(PREFIX_ORDERED + "*")) == len(HUDI_AFTER_ROUND2) + 1  # + index


if __name__ == "__main__":
    _mode, _cfg = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    if _mode == "flink":
        run_flink_jobs(_cfg)
    elif _mode == "spark":
        run_spark_reads(_cfg)
    else:
        raise SystemExit(f"unknown mode {_mode}")
