"""Authorization: every role × every endpoint, region scoping, and sessions that end.

The expected permission of each route is written out here (the documented table), and the
test fails if the application has a route this table does not list, so a new endpoint
cannot ship without a decision about who may call it.

The matrix and region tests run on the loaded stack (integration). The session tests
need no stack: a deleted, deactivated, demoted, re-scoped or re-passworded user's old
token against every route, concurrent and replayed refreshes, and sign-in lockout run on
an app with the SQLite user store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.datasets import DATASETS
from infra.settings import GridLakeSettings
from tests.api.ads_data import World, ms
from tests.api.conftest import (
    ADMIN_PASSWORD,
    PASSWORD,
    Users,
    api_settings,
    bearer,
    concurrently,
    login,
)
from tests.api.test_security import DOCUMENTED


def live_test(fn: Callable[..., None]) -> Callable[..., None]:
    """Mark a test of the loaded stack."""
    return pytest.mark.integration(pytest.mark.slow(fn))

RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
PUBLIC = {("GET", "/api/v1/health"), ("GET", "/api/v1/ready"),
          ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh"),
          ("POST", "/api/v1/auth/logout")}

NO_IMAGE = "0" * 64  # an image id no import made

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
    ("GET", "/api/v1/asset-health/ranking"): (
        "indicators:read", "/api/v1/asset-health/ranking", RANGE, None),
    ("GET", "/api/v1/asset-health/{asset_type}/{asset_id}"): (
        "indicators:read", "/api/v1/asset-health/transformer/TX-1", RANGE, None),
    ("GET", "/api/v1/images"): ("indicators:read", "/api/v1/images", {}, None),
    ("GET", "/api/v1/images/{image_id}"): (
        "indicators:read", f"/api/v1/images/{NO_IMAGE}", {}, None),
    ("GET", "/api/v1/images/{image_id}/content"): (
        "indicators:read", f"/api/v1/images/{NO_IMAGE}/content", {}, None),
    ("GET", "/api/v1/images/{image_id}/results"): (
        "indicators:read", f"/api/v1/images/{NO_IMAGE}/results", {}, None),
    ("GET", "/api/v1/image-anomalies"): ("indicators:read", "/api/v1/image-anomalies", {},
                                         None),
    ("POST", "/api/v1/images/{image_id}/predict"): (
        "ml:score", f"/api/v1/images/{NO_IMAGE}/predict", {}, None),
    ("POST", "/api/v1/ml/images/predict"): ("ml:score", "/api/v1/ml/images/predict", {}, {}),
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
    ("GET", "/api/v1/alarms"): ("alarms:read", "/api/v1/alarms", {}, None),
    ("GET", "/api/v1/alarms/{alarm_id}"): ("alarms:read", "/api/v1/alarms/999999", {}, None),
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"): (
        "alarms:write", "/api/v1/alarms/999999/acknowledge", {}, None),
    ("POST", "/api/v1/alarms/{alarm_id}/close"): (
        "alarms:write", "/api/v1/alarms/999999/close", {}, None),
}


def _routes(client: TestClient) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


@live_test
def test_every_route_has_a_documented_permission(live: TestClient) -> None:
    assert _routes(live) == set(ROUTES) | PUBLIC


@live_test
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


@live_test
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


@live_test
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


@live_test
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


# ---------------------------------------------------------------- sessions (no stack)
#: Checked against the database whatever the method (api.context.FRESH_PERMS).
FRESH = {"users:manage", "audit:read"}
RECHECK_S = 0.5


def _immediate(method: str, perm: str) -> bool:
    """Whether an ended session must be refused at once on this route (else: reads)."""
    return method != "GET" or perm in FRESH


@pytest.fixture
def short(app_settings: GridLakeSettings) -> Iterator[TestClient]:
    """An app whose workers re-read a user's state for reads after ``RECHECK_S``."""
    cfg = api_settings(app_settings, app_settings.home, auth_recheck_s=RECHECK_S,
                       login_max_failures=3, login_lockout_s=1.0, login_window_s=60.0)
    with TestClient(create_app(cfg)) as c:
        yield c


def test_routes_table_matches_the_app(client: TestClient) -> None:
    assert _routes(client) == set(ROUTES) | PUBLIC


CHANGES: dict[str, tuple[str, Callable[[TestClient, dict[str, str], str], None]]] = {
    # identity → (role, what the administrator does to it)
    "deleted admin": ("admin", lambda c, h, u: _ok(c.delete(f"/api/v1/users/{u}", headers=h))),
    "deactivated operator": ("operator", lambda c, h, u: _ok(c.patch(
        f"/api/v1/users/{u}", headers=h, json={"active": False}))),
    "demoted admin": ("admin", lambda c, h, u: _ok(c.patch(
        f"/api/v1/users/{u}", headers=h, json={"role": "viewer"}))),
    "re-scoped operator": ("operator", lambda c, h, u: _ok(c.patch(
        f"/api/v1/users/{u}", headers=h, json={"regions": ["R9"]}))),
    "re-passworded analyst": ("analyst", lambda c, h, u: _ok(c.patch(
        f"/api/v1/users/{u}", headers=h, json={"password": "another-long-secret"}))),
}


def _ok(r: Any) -> None:
    assert r.status_code in (200, 204), r.text


@pytest.mark.parametrize("identity", sorted(CHANGES))
def test_ended_session_is_refused_everywhere(short: TestClient, identity: str) -> None:
    role, change = CHANGES[identity]
    admin = Users(short).admin
    name = identity.replace(" ", "-")
    assert short.post("/api/v1/users", headers=admin, json={
        "username": name, "password": PASSWORD, "role": role}).status_code == 201
    old = bearer(login(short, name, PASSWORD)["access_token"])
    # the worker now remembers a valid session for this user (the cached read path)
    assert short.get("/api/v1/auth/me", headers=old).status_code == 200
    change(short, admin, name)
    for (method, template), (perm, path, params, body) in ROUTES.items():
        if path and _immediate(method, perm):
            r = short.request(method, path, params=params, json=body, headers=old)
            assert r.status_code == 401, (identity, method, template, r.status_code, r.text)
            assert "session ended" in r.json()["detail"]
    time.sleep(RECHECK_S + 0.1)
    for (method, template), (perm, path, params, body) in ROUTES.items():
        if path and not _immediate(method, perm):
            r = short.request(method, path, params=params, json=body, headers=old)
            assert r.status_code == 401, (identity, method, template, r.status_code, r.text)
    # readiness details are an operator's: an ended session gets the anonymous view
    assert set(short.get("/api/v1/ready", headers=old).json()["checks"].values()) <= {
        "ok", "unavailable"}


def test_deleted_admin_cannot_create_an_admin(client: TestClient) -> None:
    # the reported attack: the deleted admin's token, minutes later, made a new admin
    admin = Users(client).admin
    assert client.post("/api/v1/users", headers=admin, json={
        "username": "mallory", "password": PASSWORD, "role": "admin"}).status_code == 201
    mallory = bearer(login(client, "mallory", PASSWORD)["access_token"])
    assert client.get("/api/v1/users", headers=mallory).status_code == 200
    assert client.delete("/api/v1/users/mallory", headers=admin).status_code == 204
    r = client.post("/api/v1/users", headers=mallory, json={
        "username": "mallory2", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 401
    assert client.get("/api/v1/users/mallory2", headers=admin).status_code == 404
    # a new user of the same name does not revive the old token
    assert client.post("/api/v1/users", headers=admin, json={
        "username": "mallory", "password": PASSWORD, "role": "admin"}).status_code == 201
    assert client.get("/api/v1/users", headers=mallory).status_code == 401


def test_demoted_user_refreshes_into_the_new_role(short: TestClient) -> None:
    admin = Users(short).admin
    short.post("/api/v1/users", headers=admin, json={
        "username": "ops", "password": PASSWORD, "role": "operator"})
    pair = login(short, "ops", PASSWORD)
    short.patch("/api/v1/users/ops", headers=admin, json={"role": "viewer"})
    assert short.post("/api/v1/jobs/backfill", headers=bearer(pair["access_token"]),
                      json={}).status_code == 401
    new = short.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert new.status_code == 200 and new.json()["role"] == "viewer"
    h = bearer(new.json()["access_token"])
    assert short.get("/api/v1/auth/me", headers=h).json()["role"] == "viewer"
    r = short.post("/api/v1/jobs/backfill", headers=h, json={})
    assert r.status_code == 403 and "jobs:run" in r.json()["detail"]


def test_concurrent_refresh_gives_exactly_one_new_session(client: TestClient) -> None:
    pair = login(client, "admin", ADMIN_PASSWORD)

    def refresh(_: int) -> tuple[int, dict[str, Any]]:
        r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        return r.status_code, r.json()

    results = concurrently(10, refresh)
    codes = sorted(code for code, _ in results)
    assert codes == [200] + [401] * 9, codes
    winner = next(body for code, body in results if code == 200)
    # the nine replays revoked the family: the winner's successor is dead too
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert r.status_code == 401
    log = client.get("/api/v1/audit", headers=Users(client).admin,
                     params={"action": "refresh_reuse"}).json()
    assert log["total"] == 9 and log["entries"][0]["actor"] == "admin"


def test_replayed_refresh_token_revokes_its_family_only(client: TestClient) -> None:
    first = login(client, "admin", ADMIN_PASSWORD)
    other = login(client, "admin", ADMIN_PASSWORD)  # another device, another family
    child = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert child.status_code == 200
    replay = client.post("/api/v1/auth/refresh",
                         json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    # the sibling issued from the same sign-in no longer refreshes
    sibling = client.post("/api/v1/auth/refresh",
                          json={"refresh_token": child.json()["refresh_token"]})
    assert sibling.status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": other["refresh_token"]}).status_code == 200
    entry = client.get("/api/v1/audit", headers=bearer(other["access_token"]),
                       params={"action": "refresh_reuse"}).json()["entries"][0]
    assert entry["detail"]["revoked"] == 1 and entry["detail"]["family"]


def test_login_is_locked_after_failures_then_recovers(short: TestClient) -> None:
    wrong = {"username": "admin", "password": "not-the-password"}
    right = {"username": "admin", "password": ADMIN_PASSWORD}
    codes = [short.post("/api/v1/auth/login", json=wrong).status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    r = short.post("/api/v1/auth/login", json=right)  # the right password does not bypass
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "failed sign-ins" in r.json()["detail"]
    time.sleep(1.1)  # login_lockout_s
    assert short.post("/api/v1/auth/login", json=right).status_code == 200
    # the success cleared the account: three more failures are needed for the next lock
    assert [short.post("/api/v1/auth/login", json=wrong).status_code
            for _ in range(3)] == [401, 401, 401]
    assert short.post("/api/v1/auth/login", json=right).status_code == 429
    time.sleep(1.1)
    # a failure after a lock doubles the next one
    assert short.post("/api/v1/auth/login", json=wrong).status_code == 401
    r = short.post("/api/v1/auth/login", json=right)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 2
    time.sleep(2.1)  # the audit log needs an administrator's token
    h = bearer(login(short, "admin", ADMIN_PASSWORD)["access_token"])
    actions = [e["action"] for e in short.get("/api/v1/audit", headers=h, params={
        "actor": "admin", "limit": 50}).json()["entries"]]
    assert actions.count("login_locked") == 3 and actions.count("login_failed") == 7


def test_concurrent_wrong_passwords_get_only_the_allowed_tries(short: TestClient) -> None:
    def attempt(i: int) -> int:
        return short.post("/api/v1/auth/login", json={
            "username": "admin", "password": f"wrong-password-{i}"}).status_code

    codes = sorted(concurrently(12, attempt))
    assert codes == [401] * 3 + [429] * 9, codes


def test_a_lock_per_address_covers_every_account(app_settings: GridLakeSettings) -> None:
    cfg = api_settings(app_settings, app_settings.home, login_max_failures=100,
                       login_max_failures_per_address=4, login_lockout_s=30.0)
    with TestClient(create_app(cfg)) as c:
        codes = [c.post("/api/v1/auth/login", json={
            "username": f"guess{i}", "password": "whatever-it-is"}).status_code
            for i in range(6)]
        assert codes == [401] * 4 + [429] * 2
        r = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 429


async def _stream(app: Any, path: str, headers: dict[str, str], limit_s: float) -> bytes:
    """The body of a streamed GET, which must end by itself within ``limit_s``."""
    body = bytearray()
    ended = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await ended.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                ended.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await asyncio.wait_for(app(scope, receive, send), limit_s)
    return bytes(body)


def test_open_feed_stream_ends_with_the_session(short: TestClient) -> None:
    admin = Users(short).admin
    short.post("/api/v1/users", headers=admin, json={
        "username": "watcher", "password": PASSWORD, "role": "viewer"})
    h = bearer(login(short, "watcher", PASSWORD)["access_token"])
    with ThreadPoolExecutor(1) as pool:
        # on the app's own event loop; a stream that does not end fails in 10 s
        stream = pool.submit(short.portal.call,  # type: ignore[union-attr]
                             _stream, short.app, "/api/v1/feed", h, 10.0)
        time.sleep(0.3)
        assert short.patch("/api/v1/users/watcher", headers=admin,
                           json={"active": False}).status_code == 200
        started = time.monotonic()
        body = stream.result().decode()
    assert time.monotonic() - started < 5
    assert body.startswith("event: status") and 'data: {"serving":"up"' in body
    assert body.rstrip().endswith('data: {"session":"ended"}'), body[-300:]
