"""The whole lakehouse job end to end: seeded messages on every topic → Kafka → Flink →
Hudi on HDFS (every layer) + Redis; every DIM, DWD, DWS and ADS table equals the pandas
oracle key by key and value by value, and the counts reconcile."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
import redis

from infra.lake import (
    HOODIE_DIR,
    TIMELINE_DIR,
    NeedsSpark,
    Timeline,
    WebHdfs,
    lake_path,
    parse_instant,
    snapshot_files,
)
from infra.settings import GridLakeSettings
from jobs.streaming import lakehouse_job
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.serving import index_key, serving_key_prefix
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE, SERVING_SCORE, TABLES
from tests.jobs.conftest import MISSED
from tests.jobs.lake_run import LAKE_SERVICES, compare, read_tables
from tests.jobs.streaming import lakehouse_data, lakehouse_oracle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
    # updated_ts is the sinks' write time (after the run started), not the SQL's constant
    since_ms = int(pd.Timestamp(ingest_dt, tz="UTC").value // 1_000_000)
    for t in tables:
        if "updated_ts" in t.field_names:
            stale = lake[t.name]["updated_ts"].isna() | (lake[t.name]["updated_ts"] < since_ms)
            if stale.any():
                problems.append(f"{t.name} updated_ts: {int(stale.sum())} rows not stamped")
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


def test_no_retraction_is_missed_by_the_sink_materializers(
    lake_run: tuple[GridLakeSettings, str],
) -> None:
    """The sinks stamp ``updated_ts``; the SQL carries a constant, so retractions match.

    With ``updated_ts`` computed in the SQL (the current time) each retraction differed from
    the row it retracted: the sink materializers missed them (178 log lines in one run),
    kept every version and could re-emit an old one with its older stamp, which Hudi (ordered
    by ``updated_ts``) rejected while Redis (arrival order) took it: a lost update.
    """
    settings, _ = lake_run
    assert MISSED[settings.kafka.topic_prefix] == 0


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
        # stamped by the Redis sink at write time, as in Hudi (the live feed orders by it)
        assert int(stored["updated_ts"]) >= pd.Timestamp(ingest_dt, tz="UTC").value // 10**6


def timeline_actions(settings: GridLakeSettings, table: TableContract) -> Counter[str]:
    """Completed instants of a table's active timeline, counted by action."""
    with WebHdfs.from_settings(settings) as fs:
        path = f"{lake_path(settings, table.layer, table.name)}/{HOODIE_DIR}/{TIMELINE_DIR}"
        instants = [parse_instant(f.name) for f in fs.list_status(path)]
    return Counter(i.action for i in instants if i is not None)


def test_cleaning_happens_and_nothing_is_rolled_back(
        lake_run: tuple[GridLakeSettings, str]) -> None:
    """COPY_ON_WRITE tables rewrite files on every commit: older versions get cleaned."""
    settings, _ = lake_run
    written = [t for t, _ in lakehouse_job.outputs()]  # the ML tables are written elsewhere
    actions = {t.name: timeline_actions(settings, t) for t in written}
    cleaned = [n for n, a in actions.items() if a["clean"]]
    assert len(cleaned) >= 10, actions
    assert not [n for n, a in actions.items() if a["rollback"]], actions


def has_uncompacted_logs(fs: WebHdfs, root: str, timeline: Timeline) -> bool:
    """Whether a file group of the MERGE_ON_READ table at ``root`` has log files newer than
    its base file.

    The API's Parquet reader refuses exactly such partitions (``infra.lake.snapshot_files``).
    """
    for partition in fs.list_status(root):
        if not partition.is_dir or partition.name.startswith("."):
            continue
        try:
            snapshot_files(fs.list_status(f"{root}/{partition.name}"), timeline)
        except NeedsSpark:
            return True
    return False


def test_compaction_happens(lake_run: tuple[GridLakeSettings, str]) -> None:
    """MERGE_ON_READ tables are compacted and their replaced file slices cleaned.

    Hudi compacts only file groups with log files, and a commit that only adds new keys
    writes them to new base files instead of logging, so a table may have no compaction yet.
    Whatever has been logged for the threshold's number of delta commits must have been
    compacted, though.
    """
    settings, _ = lake_run
    written = [t for t, _ in lakehouse_job.outputs()]
    merge_on_read = [t for t in written if t.table_type == "MERGE_ON_READ"]
    assert merge_on_read, "no MERGE_ON_READ table in the catalog"
    threshold = LAKE_SERVICES["compaction_delta_commits"]
    compacted, cleaned = [], []
    for t in merge_on_read:
        root = lake_path(settings, t.layer, t.name)
        with WebHdfs.from_settings(settings) as fs:
            names = [f.name for f in fs.list_status(f"{root}/{HOODIE_DIR}/{TIMELINE_DIR}")]
            instants = [i for i in map(parse_instant, names) if i]
            # a MERGE_ON_READ table's writes are delta commits; a "commit" is a compaction
            last = max((i.requested for i in instants if i.action == "commit"), default="")
            since = sum(1 for i in instants if i.action == "deltacommit" and i.requested > last)
            if since >= threshold:
                assert not has_uncompacted_logs(fs, root, Timeline(names)), (
                    f"{t.name}: {since} delta commits since the last compaction "
                    f"({last or 'none'}) and still log files: compaction did not run")
        if last:
            compacted.append(t.name)
        if any(i.action == "clean" for i in instants):
            cleaned.append(t.name)
    # later chunks of the scenario update most summaries: at least half must have compacted
    assert len(compacted) * 2 >= len(merge_on_read), (compacted, len(merge_on_read))
    # a compaction's replaced slice is cleaned after a later commit: not every table yet
    assert cleaned, "no MERGE_ON_READ table was ever cleaned"
