import pytest

from api.datasets import DATASETS, to_ms
from api.lake_reader import LakeReader, LakeReadError, Timeline, snapshot_files
from infra.lake import FileStatus
from tests.api.ads_data import World, same_rows


def _files(*names: str) -> list[FileStatus]:
    return [FileStatus(n, False, 1, 0) for n in names]


TIMELINE = Timeline([
    "20260301000000000.commit.requested", "20260301000000000.inflight",
    "20260301000000000_20260301000001000.commit",
    "20260302000000000.commit.requested", "20260302000000000.inflight",  # in flight/failed
    "20260303000000000_20260303000002000.commit",
    "20260303500000000.clean.requested", "20260303500000000_20260303500000100.clean",
    "history",
])


def test_timeline_knows_completed_pending_and_archived() -> None:
    assert TIMELINE.counts("20260301000000000")
    assert TIMELINE.counts("20260303000000000")
    assert not TIMELINE.counts("20260302000000000")
    assert TIMELINE.counts("20250101000000000")  # older than the active timeline: archived
    assert not TIMELINE.counts("20270101000000000")  # never seen: not committed
    old_layout = Timeline(["20260301000000000.commit", "20260302000000000.inflight"])
    assert old_layout.counts("20260301000000000")
    assert not old_layout.counts("20260302000000000")


def test_snapshot_takes_the_newest_committed_base_file_per_file_group() -> None:
    entries = _files(
        ".hoodie_partition_metadata",
        "aaa-0_0-1-1_20260301000000000.parquet",
        "aaa-0_0-2-2_20260303000000000.parquet",  # newer slice of aaa
        "bbb-0_0-1-1_20260301000000000.parquet",
        "bbb-0_0-3-3_20260302000000000.parquet",  # written by the failed commit: ignored
        "ccc-0_1-9-9_20260302000000000.parquet",  # only the failed commit: no file group
    )
    assert snapshot_files(entries, TIMELINE) == [
        "aaa-0_0-2-2_20260303000000000.parquet", "bbb-0_0-1-1_20260301000000000.parquet"]


def test_uncompacted_log_files_need_spark() -> None:
    entries = _files("aaa-0_0-1-1_20260301000000000.parquet",
                     ".aaa-0_20260303000000000.log.1_0-1-1")
    with pytest.raises(LakeReadError, match="Spark"):
        snapshot_files(entries, TIMELINE)
    stale_log = _files("aaa-0_0-1-1_20260303000000000.parquet",
                       ".aaa-0_20260301000000000.log.1_0-1-1")
    assert snapshot_files(stale_log, TIMELINE) == ["aaa-0_0-1-1_20260303000000000.parquet"]


def to_ms_utc(text: str) -> int:
    from datetime import datetime

    return to_ms(datetime.fromisoformat(text))


@pytest.mark.integration
@pytest.mark.slow
def test_lake_read_equals_the_oracle(world: World) -> None:
    reader = LakeReader(world.settings)
    try:
        for name in ("transformer_daily", "load_curve", "quality_scorecard"):
            ds = DATASETS[name]
            start, end = to_ms_utc("2026-03-01T00:00"), to_ms_utc("2026-03-04T00:00")
            got = reader.read(ds, start, end)
            assert got
            same_rows(ds, got, world.rows_in(ds, start, end))
        ds = DATASETS["load_curve"]
        one = reader.read(ds, to_ms_utc("2026-03-02T00:00"), to_ms_utc("2026-03-02T01:00"),
                          {"entity_type": {"feeder"}, "entity_id": {"F1"}})
        want = [r for r in world.rows(ds.table.name) if r["entity_id"] == "F1"
                and r["entity_type"] == "feeder"
                and to_ms_utc("2026-03-02T00:00") <= r["window_start"]
                < to_ms_utc("2026-03-02T01:00")]
        assert len(want) == 4
        same_rows(ds, one, want)
    finally:
        reader.close()
