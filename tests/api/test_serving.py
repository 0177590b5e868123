"""The serving copy: the Python writers' fidelity, Redis killed mid-test, the lake split."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.datasets import DATASETS
from api.models import decode_row
from infra.serving_store import ServingWriter
from lakehouse.contracts.serving import events_channel, index_key, serving_key_prefix
from tests.api.ads_data import World, ms, same_rows
from tests.api.conftest import PrivateRedis, Users, api_settings, with_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
SPLIT_MS = ms("2026-03-02T00:00:00Z")


def test_python_writer_stores_what_the_connector_stores(world: World) -> None:
    """Rows the gridlake-redis connector wrote, rewritten by the Python writer
    (infra.serving_store) under another prefix, give the same members, scores and decoded
    values."""
    client = redis.Redis.from_url(world.settings.redis.url, decode_responses=True)
    prefix = world.settings.redis.key_prefix
    other = prefix.rstrip(":") + "-copy:"
    try:
        for ds in DATASETS.values():
            if ds.name in ("equipment_anomaly", "asset_health"):  # batch jobs' tables
                continue
            members = client.zrange(index_key(prefix, ds.table), 0, 20, withscores=True)
            assert members, ds.name
            rows = []
            for m, _ in members:
                raw = client.hgetall(serving_key_prefix(prefix, ds.table) + m)
                row = decode_row(ds.table, raw)
                rows.append({k: ms(v) for k, v in row.items()})
            assert ServingWriter(client, other).upsert(ds.table, ds.time_field, rows) == len(
                rows), ds.name
            copied = client.zrange(index_key(other, ds.table), 0, -1, withscores=True)
            assert copied == members, ds.name
            for m, _ in members:
                a = client.hgetall(serving_key_prefix(prefix, ds.table) + m)
                b = client.hgetall(serving_key_prefix(other, ds.table) + m)
                assert a.keys() == b.keys(), (ds.name, m)
                assert decode_row(ds.table, a) == decode_row(ds.table, b), (ds.name, m)
    finally:
        for key in client.scan_iter(match=other + "*", count=1000):
            client.delete(key)
        client.close()


def _copy(src_url: str, dst_url: str, prefix: str) -> int:
    """Copy every key under ``prefix`` (DUMP/RESTORE: the connector's bytes), then announce
    each table's change as a writer does after a flush."""
    src, dst = redis.Redis.from_url(src_url), redis.Redis.from_url(dst_url)
    n = 0
    for key in src.scan_iter(match=prefix + "*", count=1000):
        if b":api:" in key:
            continue
        dump = src.dump(key)
        if dump is not None:
            dst.restore(key, 0, dump, replace=True)
            n += 1
    for ds in DATASETS.values():
        dst.publish(events_channel(prefix, ds.table), "1")
    src.close()
    dst.close()
    return n


def _drop_before(url: str, prefix: str, name: str, before_ms: int) -> int:
    """Remove a dataset's rows older than ``before_ms`` from a serving copy."""
    client = redis.Redis.from_url(url, decode_responses=True)
    ds = DATASETS[name]
    index = index_key(prefix, ds.table)
    old = client.zrangebyscore(index, 0, before_ms - 1)
    for m in old:
        client.delete(serving_key_prefix(prefix, ds.table) + m)
    if old:
        client.zrem(index, *old)
    client.close()
    return len(old)


def _rows(client: TestClient, h: dict[str, str], name: str) -> tuple[list[dict[str, Any]], str]:
    r = client.get(f"/api/v1/datasets/{name}", params={**RANGE, "limit": 10_000}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["rows"], r.headers["x-gridlake-source"]


def test_redis_killed_mid_test(world: World, private_redis: PrivateRedis,
                               tmp_path: Any) -> None:
    prefix = world.settings.redis.key_prefix
    assert _copy(world.settings.redis.url, private_redis.url, prefix) > 1000
    # the private serving copy starts a day later: older load-curve rows come from the lake
    assert _drop_before(private_redis.url, prefix, "load_curve", SPLIT_MS) > 0
    cfg = api_settings(with_redis(world.settings, private_redis.url), tmp_path / "home")
    names = ("transformer_daily", "load_curve", "quality_scorecard")
    want = {n: world.rows_in(DATASETS[n], ms(RANGE["start"]), ms(RANGE["end"]))
            for n in names}
    with TestClient(create_app(cfg)) as c:
        h = Users(c).admin
        rows, source = _rows(c, h, "transformer_daily")
        assert source == "serving"
        same_rows(DATASETS["transformer_daily"], rows, want["transformer_daily"], answered=True)
        rows, source = _rows(c, h, "load_curve")
        assert source == "lake+serving"
        same_rows(DATASETS["load_curve"], rows, want["load_curve"], answered=True)

        private_redis.kill()
        t0 = time.monotonic()
        for i in range(30):
            name = names[i % len(names)]
            rows, source = _rows(c, h, name)
            assert source == "lake", name
            same_rows(DATASETS[name], rows, want[name], answered=True)
        # 30 requests with Redis dead: the breaker keeps them from waiting on timeouts
        assert time.monotonic() - t0 < 30 * cfg.api.redis_timeout_s
        ready = c.get("/api/v1/ready", headers=h)  # an admin is told why
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("down")
        assert c.get("/api/v1/ready").json()["checks"]["redis"] == "unavailable"
        r = c.get("/api/v1/entities/transformer/TX-2/indicators", params=RANGE, headers=h)
        assert r.status_code == 200 and r.headers["x-gridlake-source"] == "lake"
        assert r.headers["x-cache"] == "bypass"
        # signing in and device reads do not need Redis at all
        assert c.get("/api/v1/devices", headers=Users(c).headers("viewer")).status_code == 200

        # Redis back, empty (no persistence): the lake still answers, nothing is missing
        private_redis.start()
        time.sleep(cfg.api.redis_retry_s + 0.1)
        rows, source = _rows(c, h, "transformer_daily")
        assert source == "lake"
        same_rows(DATASETS["transformer_daily"], rows, want["transformer_daily"], answered=True)
        # and once the serving copy is back, it serves again
        _copy(world.settings.redis.url, private_redis.url, prefix)
        deadline = time.monotonic() + 10
        while True:
            rows, source = _rows(c, h, "transformer_daily")
            if source == "serving" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert source == "serving"
        assert c.get("/api/v1/ready").json()["checks"]["redis"] == "ok"
