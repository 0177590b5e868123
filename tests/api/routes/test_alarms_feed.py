"""Alarms recorded from the serving copy's changes and announced on the feed.

A real HTTP server on a Redis of the test's own: rows written to the serving copy raise
alarms the recorder stores (auto-closed when a newer row clears them), and each lifecycle
change reaches the feed as ``alarm_changed``, only in the listener's regions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from api.datasets import DATASETS
from infra.serving_store import ServingWriter
from infra.settings import GridLakeSettings
from tests.api.ads_data import ms
from tests.api.conftest import (
    ADMIN_PASSWORD,
    PASSWORD,
    PrivateRedis,
    api_settings,
    served,
    with_redis,
)
from tests.api.routes.test_feed import Listener

DAY = ms("2026-03-02T00:00:00Z")
DS = DATASETS["quality_scorecard"]


def _row(region: str, score: float, updated: int) -> dict[str, Any]:
    return {"region_id": region, "day": DAY, "received": 100, "records": 100, "clean": 90,
            "quarantined": 10, "score_pct": score, "updated_ts": updated}


@pytest.fixture
def api(settings: GridLakeSettings, private_redis: PrivateRedis,
        tmp_path: Path) -> Iterator[tuple[str, ServingWriter]]:
    cfg = api_settings(with_redis(settings, private_redis.url), tmp_path / "home")
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    writer = ServingWriter(client, cfg.redis.key_prefix)
    with served(create_app(cfg)) as url:
        yield url, writer
    client.close()


def _token(url: str, username: str, password: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"username": username,
                                                      "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_alarms_are_recorded_closed_and_announced(api: tuple[str, ServingWriter]) -> None:
    url, writer = api
    admin = _token(url, "admin", ADMIN_PASSWORD)
    h = {"Authorization": f"Bearer {admin}"}
    assert httpx.post(f"{url}/api/v1/users", headers=h, json={
        "username": "op-r2", "password": PASSWORD, "role": "operator",
        "regions": ["R2"]}).status_code == 201
    everyone = Listener(url, admin, {"alarms_only": "true"})
    r2 = Listener(url, _token(url, "op-r2", PASSWORD), {"alarms_only": "true"})
    try:
        for lst in (everyone, r2):
            lst.until("status", lambda d: d.get("serving") == "up")
        writer.upsert(DS.table, DS.time_field, [_row("R1", 70.0, 1000)])
        opened = everyone.until("alarm_changed", lambda d: d["change"] == "opened")
        alarm = opened["alarm"]
        assert (opened["state"], alarm["kind"], alarm["source"], alarm["entity_id"],
                alarm["region_id"]) == ("open", "data_quality_low", "quality", "R1", "R1")
        everyone.until("alarm", lambda d: d["entity_id"] == "R1")  # the feed's own alarm
        listed = httpx.get(f"{url}/api/v1/alarms", headers=h).json()
        assert [a["id"] for a in listed["alarms"]] == [alarm["id"]]

        # the condition seen again: the same alarm, updated
        writer.upsert(DS.table, DS.time_field, [_row("R1", 60.0, 1001)])
        deadline = time.monotonic() + 10
        while (got := httpx.get(f"{url}/api/v1/alarms/{alarm['id']}", headers=h).json())[
                "occurrences"] < 2:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert got["state"] == "open" and got["detail"]["value"] == 60.0
        # cleared by a newer row: closed by the system
        writer.upsert(DS.table, DS.time_field, [_row("R1", 99.0, 1002)])
        closed = everyone.until("alarm_changed", lambda d: d["change"] == "closed")
        assert closed["alarm"]["id"] == alarm["id"]
        assert (closed["alarm"]["closed_by"], closed["alarm"]["close_reason"]) == (
            "system", "cleared")
        got = httpx.get(f"{url}/api/v1/alarms/{alarm['id']}", headers=h).json()
        assert got["state"] == "closed" and got["occurrences"] == 2

        # a person acknowledges an R2 alarm: both listeners hear it, R1's never reached R2
        writer.upsert(DS.table, DS.time_field, [_row("R2", 50.0, 1003)])
        second = everyone.until("alarm_changed", lambda d: d["alarm"]["region_id"] == "R2")
        sid = second["alarm"]["id"]
        r = httpx.post(f"{url}/api/v1/alarms/{sid}/acknowledge", headers=h,
                       json={"note": "looking"})
        assert r.status_code == 200, r.text
        ack = r2.until("alarm_changed", lambda d: d["change"] == "acknowledged")
        assert ack["alarm"]["id"] == sid and ack["alarm"]["acknowledged_by"] == "admin"
        everyone.until("alarm_changed", lambda d: d["change"] == "acknowledged")
        assert all(d["alarm"]["region_id"] == "R2"
                   for e, d in r2.drain() if e == "alarm_changed")
        total = httpx.get(f"{url}/api/v1/alarms", headers=h).json()["total"]
        assert total == 2  # one per condition occurrence, no duplicates
    finally:
        everyone.close()
        r2.close()
