"""The lake's Hudi metadata (infra.lake): timeline file names, snapshots, last commits.

Unit tests parse timeline and data file names; the integration test reads timelines
written to the real HDFS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from infra.lake import (
    COMPLETED,
    INFLIGHT,
    REQUESTED,
    FileStatus,
    LakeUnavailable,
    NeedsSpark,
    Timeline,
    WebHdfs,
    lake_path,
    last_commits,
    newest_instant,
    parse_instant,
    parse_timeline_name,
    snapshot_files,
)
from infra.settings import GridLakeSettings
from lakehouse.contracts.tables import TABLES

# ---------------------------------------------------------------------------------------
# Timeline file names -> newest instant
# ---------------------------------------------------------------------------------------
TIMELINE = [
    "20261121004308654.clean.requested",
    "20261121004308654_20261121004308697.clean",
    "20261121004312671.commit.requested",
    "20261121004312671.inflight",
    "20261121004312671_20261121004313620.commit",
    "20261121004317671.commit.requested",
    "20261121004317671.inflight",
    "20261121004317671_20261121004318455.commit",
    "20261121004318523.clean.requested",
    "20261121004318523.clean.inflight",
    "20261121004318523_20261121004318574.clean",
    "20261121004320000.commit.requested",  # in flight: not completed
    "20261121004320000.inflight",
    "history",
]


def test_parse_instant_completed_only() -> None:
    i = parse_instant("20261121004317671_20261121004318455.commit", 7)
    assert i is not None
    assert (i.requested, i.completed, i.action, i.modified_ms) == (
        "20261121004317671", "20261121004318455", "commit", 7)
    legacy = parse_instant("20240101120000000.deltacommit")
    assert legacy is not None and legacy.completed is None and legacy.action == "deltacommit"
    for name in ("20261121004320000.commit.requested", "20261121004320000.inflight",
                 "20261121004318523.clean.inflight", "history", "hoodie.properties",
                 "20261121004320000.deltacommit.inflight"):
        assert parse_instant(name) is None, name


def test_timeline_names_in_every_state() -> None:
    def parsed(name: str) -> tuple[str, str, str, str | None] | None:
        i = parse_timeline_name(name)
        return None if i is None else (i.requested, i.action, i.state, i.completed)

    assert parsed("20261121004317671_20261121004318455.commit") == (
        "20261121004317671", "commit", COMPLETED, "20261121004318455")
    assert parsed("20240101120000000.deltacommit") == (
        "20240101120000000", "deltacommit", COMPLETED, None)
    assert parsed("20261121004320000.commit.requested") == (
        "20261121004320000", "commit", REQUESTED, None)
    assert parsed("20261121004320000.inflight") == ("20261121004320000", "commit", INFLIGHT, None)
    assert parsed("20261121004318523.clean.inflight") == (
        "20261121004318523", "clean", INFLIGHT, None)
    for name in ("history", "hoodie.properties", ".aux", "20240101120000000.nonsense",
                 "20240101120000000.commit.crc", "metadata"):
        assert parse_timeline_name(name) is None, name


def test_newest_instant_is_the_last_completed_commit() -> None:
    newest = newest_instant(TIMELINE)
    assert newest is not None
    assert (newest.requested, newest.action) == ("20261121004317671", "commit")
    # any action: the clean that completed after it
    any_action = newest_instant(TIMELINE, actions=("commit", "clean"))
    assert any_action is not None and any_action.action == "clean"
    assert newest_instant(["20261121004308654_20261121004308697.clean"]) is None
    assert newest_instant([]) is None


def test_newest_instant_orders_by_completion_time() -> None:
    # requested earlier, completed later (a long write overtaken by a short one)
    names = ["20240101000000100_20240101000009000.commit",
             "20240101000000500_20240101000001000.deltacommit",
             "20240101000000900_20240101000002000.replacecommit"]
    newest = newest_instant(names)
    assert newest is not None and newest.requested == "20240101000000100"


# ---------------------------------------------------------------------------------------
# Timeline -> which data files form a partition's snapshot
# ---------------------------------------------------------------------------------------
def _files(*names: str) -> list[FileStatus]:
    return [FileStatus(n, False, 1, 0) for n in names]


ACTIVE = Timeline([
    "20260301000000000.commit.requested", "20260301000000000.inflight",
    "20260301000000000_20260301000001000.commit",
    "20260302000000000.commit.requested", "20260302000000000.inflight",  # in flight/failed
    "20260303000000000_20260303000002000.commit",
    "20260303500000000.clean.requested", "20260303500000000_20260303500000100.clean",
    "history",
])


def test_timeline_knows_completed_pending_and_archived() -> None:
    assert ACTIVE.counts("20260301000000000")
    assert ACTIVE.counts("20260303000000000")
    assert not ACTIVE.counts("20260302000000000")
    assert ACTIVE.counts("20250101000000000")  # older than the active timeline: archived
    assert not ACTIVE.counts("20270101000000000")  # never seen: not committed
    old_layout = Timeline(["20260301000000000.commit", "20260302000000000.inflight"])
    assert old_layout.counts("20260301000000000")
    assert not old_layout.counts("20260302000000000")
    assert ACTIVE.actions == {"commit", "clean"}


def test_timeline_of_the_monitor_names() -> None:
    # the same parser reads the names the last-commit report reads
    tl = Timeline(TIMELINE)
    assert tl.pending == {"20261121004320000"}
    assert tl.counts("20261121004317671") and not tl.counts("20261121004320000")
    assert tl.earliest == "20261121004308654"


def test_snapshot_takes_the_newest_committed_base_file_per_file_group() -> None:
    entries = _files(
        ".hoodie_partition_metadata",
        "aaa-0_0-1-1_20260301000000000.parquet",
        "aaa-0_0-2-2_20260303000000000.parquet",  # newer slice of aaa
        "bbb-0_0-1-1_20260301000000000.parquet",
        "bbb-0_0-3-3_20260302000000000.parquet",  # written by the failed commit: ignored
        "ccc-0_1-9-9_20260302000000000.parquet",  # only the failed commit: no file group
    )
    assert snapshot_files(entries, ACTIVE) == [
        "aaa-0_0-2-2_20260303000000000.parquet", "bbb-0_0-1-1_20260301000000000.parquet"]


def test_uncompacted_log_files_need_spark() -> None:
    entries = _files("aaa-0_0-1-1_20260301000000000.parquet",
                     ".aaa-0_20260303000000000.log.1_0-1-1")
    with pytest.raises(NeedsSpark, match="Spark"):
        snapshot_files(entries, ACTIVE)
    stale_log = _files("aaa-0_0-1-1_20260303000000000.parquet",
                       ".aaa-0_20260301000000000.log.1_0-1-1")
    assert snapshot_files(stale_log, ACTIVE) == ["aaa-0_0-1-1_20260303000000000.parquet"]


# ---------------------------------------------------------------------------------------
# Last commit per table
# ---------------------------------------------------------------------------------------
def test_last_commits_raise_when_webhdfs_is_unreachable(settings: GridLakeSettings) -> None:
    with pytest.raises(LakeUnavailable, match="unreachable"):
        last_commits(settings, TABLES[:1], timeout_s=1)


# ---------------------------------------------------------------------------------------
# Integration: real HDFS
# ---------------------------------------------------------------------------------------
@pytest.fixture
def isolated(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """The stack's settings with this test's own lake root (removed afterwards)."""
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(
        update={"hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/m{run}"})}
    )
    yield settings
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(settings.hdfs.lake_root, recursive=True)


@pytest.mark.integration
def test_last_commit_from_a_timeline_on_hdfs(isolated: GridLakeSettings) -> None:
    s = isolated
    ods, dwd, dim = TABLES[0], next(t for t in TABLES if t.layer == "dwd"), next(
        t for t in TABLES if t.layer == "dim")
    with WebHdfs.from_settings(s) as fs:
        base = lake_path(s, ods.layer, ods.name)
        for name in TIMELINE[:-1]:
            fs.write(f"{base}/.hoodie/timeline/{name}", b"")
        fs.mkdirs(f"{base}/.hoodie/timeline/history")
        fs.mkdirs(f"{lake_path(s, dwd.layer, dwd.name)}/.hoodie/timeline")  # no commits yet
        fs.write(f"{lake_path(s, dim.layer, dim.name)}/.hoodie/20240101000000000.commit", b"")
        assert fs.exists(f"{base}/.hoodie/timeline/history")
        assert not fs.exists(f"{base}/.hoodie/hoodie.properties")
    commits = {c.table: c for c in last_commits(s)}
    got = commits[ods.name]
    assert (got.state, got.instant, got.action, got.completed) == (
        "ok", "20261121004317671", "commit", "20261121004318455")
    assert got.modified_ms and got.path == f"{s.hdfs.lake_root}/ods/{ods.name}"
    assert commits[dwd.name].state == "no commits"
    legacy = commits[dim.name]
    assert (legacy.state, legacy.instant, legacy.completed) == ("ok", "20240101000000000", None)
    assert sum(c.state == "no table" for c in commits.values()) == len(TABLES) - 3


def test_write_asks_for_the_given_replication() -> None:
    """Writers pass the stack's replication (2 DataNodes), not HDFS's default of 3."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "nn":
            return httpx.Response(307, headers={"location": "http://dn/x?op=CREATE"})
        return httpx.Response(201)

    fs = WebHdfs("http://nn:9870", "gridlake")
    fs._http = httpx.Client(transport=httpx.MockTransport(handler))
    fs.write("/a/b.png", b"data", replication=2)
    fs.write("/a/c.png", b"data")
    assert seen[0].url.params["replication"] == "2" and seen[1].content == b"data"
    assert "replication" not in seen[2].url.params
