"""Asset health endpoints and feed alarms without the stack: the lake reader answers from
rows made here (Redis is down, so every read goes to the lake), the catalog from registry
records applied here. Checks ranking order, region scoping and one asset's history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.datasets import DATASETS, Dataset
from api.routes.feed import alarms
from api.routes.health import latest_per_asset, ranked
from infra.settings import AlarmSettings
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.time import DAY_MS, from_ms, to_ms
from tests.api.conftest import Users

DAY0 = 1_772_323_200_000  # 2026-03-01
DS = DATASETS["asset_health"]
RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"}


def _factor(name: str, severity: str | None, reason: str) -> dict[str, Any]:
    return {"name": name, "status": "ok" if severity else "no_data", "severity": severity,
            "value": None, "unit": "", "reason": reason, "detail": {}}


def _row(atype: str, aid: str, region: str, day: int, score: float | None, category: str,
         *factors: dict[str, Any], previous: str | None = None) -> dict[str, Any]:
    return {"asset_type": atype, "asset_id": aid, "day": from_ms(DAY0 + day * DAY_MS),
            "region_id": region, "substation_id": f"SUB-{region}", "score": score,
            "category": category, "previous_category": previous,
            "worsened": previous == "good" and category in ("poor", "critical"),
            "worst_factor": factors[0]["name"] if factors and factors[0]["severity"] else None,
            "evidence_pct": 80.0, "factors": json.dumps(list(factors)), "action": "act",
            "scoring_version": "health-v1", "updated_ts": from_ms(DAY0), "dt": "2026-03-01"}


ROWS = [
    _row("transformer", "TX-1", "R1", 0, 100.0, "good"),
    _row("transformer", "TX-1", "R1", 1, 39.0, "critical",
         _factor("dga_level", "critical", "condition 4 for c2h4"), previous="good"),
    _row("transformer", "TX-2", "R2", 1, 59.0, "poor", _factor("overload", "poor", "1 h")),
    _row("transformer", "TX-3", "R1", 1, 100.0, "good"),
    _row("transformer", "TX-4", "R1", 1, None, "unknown",
         _factor("dga_level", None, "no DGA reading in 30 days")),
    _row("ess", "ESS-1", "R1", 1, 70.0, "fair", _factor("cell_gap", "fair", "95 mV")),
]


def _register(client: TestClient, device: str, dtype: str, region: str) -> None:
    record = {
        "device_id": device, "ts": DAY0, "version": 1, "change_type": "create",
        "device_type": dtype, "model": "M", "manufacturer": "M", "serial_number": "1",
        "status": "in_service", "install_date": "2015-01-01", "region_id": region,
        "latitude": 31.0, "longitude": 121.0, "parent_id": f"SUB-{region}"}
    assert DEVICE_REGISTRY.validate(record) is None
    assert client.app.state.ctx.catalog.apply(record)  # type: ignore[attr-defined]


@pytest.fixture
def health_client(client: TestClient) -> TestClient:
    def read(ds: Dataset, start_ms: int, end_ms: int,
             equals: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
        assert ds.name == "asset_health"
        return [dict(r) for r in ROWS if start_ms <= to_ms(r["day"]) < end_ms
                and all(r[k] in v for k, v in (equals or {}).items())]

    client.app.state.ctx.queries.lake.read = read  # type: ignore[attr-defined]
    for dev, dtype, region in (("TX-1", "transformer", "R1"), ("TX-2", "transformer", "R2"),
                               ("TX-3", "transformer", "R1"), ("TX-4", "transformer", "R1"),
                               ("ESS-1", "ess", "R1")):
        _register(client, dev, dtype, region)
    return client


def test_ranking_worst_first_with_findings(health_client: TestClient, users: Users) -> None:
    r = health_client.get("/api/v1/asset-health/ranking", headers=users.admin, params=RANGE)
    assert r.status_code == 200, r.text
    body = r.json()
    # newest row per asset; critical, poor, fair, good, then no verdict
    assert [x["asset_id"] for x in body["rows"]] == ["TX-1", "TX-2", "ESS-1", "TX-3", "TX-4"]
    assert [x["rank"] for x in body["rows"]] == [1, 2, 3, 4, 5] and body["total"] == 5
    top = body["rows"][0]
    assert top["category"] == "critical" and top["worsened"] is True
    assert top["findings"][0]["reason"] == "condition 4 for c2h4"
    assert body["sources"] == ["lake"]
    only = health_client.get("/api/v1/asset-health/ranking", headers=users.admin,
                             params={**RANGE, "asset_type": "ess"}).json()
    assert [x["asset_id"] for x in only["rows"]] == ["ESS-1"]
    sub = health_client.get("/api/v1/asset-health/ranking", headers=users.admin,
                            params={**RANGE, "substation_id": "SUB-R2"}).json()
    assert [x["asset_id"] for x in sub["rows"]] == ["TX-2"]
    page = health_client.get("/api/v1/asset-health/ranking", headers=users.admin,
                             params={**RANGE, "limit": 2, "offset": 1}).json()
    assert [(x["rank"], x["asset_id"]) for x in page["rows"]] == [(2, "TX-2"), (3, "ESS-1")]
    assert page["total"] == 5
    crit = health_client.get("/api/v1/asset-health/ranking", headers=users.admin,
                             params={**RANGE, "category": "unknown"}).json()
    assert [x["asset_id"] for x in crit["rows"]] == ["TX-4"]
    # the first day only: TX-1 was still good then
    day1 = health_client.get("/api/v1/asset-health/ranking", headers=users.admin, params={
        "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}).json()
    assert [(x["asset_id"], x["category"]) for x in day1["rows"]] == [("TX-1", "good")]


def test_ranking_is_scoped_to_the_callers_regions(health_client: TestClient,
                                                  users: Users) -> None:
    r1 = users.headers("viewer", ["R1"])
    body = health_client.get("/api/v1/asset-health/ranking", headers=r1, params=RANGE).json()
    assert "TX-2" not in {x["asset_id"] for x in body["rows"]}
    assert {x["region_id"] for x in body["rows"]} == {"R1"}
    r = health_client.get("/api/v1/asset-health/ranking", headers=r1,
                          params={**RANGE, "region_id": "R2"})
    assert r.status_code == 403
    r2 = users.headers("viewer", ["R2"])
    body = health_client.get("/api/v1/asset-health/ranking", headers=r2, params=RANGE).json()
    assert [x["asset_id"] for x in body["rows"]] == ["TX-2"]


def test_history_with_factors_and_scope(health_client: TestClient, users: Users) -> None:
    r = health_client.get("/api/v1/asset-health/transformer/TX-1", headers=users.admin,
                          params=RANGE)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [x["category"] for x in rows] == ["good", "critical"]  # oldest first
    assert rows[1]["factors"][0]["name"] == "dga_level"  # parsed, not a JSON string
    assert health_client.get("/api/v1/asset-health/transformer/TX-1",
                             headers=users.headers("viewer", ["R2"]),
                             params=RANGE).status_code == 403
    assert health_client.get("/api/v1/asset-health/transformer/TX-9",
                             headers=users.headers("viewer", ["R1"]),
                             params=RANGE).status_code == 404
    assert health_client.get("/api/v1/asset-health/meter/M-1", headers=users.admin,
                             params=RANGE).status_code == 422
    assert health_client.get("/api/v1/asset-health/transformer/TX-1",
                             params=RANGE).status_code == 401


def test_feed_alarm_only_when_the_category_worsens() -> None:
    th = AlarmSettings()
    worse = {**ROWS[1], "day": DAY0 + DAY_MS}
    got = alarms(DS, worse, th)
    assert len(got) == 1 and got[0]["alarm"] == "health_worsened"
    assert (got[0]["value"], got[0]["threshold"]) == ("critical", "good")
    assert (got[0]["entity_type"], got[0]["entity_id"]) == ("transformer", "TX-1")
    assert alarms(DS, ROWS[2], th) == []  # poor, but not worse than before


def test_helpers_order_and_latest() -> None:
    latest = latest_per_asset(ROWS)
    assert len(latest) == 5 and next(r for r in latest if r["asset_id"] == "TX-1")[
        "category"] == "critical"
    same_cat = [_row("ess", "B", "R1", 0, 70.0, "fair"), _row("ess", "A", "R1", 0, 65.0, "fair")]
    assert [r["asset_id"] for r in ranked(same_cat)] == ["A", "B"]  # lower score first
