"""Refresh of the serving copy after a backfill: planning, the refresh against a redis-server
of the test's own (skipped when not installed), failures and resume (no stack). The write
protocol itself is tested in tests/infra/test_serving_store.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from infra.serving_store import ServingWriter
from infra.settings import GridLakeSettings, RedisSettings
from jobs.batch import backfill, runner
from jobs.batch import serving_refresh as sv
from jobs.batch.backfill import BackfillRequest, Scope, TableResult, planned_serving
from jobs.batch.tracking import JobStore
from lakehouse.contracts.serving import index_key, serving_key_prefix
from lakehouse.contracts.tables import (
    ADS_LOAD_DAILY,
    ADS_METER_ENERGY_15MIN,
    ADS_QUALITY_SCORECARD,
    SERVING_SCORE,
)
from lakehouse.time import day_start_ms
from ops.bench.isolation import free_port
from tests.api.conftest import PrivateRedis

DAY = 86_400_000
D1 = date(2026, 3, 1)
MS1 = day_start_ms(D1)
PREFIX = "t:"


# ---------------------------------------------------------------------------- planning
def test_planned_serving_is_the_served_ads_tables_of_the_plan() -> None:
    request = BackfillRequest(D1, date(2026, 3, 4), "dws", Scope(device_types=("meter",)))
    targets = planned_serving(request)
    names = {o.table.name for o in backfill.planned_outputs(request)}
    assert {t.table.name for t in targets} == names & set(SERVING_SCORE)
    assert "ads_meter_energy_15min" in {t.table.name for t in targets}
    for t in targets:
        assert t.score_field == SERVING_SCORE[t.table.name]
        assert (t.start_ms, t.end_ms) == (MS1, MS1 + 3 * DAY)
        assert t.deletes and t.where == "TRUE"  # the whole range is recomputed


def test_a_partial_scope_refreshes_its_rows_and_deletes_nothing() -> None:
    targets = {t.table.name: t for t in planned_serving(
        BackfillRequest(D1, date(2026, 3, 2), "dws", Scope(feeder="F-1")))}
    assert not any(t.deletes for t in targets.values())
    assert "`entity_type` IN" in targets[ADS_LOAD_DAILY.name].where
    assert targets[ADS_QUALITY_SCORECARD.name].where == "FALSE"  # a region total: not the feeder's


def test_the_dry_run_names_each_range() -> None:
    t = sv.ServingTarget(ADS_LOAD_DAILY, "day", D1, date(2026, 3, 4))
    assert t.describe().startswith("ads_load_daily: `day` in 2026-03-01 … 2026-03-03 (UTC)")
    assert "remove keys" in t.describe()
    one = sv.ServingTarget(ADS_LOAD_DAILY, "day", D1, date(2026, 3, 2), deletes=False)
    assert "in 2026-03-01 (UTC)" in one.describe() and "no removals" in one.describe()


def test_the_window_never_reaches_before_the_copys_first_row() -> None:
    t = sv.ServingTarget(ADS_LOAD_DAILY, "day", D1, date(2026, 3, 4))
    assert sv.refresh_window(t, None) is None  # empty copy: the lake serves the table
    assert sv.refresh_window(t, MS1 - 30 * DAY) == (MS1, MS1 + 3 * DAY)
    assert sv.refresh_window(t, MS1 + DAY + 5.5) == (MS1 + DAY + 6, MS1 + 3 * DAY)
    assert sv.refresh_window(t, MS1 + 3 * DAY) is None  # the range is older than the copy
    assert sv.day_windows(D1, date(2026, 3, 4), (MS1 + DAY + 6, MS1 + 3 * DAY)) == [
        ("2026-03-02", MS1 + DAY + 6, MS1 + 2 * DAY),
        ("2026-03-03", MS1 + 2 * DAY, MS1 + 3 * DAY),
    ]


def test_batches_of_n() -> None:
    assert list(sv.batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(sv.batched([], 3)) == []


# ------------------------------------------------------------------------------- Redis
@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of a redis-server of this test."""
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(free_port(), None, tmp_path)
    server.start()
    c = redis.Redis(port=server.port, decode_responses=True)
    try:
        yield c
    finally:
        c.close()
        server.kill()


def _load(day_ms: int, entity: str, kwh: float | None, updated: int) -> dict[str, Any]:
    return {"entity_type": "meter", "entity_id": entity, "day": day_ms,
            "energy_import_kwh": kwh, "points": 96, "updated_ts": updated,
            "dt": datetime.fromtimestamp(day_ms / 1000, UTC).date().isoformat()}


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Rows the refresh reads "from the lake" (filtered and ordered as the Spark read)."""
    rows: list[dict[str, Any]] = []

    def read(spark: Any, settings: Any, target: sv.ServingTarget,
             window: tuple[int, int]) -> Iterator[dict[str, Any]]:
        sel = [r for r in rows if target.start.isoformat() <= r["dt"] < target.end.isoformat()
               and window[0] <= r[target.score_field] < window[1]]
        return iter(sorted(sel, key=lambda r: r["dt"]))

    monkeypatch.setattr(sv, "lake_rows", read)
    return rows


def _settings(client: redis.Redis) -> GridLakeSettings:
    port = client.connection_pool.connection_kwargs["port"]
    return GridLakeSettings(  # type: ignore[call-arg]
        _env_file=None, redis=RedisSettings(url=f"redis://127.0.0.1:{port}/0", key_prefix=PREFIX))


def _copy(client: redis.Redis, t: Any = ADS_LOAD_DAILY) -> dict[str, dict[str, str]]:
    prefix = serving_key_prefix(PREFIX, t)
    members = client.zrange(index_key(PREFIX, t), 0, -1)
    assert len(client.keys(prefix + "*")) == len(members) + 1, "a hash without index entry"
    return {m: client.hgetall(prefix + m) for m in members}


def test_refresh_makes_the_range_equal_to_the_lake(
    client: redis.Redis, lake: list[dict[str, Any]],
) -> None:
    t, w = ADS_LOAD_DAILY, ServingWriter(client, PREFIX)
    # the copy before: the day before the range, stale rows in it, a row the stream wrote
    # after the backfill's snapshot (as_of 1000), a whole day the lake no longer has
    w.upsert(t, "day", [
        _load(MS1 - DAY, "M-1", 1.0, 10),
        _load(MS1, "M-1", 1.0, 10), _load(MS1, "M-2", 1.0, 10),
        _load(MS1 + DAY, "M-3", 1.0, 10), _load(MS1 + DAY, "M-4", 7.0, 2000),
        _load(MS1 + 2 * DAY, "M-1", 1.0, 10),
    ])
    lake += [_load(MS1, "M-1", 5.0, 1000), _load(MS1, "M-5", 5.0, 1000),
             _load(MS1 + DAY, "M-1", 6.0, 1000)]
    done: list[sv.ServingResult] = []
    target = sv.ServingTarget(t, "day", D1, D1 + timedelta(days=3))
    [res] = sv.refresh_serving(None, _settings(client), [target], 1000, on_result=done.append,
                               batch_rows=1)
    assert done == [res]
    assert (res.rows, res.kept, res.deleted) == (3, 0, 3)
    assert (res.from_ms, res.to_ms, res.skipped) == (MS1, MS1 + 3 * DAY, None)
    copy = _copy(client)
    assert {m: h["energy_import_kwh"] for m, h in copy.items()} == {
        f"meter|M-1|{MS1 - DAY}": "1.0",  # outside the range: untouched
        f"meter|M-1|{MS1}": "5.0", f"meter|M-5|{MS1}": "5.0", f"meter|M-1|{MS1 + DAY}": "6.0",
        f"meter|M-4|{MS1 + DAY}": "7.0",  # newer than the snapshot: the stream's, kept
    }
    # again (a resumed job): nothing changes
    [again] = sv.refresh_serving(None, _settings(client), [target], 1000)
    assert (again.rows, again.deleted) == (3, 0) and _copy(client) == copy


def test_refresh_respects_the_copys_window_and_a_partial_scope(
    client: redis.Redis, lake: list[dict[str, Any]],
) -> None:
    t, w = ADS_METER_ENERGY_15MIN, ServingWriter(client, PREFIX)
    q = 900_000

    def energy(start: int, device: str, kwh: float) -> dict[str, Any]:
        return {"device_id": device, "window_start": start, "window_end": start + q,
                "energy_kwh": kwh, "readings": 1, "updated_ts": 1000,
                "dt": datetime.fromtimestamp(start / 1000, UTC).date().isoformat()}

    first = MS1 + 40 * q  # the copy starts in the middle of the range's first day
    w.upsert(t, "window_start", [energy(first, "M-1", 1.0), energy(first + q, "M-9", 1.0)])
    lake += [energy(MS1 + i * q, "M-1", 2.0) for i in range(96)]
    target = sv.ServingTarget(t, "window_start", D1, D1 + timedelta(days=1), deletes=False)
    [res] = sv.refresh_serving(None, _settings(client), [target], 5000)
    assert (res.rows, res.deleted, res.from_ms) == (56, 0, first)  # 10:00 … 24:00
    copy = _copy(client, t)
    assert min(int(h["window_start"]) for h in copy.values()) == first
    assert len(copy) == 57 and copy[f"M-9|{first + q}"]["energy_kwh"] == "1.0"  # not deleted
    # an empty copy, and a range older than the copy, are left to the lake
    empty = sv.ServingTarget(ADS_LOAD_DAILY, "day", D1, D1 + timedelta(days=1))
    older = sv.ServingTarget(t, "window_start", D1 - timedelta(days=9), D1)
    got = sv.refresh_serving(None, _settings(client), [empty, older], 5000)
    assert [r.skipped for r in got] == [
        "serving copy empty (the lake serves the table)",
        "range ends before the copy's first row (2026-03-01T10:00:00Z)"]
    assert client.exists(index_key(PREFIX, ADS_LOAD_DAILY)) == 0


# ------------------------------------------------------------------- failure and resume
def test_redis_down_fails_the_refresh_clearly(settings: GridLakeSettings) -> None:
    target = sv.ServingTarget(ADS_LOAD_DAILY, "day", D1, D1 + timedelta(days=1))
    with pytest.raises(sv.ServingRefreshError) as err:
        sv.refresh_serving(None, settings, [target], 0, retries=0)
    text = str(err.value)
    assert f"at ads_load_daily: Redis at 127.0.0.1:{settings.redis.port}" in text
    assert "ConnectionError" in text and "resuming the job redoes only the refresh" in text


def _recent_request() -> BackfillRequest:
    today = datetime.now(UTC).date()
    return BackfillRequest(today - timedelta(days=3), today - timedelta(days=1), "ads")


def test_a_run_with_every_table_written_only_refreshes(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the tables were written already")

    calls: list[list[str]] = []

    def refresh(spark: Any, s: Any, targets: list[sv.ServingTarget], as_of_ms: int,
                on_result: Any) -> list[sv.ServingResult]:
        calls.append([t.table.name for t in targets])
        for t in targets:
            on_result(sv.ServingResult(t.table.name, rows=4, deleted=1))
        return []

    monkeypatch.setattr(backfill, "stream_margin_ms", lambda s: 0)
    monkeypatch.setattr(backfill, "register_views", never)
    monkeypatch.setattr(backfill, "_write_table", never)
    monkeypatch.setattr(sv, "refresh_serving", refresh)
    request = _recent_request()
    names = [o.table.name for o in backfill.planned_outputs(request)]
    seen: list[sv.ServingResult] = []
    assert backfill.run_backfill(settings, request, spark=object(), done=names,
                                 on_serving=seen.append) == []
    assert calls == [[t.table.name for t in planned_serving(request)]]
    assert [r.table for r in seen] == calls[0]


def test_a_serving_failure_fails_the_job_and_a_resume_redoes_the_refresh(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _recent_request()
    names = [o.table.name for o in backfill.planned_outputs(request)]
    served = [t.table.name for t in planned_serving(request)]
    attempts: list[tuple[str, ...]] = []

    def fake_run(s: Any, r: BackfillRequest, done: tuple[str, ...], on_table: Any,
                 on_serving: Any) -> list[TableResult]:
        attempts.append(done)
        for i, n in enumerate(n for n in names if n not in done):
            on_table(TableResult(n, rows=10), i + 1, len(names))
        if len(attempts) == 1:
            raise sv.ServingRefreshError("serving copy refresh failed at ads_load_daily: ...")
        for n in served:
            on_serving(sv.ServingResult(n, rows=7, deleted=2))
        return []

    monkeypatch.setattr(runner, "run_backfill", fake_run)
    store = JobStore(settings)
    job = store.create("backfill", runner.request_to_dict(request))
    job = runner.execute(store, job)
    assert job.state == "failed" and job.tables_done == names
    assert (job.error or "").startswith("ServingRefreshError: serving copy refresh failed")
    job = runner.execute(store, store.get(job.id))  # the resume
    assert attempts == [(), tuple(names)]
    assert job.state == "succeeded" and job.error is None
    by_table = {r["table"]: r for r in store.get(job.id).results}
    assert len(store.get(job.id).results) == len(names)
    assert all(by_table[n]["serving_rows"] == 7 and by_table[n]["serving_deleted"] == 2
               for n in served)
    assert all(by_table[n]["serving_rows"] is None for n in names if n not in served)
