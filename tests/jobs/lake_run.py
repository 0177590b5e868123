"""One run of the lakehouse job over the seeded scenario, shared by the streaming and the
backfill tests (a session fixture in ``tests/jobs/conftest.py``), and the helpers that read
the lake back and compare it with the oracle."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from infra.kafka_lag import wait_caught_up
from infra.settings import GridLakeSettings
from jobs.streaming import control
from jobs.streaming.lakehouse_job import GROUP_SUFFIX
from jobs.streaming.runtime import flink_log_dir
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import FieldType, TableContract

JOB = "lakehouse"
LAKE_SERVICES = {"compaction_delta_commits": 2, "clustering_commits": 4,
                 "clean_commits_retained": 1, "archive_min_commits": 20,
                 "archive_max_commits": 30}
MISSED_RETRACTION = "The state is cleared because of state ttl"
"""What Flink's sink materializer logs when a retraction matches none of the rows it holds:
with the state retention of days no state expires in a test, so each line is a retraction
that differed from the row it retracts (a non-deterministic column, see FlinkDialect.stamp)."""

IGNORED = {"updated_ts", "ingest_ts", "kafka_topic", "kafka_partition", "kafka_offset", "seq"}


def wait_consumed(settings: GridLakeSettings, timeout: float = 300) -> None:
    """Wait until the lakehouse job has committed the end of every topic (fail if not)."""
    topics = [settings.kafka.topic_prefix + m.topic for m in MESSAGES]
    try:
        wait_caught_up(settings, settings.kafka.topic_prefix + GROUP_SUFFIX, topics, timeout)
    except TimeoutError as err:
        # the job's checkpoint counts and failures say whether it was stuck or just slow
        pytest.fail(f"{err}; job: {control.health(settings, JOB)}")


def missed_retractions(settings: GridLakeSettings) -> int:
    """Lines of the running local job's Flink log saying a retraction matched nothing."""
    return sum(log.read_text(errors="replace").count(MISSED_RETRACTION)
               for log in flink_log_dir(settings).glob("flink-*.log"))


def read_tables(
    settings: GridLakeSettings, tables: list[TableContract], spark: Any = None
) -> dict[str, pd.DataFrame]:
    """Hudi tables read back with Spark; timestamps as epoch milliseconds.

    Args:
        settings: Where the tables are.
        tables: Which.
        spark: A session to use (default: one is started and stopped).

    """
    from infra.spark import read_table, spark_scope

    with spark_scope(settings, "test-lakehouse", spark) as session:
        return {
            t.name: read_table(session, settings, t).selectExpr(*[
                f"unix_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
                else f"`{f.name}`" for f in t.fields
            ]).toPandas()
            for t in tables
        }


def same(a: Any, b: Any) -> bool:
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
            if not same(g[k][c], w[k][c]):
                problems.append(f"{table.name} {k} {c}: got {g[k][c]!r}, want {w[k][c]!r}")
    if len(got) != len(g):
        problems.append(f"{table.name}: {len(got) - len(g)} duplicate keys")
    return problems


