import pytest

from api.datasets import DATASETS
from api.lake_reader import LakeReader, LakeReadError
from infra.lake import FileStatus, LakeNotFound, LakeUnavailable
from infra.settings import GridLakeSettings
from lakehouse.time import to_ms
from tests.api.ads_data import World, same_rows


def _files(*names: str) -> list[FileStatus]:
    return [FileStatus(n, False, 1, 0) for n in names]


# The timeline and snapshot rules themselves are infra.lake's (tests/infra/test_lake.py);
# here: what the reader makes of them.
TIMELINE = [
    "20260301000000000.commit.requested", "20260301000000000.inflight",
    "20260301000000000_20260301000001000.commit",
    "20260303000000000_20260303000002000.commit",
]


class FakeHdfs:
    """A table's timeline and one day partition, listed like WebHDFS would."""

    def __init__(self, timeline: list[str], day: list[str]) -> None:
        self.timeline, self.day = timeline, day

    def list_status(self, path: str) -> list[FileStatus]:
        if path.endswith("/.hoodie/timeline"):
            return _files(*self.timeline)
        if path.endswith("/2026-03-01"):
            return _files(*self.day)
        raise LakeNotFound(path)

    def read(self, path: str) -> bytes:
        raise AssertionError(f"nothing may be read: {path}")

    def close(self) -> None:
        pass


def _reader(settings: GridLakeSettings, fs: object) -> LakeReader:
    reader = LakeReader(settings)
    reader.fs.close()
    reader.fs = fs  # type: ignore[assignment]
    return reader


def test_a_table_that_needs_spark_is_a_read_error_not_a_wrong_answer(
    settings: GridLakeSettings,
) -> None:
    ds = DATASETS["load_curve"]
    day = (to_ms_utc("2026-03-01T00:00"), to_ms_utc("2026-03-02T00:00"))
    logs = FakeHdfs(TIMELINE, ["aaa-0_0-1-1_20260301000000000.parquet",
                               ".aaa-0_20260303000000000.log.1_0-1-1"])
    with pytest.raises(LakeReadError, match="Spark"):
        _reader(settings, logs).read(ds, *day)
    replaced = FakeHdfs([*TIMELINE, "20260304000000000_20260304000001000.replacecommit"], [])
    with pytest.raises(LakeReadError, match="replaced file groups"):
        _reader(settings, replaced).read(ds, *day)
    # no partition for the range: no rows; no table at all: no rows either
    assert _reader(settings, FakeHdfs(TIMELINE, [])).read(
        ds, to_ms_utc("2026-03-05T00:00"), to_ms_utc("2026-03-06T00:00")) == []

    class NoTable(FakeHdfs):
        def list_status(self, path: str) -> list[FileStatus]:
            raise LakeNotFound(path)

    assert _reader(settings, NoTable([], [])).read(ds, *day) == []

    class Down(FakeHdfs):
        def list_status(self, path: str) -> list[FileStatus]:
            raise LakeUnavailable("WebHDFS http://nn unreachable")

    with pytest.raises(LakeReadError, match="lake unavailable: WebHDFS"):
        _reader(settings, Down([], [])).read(ds, *day)


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
