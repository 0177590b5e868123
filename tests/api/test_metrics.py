"""The API's Prometheus endpoint: request series by route template, answer-cache and
source counters, scrape-time gauges that never hang a scrape, and access control."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api import metrics
from api.alarm_store import AlarmEvent, AlarmStore
from api.app import create_app
from api.routes.ops import TableFreshness
from api.service import metrics_dir
from infra.kafka_lag import TopicLag
from infra.settings import GridLakeSettings
from tests.api.conftest import Users, api_settings


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of series ``name{labels}`` in a scrape (None when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def test_requests_are_counted_by_route_template(client: TestClient, users: Users) -> None:
    def count(text: str, route: str, status: str, method: str = "GET") -> float:
        return sample(text, "gridlake_api_requests_total", method=method, route=route,
                      status=status) or 0.0

    h = users.headers("viewer")
    before = client.get("/metrics").text
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/alarms/12345", headers=h).status_code == 404
    assert client.get("/api/v1/alarms/67890", headers=h).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text
    assert count(after, "/api/v1/health", "200") == count(before, "/api/v1/health", "200") + 1
    # one series per template, not per id
    tpl = "/api/v1/alarms/{alarm_id}"
    assert count(after, tpl, "404") == count(before, tpl, "404") + 2
    assert "/api/v1/alarms/12345" not in after
    assert count(after, "unmatched", "404") == count(before, "unmatched", "404") + 1
    assert (sample(after, "gridlake_api_request_duration_seconds_count", method="GET",
                   route="/api/v1/health") or 0) >= 1
    # the scrape itself is not counted
    assert count(after, "/metrics", "200") == 0


def test_open_alarms_gauge(client: TestClient) -> None:
    store: AlarmStore = client.app.state.alarms  # type: ignore[attr-defined]
    for entity, severity in (("TX-1", "major"), ("TX-2", "major"), ("B-1", "critical")):
        store.record(AlarmEvent("threshold", "transformer_overload", "transformer", entity,
                                "R1", severity, True, {}))
    text = client.get("/metrics").text
    assert sample(text, "gridlake_alarms_open", source="threshold", severity="major") == 2
    assert sample(text, "gridlake_alarms_open", source="threshold", severity="critical") == 1
    # nothing listens on this test's Redis, Kafka or HDFS ports: the scrape still answers,
    # and says which parts it could compute
    assert sample(text, "gridlake_metrics_refresh_timestamp_seconds", part="alarms")
    assert sample(text, "gridlake_metrics_refresh_timestamp_seconds", part="kafka") is None


def test_answer_headers_count_cache_and_source() -> None:
    def counted(name: str, label: str) -> float:
        counter = metrics.CACHE if name == "cache" else metrics.READS
        return float(counter.labels(label)._value.get())

    hit, lake, serving = counted("cache", "hit"), counted("reads", "lake"), \
        counted("reads", "serving")
    metrics._answer_headers({}, {"headers": [(b"x-cache", b"hit"),
                                             (b"x-gridlake-source", b"lake+serving")]}, "/x")
    metrics._answer_headers({}, {"headers": [(b"X-Cache", b"weird")]}, "/x")
    assert counted("cache", "hit") == hit + 1
    assert counted("reads", "lake") == lake + 1 and counted("reads", "serving") == serving + 1


@dataclass
class _Cov:
    rows: int | None
    last_ms: int | None


class _Serving:
    async def coverage(self, table: Any, max_age_s: float) -> _Cov:
        return _Cov(10, 1_772_000_000_000)


def test_scrape_gauges_values_and_a_hanging_source(settings: GridLakeSettings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = api_settings(settings, tmp_path, metrics_timeout_s=0.5, metrics_cache_s=0.0)
    alarms = SimpleNamespace(open_counts=lambda: {("anomaly", "major"): 3})
    context = SimpleNamespace(settings=cfg, serving=_Serving())
    done = datetime(2026, 3, 1, tzinfo=UTC)
    monkeypatch.setattr(metrics, "_lake_freshness", lambda c: [
        TableFreshness(table="dwd_x", layer="dwd", last_commit=done, age_s=None, state="ok")])
    monkeypatch.setattr(metrics, "consumer_lag", lambda s, g, topics, t: [
        TopicLag(topic=topics[0], exists=True, lag=42), TopicLag(topic="gone", exists=False)])
    gauges = metrics.ScrapeGauges(context, alarms)

    def values() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in gauges.collect() for s in f.samples}

    asyncio.run(gauges.refresh())
    got = values()
    assert got[("gridlake_alarms_open", (("severity", "major"), ("source", "anomaly")))] == 3
    assert got[("gridlake_lake_last_commit_timestamp_seconds",
                (("layer", "dwd"), ("table", "dwd_x")))] == done.timestamp()
    assert got[("gridlake_serving_newest_timestamp_seconds",
                (("dataset", "transformer_daily"),))] == 1_772_000_000
    lags = {k: v for k, v in got.items() if k[0] == "gridlake_kafka_consumer_lag"}
    assert list(lags.values()) == [42]

    # Kafka hangs: the scrape waits at most metrics_timeout_s and keeps the last values
    def hang(*args: Any) -> list[TopicLag]:
        time.sleep(2)
        return []

    monkeypatch.setattr(metrics, "consumer_lag", hang)

    async def scrape() -> float:
        t0 = time.monotonic()
        await gauges.refresh()
        return time.monotonic() - t0

    assert asyncio.run(scrape()) < 1.5
    now = values()
    kafka_stamp = ("gridlake_metrics_refresh_timestamp_seconds", (("part", "kafka"),))
    assert now[kafka_stamp] == got[kafka_stamp]  # not refreshed: its last values stay
    assert {k: v for k, v in now.items() if k[0] == "gridlake_kafka_consumer_lag"} == lags
    alarms_stamp = ("gridlake_metrics_refresh_timestamp_seconds", (("part", "alarms"),))
    assert now[alarms_stamp] > got[alarms_stamp]  # the other parts were


def test_metrics_access(settings: GridLakeSettings, tmp_path: Path) -> None:
    closed = api_settings(settings, tmp_path / "a", metrics_public=False)
    with TestClient(create_app(closed)) as c:
        assert c.get("/metrics").status_code == 404  # no scraper token configured
    token = "scrape-token-0123456789"
    guarded = api_settings(settings, tmp_path / "b", metrics_public=False,
                           metrics_token=SecretStr(token))
    with TestClient(create_app(guarded)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "gridlake_api_requests_total" in r.text
        # not part of the API's documented surface
        assert "/metrics" not in c.get("/openapi.json").json()["paths"]


def test_metrics_dir_is_emptied_for_each_server_start(settings: GridLakeSettings,
                                                      tmp_path: Path) -> None:
    cfg = settings.model_copy(update={"home": tmp_path})
    first = metrics_dir(cfg)
    (first / "counter_123.db").write_bytes(b"old run")
    again = metrics_dir(cfg)
    assert again == first and list(again.iterdir()) == []


def test_dashboard_uses_documented_series(client: TestClient) -> None:
    repo = Path(__file__).resolve().parents[2]
    dashboard = json.loads((repo / "docs" / "grafana" / "gridlake.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"]
            for m in re.findall(r"gridlake_[a-z_]+", t["expr"])}
    documented = set(re.findall(r"`(gridlake_[a-z_]+)`",
                                (repo / "docs" / "operations.md").read_text()))
    base = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
    assert base <= documented, base - documented
    # every API series the docs name is declared by the API's /metrics
    text = client.get("/metrics").text
    declared = set(re.findall(r"^# TYPE (gridlake_api_[a-z_]+?)(?:_total)? ", text, re.M))
    api_docs = {re.sub(r"_total$", "", m) for m in documented if m.startswith("gridlake_api_")}
    assert api_docs <= declared, api_docs - declared
