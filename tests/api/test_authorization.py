"""Authorization: every role × every endpoint, and region scoping.

The expected permission of each route is written out here (the documented table), and the
test fails if the application has a route this table does not list, so a new endpoint
cannot ship without a decision about who may call it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.datasets import DATASETS
from tests.api.ads_data import World, ms
from tests.api.conftest import Users
from tests.api.test_security import DOCUMENTED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
PUBLIC = {("GET", "/api/v1/health"), ("GET", "/api/v1/ready"),
          ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh"),
          ("POST", "/api/v1/auth/logout")}

# (method, path) → (permission, concrete path, query, JSON body). Calls an allowed role
# makes are harmless: unknown ids (404) or invalid bodies (422) after authorization.
ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, Any], Any]] = {
    ("GET", "/api/v1/freshness"): ("indicators:read", "/api/v1/freshness", {}, None),
    ("GET", "/api/v1/roles"): ("indicators:read", "/api/v1/roles", {}, None),
    ("GET", "/api/v1/auth/me"): ("indicators:read", "/api/v1/auth/me", {}, None),
    ("GET", "/api/v1/datasets"): ("indicators:read", "/api/v1/datasets", {}, None),
    ("GET", "/api/v1/datasets/{dataset}"): (
        "indicators:read", "/api/v1/datasets/transformer_daily", RANGE, None),
    ("GET", "/api/v1/entities/{entity_type}/{entity_id}/indicators"): (
        "indicators:read", "/api/v1/entities/transformer/TX-1/indicators", RANGE, None),
    ("GET", "/api/v1/entities/{entity_type}/{entity_id}/load-curve"): (
        "indicators:read", "/api/v1/entities/feeder/F1/load-curve", RANGE, None),
    ("GET", "/api/v1/quality/scorecards"): (
        "indicators:read", "/api/v1/quality/scorecards", RANGE, None),
    ("GET", "/api/v1/rankings"): ("indicators:read", "/api/v1/rankings", {}, None),
    ("GET", "/api/v1/rankings/{ranking}"): (
        "indicators:read", "/api/v1/rankings/transformer_loading", RANGE, None),
    ("GET", "/api/v1/meters/{device_id}/energy/15min"): (
        "indicators:read", "/api/v1/meters/M-1/energy/15min", RANGE, None),
    ("GET", "/api/v1/feed"): ("feed:read", "", {}, None),  # streams: see test_feed
    ("GET", "/api/v1/devices"): ("devices:read", "/api/v1/devices", {}, None),
    ("GET", "/api/v1/devices/{device_id}"): (
        "devices:read", "/api/v1/devices/NOPE", {}, None),
    ("POST", "/api/v1/devices"): ("devices:write", "/api/v1/devices", {}, {}),
    ("PATCH", "/api/v1/devices/{device_id}"): (
        "devices:write", "/api/v1/devices/NOPE", {}, {"model": "X"}),
    ("POST", "/api/v1/devices/{device_id}/retire"): (
        "devices:write", "/api/v1/devices/NOPE/retire", {}, None),
    ("POST", "/api/v1/jobs/backfill"): ("jobs:run", "/api/v1/jobs/backfill", {}, {}),
    ("GET", "/api/v1/jobs"): ("jobs:read", "/api/v1/jobs", {}, None),
    ("GET", "/api/v1/jobs/{job_id}"): ("jobs:read", "/api/v1/jobs/ba-0000000000", {}, None),
    ("GET", "/api/v1/jobs/{job_id}/log"): (
        "jobs:read", "/api/v1/jobs/ba-0000000000/log", {}, None),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): (
        "jobs:run", "/api/v1/jobs/ba-0000000000/cancel", {}, None),
    ("GET", "/api/v1/ml/health"): ("ml:score", "/api/v1/ml/health", {}, None),
    ("GET", "/api/v1/ml/models"): ("ml:score", "/api/v1/ml/models", {}, None),
    ("POST", "/api/v1/ml/models/{model_id}/activate"): (
        "ml:manage", "/api/v1/ml/models/none-such/activate", {}, None),
    ("POST", "/api/v1/ml/score"): ("ml:score", "/api/v1/ml/score", {}, {"series": []}),
    ("POST", "/api/v1/ml/score/lake"): ("ml:score", "/api/v1/ml/score/lake", {}, {}),
    ("GET", "/api/v1/users"): ("users:manage", "/api/v1/users", {}, None),
    ("POST", "/api/v1/users"): ("users:manage", "/api/v1/users", {}, {}),
    ("GET", "/api/v1/users/{username}"): ("users:manage", "/api/v1/users/nobody", {}, None),
    ("PATCH", "/api/v1/users/{username}"): (
        "users:manage", "/api/v1/users/nobody", {}, {"role": "viewer"}),
    ("DELETE", "/api/v1/users/{username}"): (
        "users:manage", "/api/v1/users/nobody", {}, None),
    ("GET", "/api/v1/audit"): ("audit:read", "/api/v1/audit", {}, None),
}


def _routes(client: TestClient) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


def test_every_route_has_a_documented_permission(live: TestClient) -> None:
    assert _routes(live) == set(ROUTES) | PUBLIC


@pytest.mark.parametrize("role", sorted(DOCUMENTED))
def test_role_matrix(live: TestClient, live_users: Users, role: str) -> None:
    h = live_users.admin if role == "admin" else live_users.headers(role)
    allowed = DOCUMENTED[role]
    for (method, template), (perm, path, params, body) in ROUTES.items():
        if not path:
            continue
        r = live.request(method, path, params=params, json=body, headers=h)
        if perm in allowed:
            assert r.status_code not in (401, 403), (role, method, template, r.text)
            assert r.status_code < 500 or r.status_code in (502, 503), (role, template, r.text)
        else:
            assert r.status_code == 403, (role, method, template, r.status_code, r.text)
            assert perm in r.json()["detail"]


def test_no_token_is_401_everywhere_but_the_public_routes(live: TestClient) -> None:
    for (method, template), (_, path, params, body) in ROUTES.items():
        path = path or template
        r = live.request(method, path, params=params, json=body)
        assert r.status_code == 401, (method, template, r.status_code)
    assert live.get("/api/v1/health").status_code == 200


def _region_of(world: World, ds_name: str, row: dict[str, Any]) -> str | None:
    ds = DATASETS[ds_name]
    etype, eid = ds.row_entity(row)
    if etype == "region":
        return eid
    rec = world.registry.get(eid)
    return None if rec is None else rec["region_id"]


def test_region_scope_on_listings(live: TestClient, live_users: Users, world: World) -> None:
    r1 = live_users.headers("viewer", ["R1"])
    for name in ("load_daily", "voltage_daily", "transformer_daily", "feeder_daily",
                 "quality_scorecard", "load_curve", "meter_energy_15min"):
        ds = DATASETS[name]
        want = [r for r in world.rows_in(ds, ms(RANGE["start"]), ms(RANGE["end"]))
                if _region_of(world, name, r) == "R1"]
        body = live.get(f"/api/v1/datasets/{name}", headers=r1,
                        params={**RANGE, "limit": 10_000}).json()
        assert body["total"] == len(want) > 0, name
        got = {(ds.row_entity(x)[1]) for x in body["rows"]}
        assert all(world.registry.get(e, {}).get("region_id", e) == "R1" for e in got), got
    # M-3 moved from R1 to R2: its current region decides
    assert world.region("M-3") == "R2"
    rows = live.get("/api/v1/datasets/meter_energy_15min", headers=r1,
                    params={**RANGE, "limit": 10_000}).json()["rows"]
    assert "M-3" not in {x["device_id"] for x in rows}


def test_region_scope_on_entities_rankings_devices(live: TestClient, live_users: Users,
                                                   world: World) -> None:
    r1 = live_users.headers("operator", ["R1"])
    r2 = live_users.headers("analyst", ["R2"])
    in_r2 = next(d for d, rec in world.registry.items()
                 if rec["device_type"] == "transformer" and rec["region_id"] == "R2")
    in_r1 = next(d for d, rec in world.registry.items()
                 if rec["device_type"] == "transformer" and rec["region_id"] == "R1")
    path = "/api/v1/entities/transformer/{}/indicators"
    assert live.get(path.format(in_r2), params=RANGE, headers=r1).status_code == 403
    assert live.get(path.format(in_r1), params=RANGE, headers=r1).status_code == 200
    assert live.get(path.format(in_r2), params=RANGE, headers=r2).status_code == 200
    assert live.get("/api/v1/entities/region/R2/indicators", params=RANGE,
                    headers=r1).status_code == 403
    assert live.get("/api/v1/meters/M-3/energy/15min", params=RANGE,
                    headers=r1).status_code == 403
    assert live.get("/api/v1/meters/M-3/energy/15min", params=RANGE,
                    headers=r2).status_code == 200
    # an unknown entity is 404 for a scoped user too (nothing leaks about other regions)
    assert live.get(path.format("TX-404"), params=RANGE, headers=r1).status_code == 404

    ranked = live.get("/api/v1/rankings/transformer_loading", params=RANGE,
                      headers=r1).json()["rows"]
    tx = pd.DataFrame(world.rows_in(DATASETS["transformer_daily"], ms(RANGE["start"]),
                                    ms(RANGE["end"])))
    r1_tx = {t for t in tx.transformer_id if world.region(t) == "R1"}
    assert {x["entity_id"] for x in ranked} == r1_tx and all(
        x["region_id"] == "R1" for x in ranked)
    cards = live.get("/api/v1/quality/scorecards", params=RANGE, headers=r1).json()["rows"]
    assert {c["region_id"] for c in cards} == {"R1"}
    assert live.get("/api/v1/quality/scorecards", params={**RANGE, "region_id": "R2"},
                    headers=r1).status_code == 403

    devices = live.get("/api/v1/devices", params={"limit": 1000}, headers=r1).json()["rows"]
    assert {d["region_id"] for d in devices} == {"R1"}  # incl. devices other tests created
    assert {d["device_id"] for d in devices if d["device_id"] in world.registry} == {
        d for d, rec in world.registry.items() if rec["region_id"] == "R1"}
    assert live.get(f"/api/v1/devices/{in_r2}", headers=r1).status_code == 403
    assert live.get(f"/api/v1/devices/{in_r1}", headers=r1).status_code == 200
    # a change in another region is refused before anything is published
    assert live.post(f"/api/v1/devices/{in_r2}/retire", headers=r1).status_code == 403
    assert live.post("/api/v1/jobs/backfill", headers=r1, json={
        "start": "2026-03-01", "end": "2026-03-02"}).status_code == 403
    assert live.post("/api/v1/jobs/backfill", headers=r1, json={
        "start": "2026-03-01", "end": "2026-03-02", "region": "R2"}).status_code == 403
