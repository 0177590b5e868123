"""The whole lakehouse job end to end: seeded messages on every topic → Kafka → Flink →
Hudi on HDFS (every layer) + Redis; every DIM, DWD, DWS and ADS table equals the pandas
oracle key by key and value by value, and the counts reconcile."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
import redis

from infra.lake import HOODIE_DIR, TIMELINE_DIR, WebHdfs, lake_path, parse_instant
from infra.settings import GridLakeSettings
from jobs.streaming import control
from jobs.streaming.lakehouse import GROUP_SUFFIX
from jobs.streaming.monitor import consumer_lag
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.serving import index_key, serving_key_prefix
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE, SERVING_SCORE, TABLES
from tests.jobs.streaming import lakehouse_data, lakehouse_oracle
from tests.jobs.streaming.conftest import make_isolated, publish_to

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOB = "lakehouse"
LAKE_SERVICES = {"compaction_delta_commits": 2, "clean_commits_retained": 1,
                 "archive_min_commits": 20, "archive_max_commits": 30}
IGNORED = {"updated_ts", "ingest_ts", "kafka_topic", "kafka_partition", "kafka_offset", "seq"}


def wait_consumed(settings: GridLakeSettings, timeout: float = 300) -> None:
    """Wait until the job's committed offsets reach the end of every topic.

    Offsets are committed when a checkpoint completes, and every sink flushes its rows
    in that checkpoint: once committed == end, all of it is in Hudi and Redis.
    """
    topics = [settings.kafka.topic_prefix + m.topic for m in MESSAGES]
    group = settings.kafka.topic_prefix + GROUP_SUFFIX
    deadline = time.monotonic() + timeout
    while True:
        lags = consumer_lag(settings, group, topics, timeout_s=30)
        behind = {t.topic: t.lag for t in lags if t.lag}
        if not behind:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"job did not consume everything in {timeout} s: {behind}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def scenario() -> lakehouse_data.Scenario:
    """The seeded scenario."""
    return lakehouse_data.scenario(7)


@pytest.fixture(scope="module")
def lake_run(
    stack: GridLakeSettings, scenario: lakehouse_data.Scenario
) -> Iterator[tuple[GridLakeSettings, str]]:
    """Run the job over both phases of the scenario; yields settings and the ingest date."""
    # One partition per topic: the oracle's arrival order is the publish order.
    # Table services every other commit, so that compaction and cleaning run within the scenario.
    settings, env = make_isolated(
        stack, lake=LAKE_SERVICES, watermark_delay_ms=scenario.watermark_delay_ms,
        allowed_lateness_ms=scenario.allowed_lateness_ms,
    )
    control.start(settings, JOB, extra_env=env, resume=False)
    try:
        control.wait_running(settings, JOB, timeout=400)
        ingest_dt = datetime.now(UTC).strftime("%Y-%m-%d")
        # In chunks, each consumed (committed) before the next: every table gets several
        # commits, so compaction and cleaning run. The oracle does not depend on it: the
        # result of the SQL depends on arrival order only, not on checkpoint boundaries.
        for phase, chunks in ((scenario.phase1, 3), (scenario.phase2, 2)):
            size = -(-len(phase) // chunks)
            for i in range(0, len(phase), size):
                publish_to(settings, phase[i:i + size])
                wait_consumed(settings)
        yield settings, ingest_dt
    finally:
        control.stop(settings, JOB, savepoint=False)


def read_tables(settings: GridLakeSettings, tables: list[TableContract]) -> dict[str, pd.DataFrame]:
    """Hudi tables read back with Spark; timestamps as epoch milliseconds."""
    from jobs.batch.spark import read_table, spark_session

    spark = spark_session(settings, "test-lakehouse")
    try:
        return {
            t.name: read_table(spark, settings, t).selectExpr(*[
                f"unix_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
                else f"`{f.name}`" for f in t.fields
            ]).toPandas()
            for t in tables
        }
    finally:
        spark.stop()


def _same(a: Any, b: Any) -> bool:
    a_missing = a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def compare(table: TableContract, got: pd.DataFrame, want: pd.DataFrame) -> list[str]:
    """Differences between the lake table and the oracle, key by key, value by value."""
    key = list(table.record_key)
    cols = [c for c in want.columns if c not in IGNORED]
    g = {tuple(r[k] for k in key): r for r in got.to_dict("records")}
    w = {tuple(r[k] for k in key): r for r in want.to_dict("records")}
    problems = [f"{table.name}: missing key {k}" for k in sorted(w.keys() - g.keys(), key=str)]
    problems += [f"{table.name}: unexpected key {k}" for k in sorted(g.keys() - w.keys(), key=str)]
    for k in sorted(w.keys() & g.keys(), key=str):
        for c in cols:
            if not _same(g[k][c], w[k][c]):
                problems.append(f"{table.name} {k} {c}: got {g[k][c]!r}, want {w[k][c]!r}")
    if len(got) != len(g):
        problems.append(f"{table.name}: {len(got) - len(g)} duplicate keys")
    return problems


def test_every_layer_equals_the_oracle(
    lake_run: tuple[GridLakeSettings, str], scenario: lakehouse_data.Scenario
) -> None:
    settings, ingest_dt = lake_run
    expected = lakehouse_oracle.expected(scenario, ingest_dt=ingest_dt)
    tables = [t for t in TABLES if t.name in expected]
    lake = read_tables(settings, [*tables, *ODS_TABLES.values(), QUARANTINE])
    problems: list[str] = []
    for t in tables:
        problems += compare(t, lake[t.name], expected[t.name])
    if problems:
        by_column = Counter(" ".join(p.split(" ")[:1] + p.split(":")[0].split(" ")[-1:])
                            for p in problems)
        pytest.fail(f"{len(problems)} differences, by table and column: {dict(by_column)}\n"
                    + "\n".join(problems[:40]))

    # Reconciliation: every message read is in exactly one of ODS or quarantine.
    counts = lakehouse_oracle.ods_counts(scenario)
    for table in ODS_TABLES.values():
        got = lake[table.name]
        assert len(got) == counts[table.name], table.name
        assert not got.duplicated(["kafka_topic", "kafka_partition", "kafka_offset"]).any()
    assert len(lake[QUARANTINE.name]) == lakehouse_oracle.quarantine_count(scenario)
    published = len(scenario.phase1) + len(scenario.phase2)
    assert sum(counts.values()) + len(lake[QUARANTINE.name]) == published


def test_serving_copy_holds_every_ads_row(
    lake_run: tuple[GridLakeSettings, str], scenario: lakehouse_data.Scenario
) -> None:
    settings, ingest_dt = lake_run
    expected = lakehouse_oracle.expected(scenario, ingest_dt=ingest_dt)
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    by_name = {t.name: t for t in TABLES}
    for name in SERVING_SCORE:
        table = by_name[name]
        want = expected[name]
        assert client.zcard(index_key(settings.redis.key_prefix, table)) == len(want), name
        row = want.iloc[len(want) // 2]
        suffix = "|".join(str(row[k]) for k in table.record_key)
        stored = client.hgetall(serving_key_prefix(settings.redis.key_prefix, table) + suffix)
        assert stored, f"{name}: no hash for {suffix}"


def timeline_actions(settings: GridLakeSettings, table: TableContract) -> Counter[str]:
    """Completed instants of a table's active timeline, counted by action."""
    with WebHdfs.from_settings(settings) as fs:
        path = f"{lake_path(settings, table.layer, table.name)}/{HOODIE_DIR}/{TIMELINE_DIR}"
        instants = [parse_instant(f.name) for f in fs.list_status(path)]
    return Counter(i.action for i in instants if i is not None)


def test_compaction_and_cleaning_happen(lake_run: tuple[GridLakeSettings, str]) -> None:
    """MERGE_ON_READ tables are compacted and their replaced file slices cleaned."""
    settings, _ = lake_run
    actions = {t.name: timeline_actions(settings, t) for t in TABLES}
    merge_on_read = [t.name for t in TABLES if t.table_type == "MERGE_ON_READ"]
    assert merge_on_read, "no MERGE_ON_READ table in the catalog"
    for name in merge_on_read:
        a = actions[name]
        # a MERGE_ON_READ table's writes are delta commits; a "commit" is a finished compaction
        assert a["deltacommit"] >= LAKE_SERVICES["compaction_delta_commits"], (name, a)
        assert a["commit"] >= 1, f"{name} was never compacted: {dict(a)}"
        assert a["clean"] >= 1, f"{name} was never cleaned: {dict(a)}"
    assert not [n for n, a in actions.items() if a["rollback"]], actions
