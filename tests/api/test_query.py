"""The response cache: hits until new data lands, then the new value in the next answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.datasets import DATASETS
from infra.serving_store import ServingWriter, connect
from lakehouse.contracts.serving import row_member
from tests.api.ads_data import UPDATED_MS, World, ms
from tests.api.conftest import Users

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}


@pytest.fixture
def tx1_row(world: World) -> Iterator[dict[str, Any]]:
    """TX-1's daily row of 2026-03-02; put back as it was after the test."""
    ds = DATASETS["transformer_daily"]
    row = next(r for r in world.rows_in(ds, ms(DAY["start"]), ms(DAY["end"]))
               if r["transformer_id"] == "TX-1")
    original = {**row, "updated_ts": UPDATED_MS}
    yield dict(original)
    client = connect(world.settings.redis.url)
    writer = ServingWriter(client, world.settings.redis.key_prefix)
    # the test landed newer versions, which the protocol keeps over the original: remove them
    writer.delete(ds.table, [row_member(ds.table, original)], None)
    assert writer.upsert(ds.table, ds.time_field, [original]) == 1
    client.close()


def _land(world: World, row: dict[str, Any]) -> None:
    ds = DATASETS["transformer_daily"]
    client = connect(world.settings.redis.url)
    assert ServingWriter(client, world.settings.redis.key_prefix).upsert(
        ds.table, ds.time_field, [row]) == 1
    client.close()


def _value(live: TestClient, h: dict[str, str]) -> tuple[float, str]:
    r = live.get("/api/v1/datasets/transformer_daily", headers=h,
                 params={**DAY, "entity_id": "TX-1"})
    assert r.status_code == 200, r.text
    return r.json()["rows"][0]["loading_rate_pct"], r.headers["x-cache"]


def test_new_value_appears_in_the_next_response(live: TestClient, live_users: Users,
                                                world: World,
                                                tx1_row: dict[str, Any]) -> None:
    h = live_users.admin
    hub = live.app.state.ctx.hub  # type: ignore[attr-defined]
    before, _ = _value(live, h)
    assert before == tx1_row["loading_rate_pct"]
    assert _value(live, h) == (before, "hit")
    # a cached answer is still only for valid tokens
    r = live.get("/api/v1/datasets/transformer_daily", headers={"Authorization": "Bearer x"},
                 params={**DAY, "entity_id": "TX-1"})
    assert r.status_code == 401

    generation = hub.generations["transformer_daily"]
    _land(world, {**tx1_row, "loading_rate_pct": 99.5, "updated_ts": UPDATED_MS + 1})
    deadline = time.monotonic() + 5
    while hub.generations["transformer_daily"] == generation:  # the change event arrived
        assert time.monotonic() < deadline, "no change event within 5 s"
        time.sleep(0.01)
    assert _value(live, h) == (99.5, "miss")
    assert _value(live, h) == (99.5, "hit")

    # end to end, without looking inside: the next value is served within a moment
    _land(world, {**tx1_row, "loading_rate_pct": 101.25, "updated_ts": UPDATED_MS + 2})
    t0 = time.monotonic()
    while _value(live, h)[0] != 101.25:
        assert time.monotonic() - t0 < 2, "new value not served within 2 s"
        time.sleep(0.005)
    # other datasets' cached answers are not invalidated by this change
    other = {**DAY, "entity_type": "feeder"}
    live.get("/api/v1/datasets/load_daily", params=other, headers=h)
    _land(world, {**tx1_row, "loading_rate_pct": 102.0, "updated_ts": UPDATED_MS + 3})
    time.sleep(0.3)
    r = live.get("/api/v1/datasets/load_daily", params=other, headers=h)
    assert r.headers["x-cache"] == "hit"


def test_cache_key_includes_the_region_scope(live: TestClient, live_users: Users) -> None:
    params = {**DAY, "sort": "transformer_id"}
    everyone = live.get("/api/v1/datasets/transformer_daily", params=params,
                        headers=live_users.admin)
    r1 = live.get("/api/v1/datasets/transformer_daily", params=params,
                  headers=live_users.headers("viewer", ["R1"]))
    assert r1.headers["x-cache"] == "miss"  # not the admin's cached answer
    assert r1.json()["total"] < everyone.json()["total"]
