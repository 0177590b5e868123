"""The alarms a scoring run publishes go through the serving copy's protocol: an older run
never overwrites nor deletes a newer alarm (a redis-server of the test's own, no stack)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

from infra.serving_store import ServingWriter
from infra.settings import GridLakeSettings, RedisSettings
from lakehouse.contracts.serving import events_channel, index_key, serving_key_prefix
from lakehouse.contracts.tables import ADS_EQUIPMENT_ANOMALY, ML_SERVING_SCORE
from ml.lake_scoring import publish_alarms
from ops.bench.isolation import free_port
from tests.api.conftest import PrivateRedis

T = ADS_EQUIPMENT_ANOMALY
START = 1_772_323_200_000  # 2026-03-01T00:00Z
END = START + 86_400_000
OLD_RUN, RUN, NEW_RUN = START + 10 * 86_400_000, START + 11 * 86_400_000, START + 12 * 86_400_000


@pytest.fixture
def alarms_settings(settings: GridLakeSettings, tmp_path: Path) -> Iterator[GridLakeSettings]:
    """``settings`` with a redis-server of this test."""
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(free_port(), None, tmp_path)
    server.start()
    try:
        yield settings.model_copy(update={"redis": RedisSettings(
            url=server.url, key_prefix="t:", managed=False)})
    finally:
        server.kill()


def _alarm(device: str, start: int, peak: float, run_ms: int,
           region: str | None = "R1") -> dict[str, Any]:
    return {"device_id": device, "source": "ess_bms", "start_ts": start,
            "end_ts": start + 600_000, "steps": 2, "peak_score": peak, "mean_score": peak / 2,
            "model_id": f"m-{run_ms}", "threshold": 0.5, "ongoing": False,
            "region_id": region, "substation_id": None, "updated_ts": run_ms,
            "dt": "2026-03-01"}


def _frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=T.field_names)


def test_an_older_alarm_never_overwrites_a_newer_one(alarms_settings: GridLakeSettings) -> None:
    s = alarms_settings
    client = redis.Redis.from_url(s.redis.url, decode_responses=True)
    prefix = serving_key_prefix(s.redis.key_prefix, T)
    index = index_key(s.redis.key_prefix, T)
    events = client.pubsub()
    events.subscribe(events_channel(s.redis.key_prefix, T))
    events.get_message(timeout=1)
    k1, k2 = START + 3_600_000, START + 7_200_000
    try:
        # a newer run published ESS-01's alarm (peak 0.9)
        assert publish_alarms(s, _frame(_alarm("ESS-01", k1, 0.9, NEW_RUN)), "ess_bms",
                              ["ESS-01"], START, END) == (1, 0)
        # an older run finishing later: its version of that alarm is refused, its new alarm
        # lands, and the newer alarm (not in its output) is not deleted as stale
        assert publish_alarms(s, _frame(_alarm("ESS-01", k1, 0.6, RUN, region=None),
                                        _alarm("ESS-01", k2, 0.7, RUN)), "ess_bms",
                              ["ESS-01"], START, END) == (1, 0)
        h = client.hgetall(f"{prefix}ESS-01|ess_bms|{k1}")
        assert h["peak_score"] == "0.9" and h["updated_ts"] == str(NEW_RUN)
        assert h["region_id"] == "R1"  # the older row's null did not remove it either
        assert client.hget(f"{prefix}ESS-01|ess_bms|{k2}", "peak_score") == "0.7"
        assert client.zscore(index, f"ESS-01|ess_bms|{k2}") == k2
        got = [m["data"] for m in iter(lambda: events.get_message(timeout=0.3), None)
               if m["type"] == "message"]
        assert got == ["1", "2"]  # one change event per publish
    finally:
        events.close()
        client.close()


def test_stale_alarms_are_removed_only_when_computed_before_the_run(
    alarms_settings: GridLakeSettings,
) -> None:
    s = alarms_settings
    client = redis.Redis.from_url(s.redis.url, decode_responses=True)
    writer = ServingWriter(client, s.redis.key_prefix)
    score = ML_SERVING_SCORE[T.name]
    k1, k2, k3 = (START + h * 3_600_000 for h in (1, 2, 3))
    writer.upsert(T, score, [
        _alarm("ESS-01", k1, 0.8, OLD_RUN),  # an older run's: stale now
        _alarm("ESS-01", k2, 0.8, NEW_RUN),  # a newer run's: kept
        _alarm("ESS-02", k3, 0.8, OLD_RUN),  # another device: out of scope
    ])
    prefix = serving_key_prefix(s.redis.key_prefix, T)
    try:
        assert publish_alarms(s, _frame(), "ess_bms", ["ESS-01"], START, END,
                              stamp_ms=RUN) == (0, 1)
        assert not client.exists(f"{prefix}ESS-01|ess_bms|{k1}")
        assert client.exists(f"{prefix}ESS-01|ess_bms|{k2}")
        assert client.exists(f"{prefix}ESS-02|ess_bms|{k3}")
        assert client.zrange(index_key(s.redis.key_prefix, T), 0, -1) == [
            f"ESS-01|ess_bms|{k2}", f"ESS-02|ess_bms|{k3}"]
        # the run's stamp defaults to its rows' updated_ts
        assert publish_alarms(s, _frame(_alarm("ESS-02", k1, 0.5, NEW_RUN + 1)), "ess_bms",
                              ["ESS-01", "ESS-02"], START, END) == (1, 2)
        assert client.zrange(index_key(s.redis.key_prefix, T), 0, -1) == [
            f"ESS-02|ess_bms|{k1}"]
    finally:
        client.close()
