"""The real-time feed over a real HTTP server: new values and alarms, region by region."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from api.datasets import DATASETS
from infra.serving_store import ServingWriter
from lakehouse.contracts.serving import row_member
from tests.api.ads_data import UPDATED_MS, World, ms
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, api_settings, served

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY_MS = ms("2026-03-02T00:00:00Z")


class Listener:
    """Reads a feed in a thread; events land in a queue."""

    def __init__(self, url: str, token: str, params: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.status: int | None = None
        self.history: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, token, params),
                                        daemon=True)
        self._thread.start()

    def _run(self, url: str, token: str, params: dict[str, str]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream("GET", f"{url}/api/v1/feed", params=params, headers=headers,
                              timeout=httpx.Timeout(5, read=None)) as r:
                self.status = r.status_code
                event = ""
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        self.events.put((event, json.loads(line.split(":", 1)[1])))
        except httpx.HTTPError:
            if not self._stop.is_set():  # the server going away at the end is expected
                raise

    def until(self, kind: str, match: Any, timeout: float = 10) -> dict[str, Any]:
        """The first event so far (or to come) of ``kind`` whose data satisfies ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            for event, data in self.history:
                if event == kind and match(data):
                    return data
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} event matching within {timeout} s: {self.history}"
            try:
                self.history.append(self.events.get(timeout=left))
            except queue.Empty:
                continue

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event received so far."""
        while not self.events.empty():
            self.history.append(self.events.get_nowait())
        return list(self.history)

    def close(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def api_url(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cfg = api_settings(world.settings, tmp_path_factory.mktemp("api-feed"))
    with served(create_app(cfg)) as url:
        yield url


def _token(url: str, username: str, password: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"username": username,
                                                      "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_feed_sends_new_values_and_alarms_in_scope(api_url: str, world: World) -> None:
    admin = _token(api_url, "admin", ADMIN_PASSWORD)
    r = httpx.post(f"{api_url}/api/v1/users", headers={"Authorization": f"Bearer {admin}"},
                   json={"username": "feed-r1", "password": PASSWORD, "role": "viewer",
                         "regions": ["R1"]})
    assert r.status_code in (201, 409)
    viewer = _token(api_url, "feed-r1", PASSWORD)
    assert httpx.get(f"{api_url}/api/v1/feed").status_code == 401

    ds = DATASETS["transformer_daily"]
    rows = {r["transformer_id"]: r for r in world.rows_in(ds, DAY_MS, DAY_MS + 86_400_000)}
    r1 = next(t for t in rows if world.region(t) == "R1")
    r2 = next(t for t in rows if world.region(t) == "R2")
    everyone = Listener(api_url, admin, {"datasets": "transformer_daily,voltage_daily"})
    scoped = Listener(api_url, viewer, {"datasets": "transformer_daily"})
    alarms_only = Listener(api_url, admin, {"alarms_only": "true"})
    client = redis.Redis.from_url(world.settings.redis.url, decode_responses=True)
    writer = ServingWriter(client, world.settings.redis.key_prefix)
    try:
        for lst in (everyone, scoped, alarms_only):
            lst.until("status", lambda d: d["serving"] == "up")
        assert everyone.status == scoped.status == 200
        changed = [{**rows[r1], "loading_rate_pct": 131.5, "overloaded": True,
                    "updated_ts": UPDATED_MS + 10},
                   {**rows[r2], "loading_rate_pct": 60.0, "updated_ts": UPDATED_MS + 10}]
        assert writer.upsert(ds.table, ds.time_field, changed) == 2

        got = everyone.until("value", lambda d: d["row"]["transformer_id"] == r2)
        assert got["dataset"] == "transformer_daily" and got["row"]["loading_rate_pct"] == 60.0
        alarm = everyone.until("alarm", lambda d: d["entity_id"] == r1)
        assert alarm == {**alarm, "alarm": "transformer_overload", "entity_id": r1,
                         "value": 131.5, "threshold": 100.0, "region_id": "R1"}
        seen = scoped.until("value", lambda d: d["row"]["transformer_id"] == r1)
        assert seen["row"]["loading_rate_pct"] == 131.5
        scoped.until("alarm", lambda d: d["entity_id"] == r1)
        only = alarms_only.until("alarm", lambda d: d["entity_id"] == r1)
        assert only["alarm"] == "transformer_overload"
        time.sleep(0.5)
        assert all(d["row"]["transformer_id"] != r2 for e, d in scoped.drain() if e == "value")
        assert all(e != "value" for e, _ in alarms_only.drain())
        # rows changed again are sent again; unchanged ones are not
        assert writer.upsert(ds.table, ds.time_field,
                             [{**changed[0], "loading_rate_pct": 90.0, "overloaded": False,
                               "updated_ts": UPDATED_MS + 11}]) == 1
        again = everyone.until("value", lambda d: d["row"]["loading_rate_pct"] == 90.0)
        assert again["row"]["transformer_id"] == r1
        values = [d for e, d in everyone.drain() if e == "value"]
        assert len(values) == 3  # r1, r2, r1 again: nothing unchanged was re-sent
    finally:
        for lst in (everyone, scoped, alarms_only):
            lst.close()
        # put the rows back as they were (other tests compare them with the oracle): the
        # protocol keeps the newer versions written above, so remove them first
        originals = [{**rows[t], "updated_ts": UPDATED_MS} for t in (r1, r2)]
        writer.delete(ds.table, [row_member(ds.table, r) for r in originals], None)
        writer.upsert(ds.table, ds.time_field, originals)
        client.close()


def _health_row(asset: str, region: str, category: str, previous: str | None,
                worsened: bool) -> dict[str, Any]:
    return {"asset_type": "transformer", "asset_id": asset, "day": DAY_MS,
            "region_id": region, "substation_id": None, "score": 39.0, "category": category,
            "previous_category": previous, "worsened": worsened, "worst_factor": "dga_level",
            "evidence_pct": 80.0, "factors": "[]", "action": "Act now",
            "scoring_version": "health-v1", "updated_ts": UPDATED_MS + 20,
            "dt": "2026-03-02"}


def test_feed_alarms_when_a_health_category_worsens(api_url: str, world: World) -> None:
    admin = _token(api_url, "admin", ADMIN_PASSWORD)
    r = httpx.post(f"{api_url}/api/v1/users", headers={"Authorization": f"Bearer {admin}"},
                   json={"username": "feed-h-r1", "password": PASSWORD, "role": "viewer",
                         "regions": ["R1"]})
    assert r.status_code in (201, 409)
    viewer = _token(api_url, "feed-h-r1", PASSWORD)
    txs = {rec["region_id"]: d for d, rec in sorted(world.registry.items())
           if rec.get("device_type") == "transformer"}
    t1, t2 = txs["R1"], txs["R2"]
    ds = DATASETS["asset_health"]
    everyone = Listener(api_url, admin, {"datasets": "asset_health", "alarms_only": "true"})
    scoped = Listener(api_url, viewer, {"datasets": "asset_health", "alarms_only": "true"})
    client = redis.Redis.from_url(world.settings.redis.url, decode_responses=True)
    writer = ServingWriter(client, world.settings.redis.key_prefix)
    rows = [_health_row(t1, "R1", "critical", "good", True),
            _health_row(t2, "R2", "poor", "fair", True)]
    try:
        for lst in (everyone, scoped):
            lst.until("status", lambda d: d["serving"] == "up")
        assert writer.upsert(ds.table, ds.time_field, rows) == 2
        a1 = everyone.until("alarm", lambda d: d["entity_id"] == t1)
        assert a1 == {**a1, "alarm": "health_worsened", "dataset": "asset_health",
                      "entity_type": "transformer", "value": "critical", "threshold": "good"}
        everyone.until("alarm", lambda d: d["entity_id"] == t2)
        scoped.until("alarm", lambda d: d["entity_id"] == t1)
        # the same category again, not worse: a new value but no alarm
        assert writer.upsert(ds.table, ds.time_field, [
            {**rows[0], "previous_category": "critical", "worsened": False,
             "updated_ts": UPDATED_MS + 21}]) == 1
        time.sleep(1.0)
        alarms = [d for e, d in everyone.drain() if e == "alarm"]
        assert len(alarms) == 2
        assert all(d["entity_id"] != t2 for e, d in scoped.drain() if e == "alarm")
    finally:
        for lst in (everyone, scoped):
            lst.close()
        writer.delete(ds.table, [row_member(ds.table, r) for r in rows], None)
        client.close()
