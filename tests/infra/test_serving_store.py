"""The serving copy's protocol: the shared test vector (the connector's JUnit test checks it
too), the ordering guard, batches and events, and the async reader, on a redis-server of the
test's own (skipped when not installed)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from infra.serving_store import (
    UPSERT_LUA,
    Coverage,
    ServingStore,
    ServingUnavailable,
    ServingWriter,
    connect,
    delete_call,
    score_arg,
    upsert_args,
    upsert_call,
)
from infra.settings import REPO_ROOT
from lakehouse.contracts.schema import Field, FieldType, TableContract
from lakehouse.contracts.serving import events_channel, index_key, serving_key_prefix
from lakehouse.contracts.tables import ADS_LOAD_DAILY
from ops.bench.isolation import free_port
from tests.api.conftest import PrivateRedis

VECTORS = (REPO_ROOT / "jobs/streaming/connectors/src/test/resources/io/gridlake/flink/redis"
           / "serving-vectors.json")
PREFIX = "t:"
DAY0 = 1_772_323_200_000  # 2026-03-01T00:00Z


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def _tables() -> dict[str, tuple[TableContract, str]]:
    """The vector's tables as contracts, with their score fields."""
    out = {}
    for name, t in _vectors()["tables"].items():
        fields = tuple(Field(c["name"], FieldType(c["type"])) for c in t["columns"])
        out[name] = (TableContract(name, t["layer"], fields, tuple(t["record_key"]),
                                   t["ordering_field"]), t["score_field"])
    return out


def _cases(kind: str) -> list[Any]:
    return [pytest.param(c, id=c["case"]) for c in _vectors()[kind]]


# ----------------------------------------------------------------------- the test vector
@pytest.mark.parametrize("case", _cases("upserts"))
def test_upserts_follow_the_shared_vector(case: dict[str, Any]) -> None:
    table, score = _tables()[case["table"]]
    keys, args = upsert_call(_vectors()["key_prefix"], table, score, case["row"])
    assert (keys, args) == (case["keys"], case["argv"])


@pytest.mark.parametrize("case", _cases("deletes"))
def test_deletes_follow_the_shared_vector(case: dict[str, Any]) -> None:
    table, _ = _tables()[case["table"]]
    keys, args = delete_call(_vectors()["key_prefix"], table, case["member"], case["version"])
    assert (keys, args) == (case["keys"], case["argv"])


def test_the_vector_covers_what_renders_differently() -> None:
    rendered = " ".join(" ".join(c["argv"]) for c in _vectors()["upserts"])
    for text in ("0.1", "1.0E7", "1.5E-4", "-0.0", "true", "false", "left|right", "9.9E-4"):
        assert f" {text} " in f" {rendered} ", text
    assert any(c["row"]["updated_ts"] is None for c in _vectors()["upserts"]
               if "updated_ts" in c["row"])
    assert score_arg(1704067200000.0) == "1704067200000" and score_arg(0.5) == "0.5"
    assert score_arg(2.0**53) == "9.007199254740992E15"  # beyond exact integers: Java's text


def test_upsert_arguments_carry_the_connector_layout() -> None:
    # (from tests/jobs/batch/test_serving_refresh.py, where the writer lived)
    ms1 = DAY0
    row = {"entity_type": "meter", "entity_id": "M-1", "day": ms1, "energy_import_kwh": 1e7,
           "points": 96, "updated_ts": ms1 + 5, "dt": "2026-03-01"}
    args = upsert_args(ADS_LOAD_DAILY, "day", row)
    assert args[:5] == [f"meter|M-1|{ms1}", str(ms1), "updated_ts", str(ms1 + 5), "7"]
    pairs = dict(zip(args[5:19:2], args[6:19:2], strict=True))
    assert pairs["energy_import_kwh"] == "1.0E7" and pairs["points"] == "96"
    assert set(args[19:]) == {"energy_export_kwh", "avg_load_kw", "peak_load_kw",
                              "valley_load_kw", "peak_valley_diff_kw",
                              "peak_valley_rate_pct", "load_factor_pct"}


# ------------------------------------------------------------------------------- Redis
@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test."""
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    r = PrivateRedis(free_port(), None, tmp_path)
    r.start()
    try:
        yield r
    finally:
        r.kill()


@pytest.fixture
def client(server: PrivateRedis) -> Iterator[redis.Redis]:
    """A writer's client of :func:`server`."""
    c = connect(server.url, retries=0)
    try:
        yield c
    finally:
        c.close()


@pytest.mark.parametrize("case", _cases("upserts"))
def test_each_vector_row_stores_its_hash_and_score(client: redis.Redis,
                                                   case: dict[str, Any]) -> None:
    keys, argv = case["keys"], case["argv"]
    assert client.eval(UPSERT_LUA, 2, *keys, *argv) == 1
    assert client.hgetall(keys[0]) == case["hash"]
    assert client.zscore(keys[1], argv[0]) == float(case["score"])
    # the writer gives the same copy
    client.flushdb()
    table, score = _tables()[case["table"]]
    assert ServingWriter(client, _vectors()["key_prefix"]).upsert(table, score,
                                                                   [case["row"]]) == 1
    assert client.hgetall(keys[0]) == case["hash"]
    assert client.zscore(keys[1], argv[0]) == float(case["score"])


def _row(entity: str, kwh: float | None, updated: int | None, day: int = DAY0,
         points: int | None = 96) -> dict[str, Any]:
    return {"entity_type": "meter", "entity_id": entity, "day": day,
            "energy_import_kwh": kwh, "points": points, "updated_ts": updated,
            "dt": "2026-03-01"}


def _hash(client: redis.Redis, entity: str, day: int = DAY0) -> dict[str, str]:
    return client.hgetall(f"{serving_key_prefix(PREFIX, ADS_LOAD_DAILY)}meter|{entity}|{day}")


def test_the_newer_version_of_a_key_wins_in_any_order(client: redis.Redis) -> None:
    w, t = ServingWriter(client, PREFIX), ADS_LOAD_DAILY
    assert w.upsert(t, "day", [_row("M-1", 1.0, 200)]) == 1
    assert w.upsert(t, "day", [_row("M-1", 9.0, 100)]) == 0  # older: refused
    assert _hash(client, "M-1")["energy_import_kwh"] == "1.0"
    assert w.upsert(t, "day", [_row("M-1", 2.0, 200)]) == 1  # a tie: the later write
    assert _hash(client, "M-1")["energy_import_kwh"] == "2.0"
    assert w.upsert(t, "day", [_row("M-1", 3.0, 300)]) == 1  # newer
    assert _hash(client, "M-1") == {
        "entity_type": "meter", "entity_id": "M-1", "day": str(DAY0),
        "energy_import_kwh": "3.0", "points": "96", "updated_ts": "300", "dt": "2026-03-01"}
    # 1000 > 300 as numbers, not as text ("1000" < "300")
    assert w.upsert(t, "day", [_row("M-1", 4.0, 1000)]) == 1
    assert w.upsert(t, "day", [_row("M-1", 5.0, 999)]) == 0
    # a row without an ordering value always applies (and stores none)
    assert w.upsert(t, "day", [_row("M-1", 6.0, None)]) == 1
    assert "updated_ts" not in _hash(client, "M-1")
    assert w.upsert(t, "day", [_row("M-1", 7.0, 1)]) == 1  # nothing to order it against


def test_null_columns_are_removed_and_the_index_follows(client: redis.Redis) -> None:
    w, t = ServingWriter(client, PREFIX), ADS_LOAD_DAILY
    w.upsert(t, "day", [_row("M-1", 2.5, 100)])
    w.upsert(t, "day", [_row("M-1", None, 200, points=None)])
    h = _hash(client, "M-1")
    assert "energy_import_kwh" not in h and "points" not in h and h["updated_ts"] == "200"
    w.upsert(t, "day", [_row("M-2", 1.0, 100, day=DAY0 + 86_400_000)])
    assert client.zrange(index_key(PREFIX, t), 0, -1, withscores=True) == [
        (f"meter|M-1|{DAY0}", float(DAY0)), (f"meter|M-2|{DAY0 + 86_400_000}", DAY0 + 8.64e7)]
    assert w.first_score(t) == DAY0
    assert w.members(t, DAY0, DAY0 + 86_400_000) == [f"meter|M-1|{DAY0}"]


def test_a_delete_removes_only_rows_computed_before_its_cutoff(client: redis.Redis) -> None:
    w, t = ServingWriter(client, PREFIX), ADS_LOAD_DAILY
    w.upsert(t, "day", [_row("M-1", 1.0, 100), _row("M-2", 1.0, 150), _row("M-3", 1.0, 200)])
    m1, m2, m3 = (f"meter|M-{i}|{DAY0}" for i in (1, 2, 3))
    # before 150: M-1 only (M-2 was computed at the cutoff, M-3 after); M-9 is absent
    assert w.delete(t, [m1, m2, m3, "meter|M-9|1"], 150) == 1
    assert not _hash(client, "M-1") and _hash(client, "M-2") and _hash(client, "M-3")
    assert client.zrange(index_key(PREFIX, t), 0, -1) == [m2, m3]
    assert w.delete(t, [m2, m3], None) == 2  # no cutoff: whatever they hold
    assert client.keys(PREFIX + "*") == []


def _subscribe(client: redis.Redis, channel: str) -> Any:
    ps = client.pubsub()
    ps.subscribe(channel)
    ps.get_message(timeout=1)  # the subscription confirmation
    return ps


def _events(ps: Any) -> list[str]:
    out = []
    while (m := ps.get_message(timeout=0.2)) is not None:
        if m["type"] == "message":
            out.append(m["data"])
    return out


def test_upserts_and_deletes_follow_the_connector_and_the_ordering(
    client: redis.Redis,
) -> None:
    # (from tests/jobs/batch/test_serving_refresh.py, where the writer lived)
    t, ms1 = ADS_LOAD_DAILY, DAY0
    prefix, index = serving_key_prefix(PREFIX, t), index_key(PREFIX, t)
    events = _subscribe(client, events_channel(PREFIX, t))
    w = ServingWriter(client, PREFIX)

    def load(entity: str, kwh: float | None, updated: int) -> dict[str, Any]:
        return _row(entity, kwh, updated) | {"day": ms1}

    assert w.first_score(t) is None
    assert w.upsert(t, "day", [load("M-1", 2.5, 100), load("M-2", 3.0, 100)]) == 2
    h = client.hgetall(f"{prefix}meter|M-1|{ms1}")
    assert h == {"entity_type": "meter", "entity_id": "M-1", "day": str(ms1),
                 "energy_import_kwh": "2.5", "points": "96", "updated_ts": "100",
                 "dt": "2026-03-01"}
    assert client.zrange(index, 0, -1, withscores=True) == [
        (f"meter|M-1|{ms1}", float(ms1)), (f"meter|M-2|{ms1}", float(ms1))]
    assert w.first_score(t) == ms1
    # a null column is removed (HDEL); an older version never replaces a newer one
    assert w.upsert(t, "day", [load("M-1", None, 200), load("M-2", 9.0, 50)]) == 1
    assert "energy_import_kwh" not in client.hgetall(f"{prefix}meter|M-1|{ms1}")
    assert client.hget(f"{prefix}meter|M-2|{ms1}", "energy_import_kwh") == "3.0"
    # deletes: only rows computed before the cutoff (an absent member removes nothing)
    assert w.delete(t, [f"meter|M-1|{ms1}", f"meter|M-2|{ms1}", "meter|M-9|1"], 150) == 1
    assert client.exists(f"{prefix}meter|M-1|{ms1}") == 1
    assert client.exists(f"{prefix}meter|M-2|{ms1}") == 0
    assert client.zrange(index, 0, -1) == [f"meter|M-1|{ms1}"]
    assert w.upsert(t, "day", []) == 0
    # one event per batch, in its transaction: the keys it sent (refused ones included)
    assert _events(events) == ["2", "2", "3"]
    events.close()


def test_a_batch_is_one_transaction_announced_once(client: redis.Redis) -> None:
    w, t = ServingWriter(client, PREFIX), ADS_LOAD_DAILY
    w.upsert(t, "day", [_row("M-1", 1.0, 500), _row("M-2", 1.0, 100)])
    events = client.pubsub()
    events.subscribe(events_channel(PREFIX, t))
    assert events.get_message(timeout=1)["type"] == "subscribe"  # type: ignore[index]
    written, removed = w.write(t, "day", [_row("M-1", 2.0, 400), _row("M-3", 2.0, 400)],
                               [f"meter|M-2|{DAY0}"], deletes_before=300)
    assert (written, removed) == (1, 1)  # M-1 is newer than the batch's version
    got = [m["data"] for m in iter(lambda: events.get_message(timeout=0.3), None)
           if m["type"] == "message"]
    assert got == ["3"]  # one event per batch: the keys it sent
    assert w.write(t, "day") == (0, 0)  # nothing to send: no transaction, no event
    assert events.get_message(timeout=0.3) is None
    events.close()


def test_scripts_the_server_lost_are_loaded_again(client: redis.Redis) -> None:
    w, t = ServingWriter(client, PREFIX), ADS_LOAD_DAILY
    assert w.upsert(t, "day", [_row("M-1", 1.0, 100)]) == 1
    client.script_flush()  # e.g. a restarted or failed-over server
    assert w.upsert(t, "day", [_row("M-1", 2.0, 200)]) == 1
    assert _hash(client, "M-1")["energy_import_kwh"] == "2.0"
    client.script_flush()
    assert w.delete(t, [f"meter|M-1|{DAY0}"], 300) == 1
    assert not _hash(client, "M-1")


# ------------------------------------------------------------------------------ reading
def test_the_reader_sees_what_the_writer_wrote(server: PrivateRedis,
                                               client: redis.Redis) -> None:
    t = ADS_LOAD_DAILY
    ServingWriter(client, PREFIX).upsert(t, "day", [
        _row("M-1", 1.0, 100), _row("M-2", None, 100, day=DAY0 + 86_400_000)])

    async def read() -> None:
        store = ServingStore(aioredis.from_url(server.url, decode_responses=True), PREFIX, 5.0)
        try:
            assert await store.coverage(t) == Coverage(2, DAY0, DAY0 + 86_400_000)
            assert await store.members(t, DAY0, DAY0 + 1) == [f"meter|M-1|{DAY0}"]
            rows = await store.hashes(t, [f"meter|M-2|{DAY0 + 86_400_000}", "meter|gone|1"])
            assert rows == [{"entity_type": "meter", "entity_id": "M-2",
                             "day": str(DAY0 + 86_400_000), "points": "96",
                             "updated_ts": "100", "dt": "2026-03-01"}]
            # coverage is cached until a change event says new rows landed
            ServingWriter(client, PREFIX).upsert(t, "day", [_row("M-3", 1.0, 1, day=0)])
            assert (await store.coverage(t)).rows == 2
            store.forget_coverage(t)
            assert await store.coverage(t) == Coverage(3, 0, DAY0 + 86_400_000)
            await store.cache_set("t:api:cache:x", "answer", 60)
            assert await store.cache_get("t:api:cache:x") == "answer"
        finally:
            await store.client.aclose()

    asyncio.run(read())


def test_a_dead_redis_opens_the_breaker(server: PrivateRedis) -> None:
    t = ADS_LOAD_DAILY

    async def read() -> None:
        client = aioredis.from_url(server.url, decode_responses=True,
                                   socket_connect_timeout=1, socket_timeout=1)
        store = ServingStore(client, PREFIX, retry_s=60.0)
        try:
            assert (await store.coverage(t)).rows == 0 and store.available
            server.kill()
            with pytest.raises(ServingUnavailable, match="unavailable"):
                await store.members(t, 0, 1)
            assert not store.available and store.last_error
            # while open, nothing waits on Redis: a cache miss, an error at once
            assert await store.cache_get("t:api:cache:x") is None
            with pytest.raises(ServingUnavailable):
                await store.coverage(t, max_age_s=0)
            server.start()
            await store.ping()  # the readiness probe closes the breaker
            assert store.available and (await store.coverage(t, max_age_s=0)).rows == 0
        finally:
            await client.aclose()

    asyncio.run(read())
