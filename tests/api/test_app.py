"""The application without the stack: nothing listens on its Redis, Kafka or WebHDFS
ports, so these check what needs no data — errors, security, limits, documentation."""

from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from api.app import create_app
from api.models import decode_row, row_model
from infra.settings import GridLakeSettings
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Users, api_settings, bearer, login

RANGE = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}


def test_row_model_derived_from_contract() -> None:
    model = row_model(ADS_METER_ENERGY_15MIN)
    assert list(model.model_fields) == ADS_METER_ENERGY_15MIN.field_names
    assert "[kWh]" in (model.model_fields["energy_kwh"].description or "")


def test_decode_row_types() -> None:
    row = decode_row(
        ADS_METER_ENERGY_15MIN,
        {
            "device_id": "M1",
            "window_start": "1705276800000",
            "energy_kwh": "0.25",
            "readings": "15",
            "baseline": "first_reading",
            "dt": "2024-01-15",
        },
    )
    assert row["window_start"] == datetime(2024, 1, 15, tzinfo=UTC)
    assert row["energy_kwh"] == 0.25 and row["readings"] == 15
    assert row["window_end"] is None  # absent → None, not a crash


def test_reversed_range_is_422_naming_the_field(client: TestClient, users: Users) -> None:
    r = client.get("/api/v1/meters/M1/energy/15min", headers=users.admin,
                   params={"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("end:")


def test_bad_parameters_are_422_naming_the_field(client: TestClient, users: Users) -> None:
    h = users.admin
    r = client.get("/api/v1/meters/M1/energy/15min", headers=h,
                   params={"start": "yesterday", "end": "x"})
    assert r.status_code == 422 and "start" in r.text
    cases = [
        ("/api/v1/datasets/load_curve", {**RANGE, "filter": "bogus>1"}, "filter"),
        ("/api/v1/datasets/load_curve", {**RANGE, "sort": "-nope"}, "sort"),
        ("/api/v1/datasets/load_curve", {**RANGE, "fields": "day"}, "fields"),
        ("/api/v1/datasets/load_curve", {**RANGE, "limit": "100000000"}, "limit"),
        ("/api/v1/datasets/load_curve", {**RANGE, "entity_type": "ess"}, "entity_type"),
        ("/api/v1/datasets/load_curve", {**RANGE, "entity_id": "F1"}, "entity_type"),
        ("/api/v1/datasets/load_curve", {**RANGE, "format": "xml"}, "format"),
        ("/api/v1/datasets/no_such", RANGE, "dataset"),
        ("/api/v1/datasets/load_curve", {"start": "2020-01-01", "end": "2024-01-01"}, "end"),
        ("/api/v1/datasets/load_curve",  # before year 1 in UTC
         {"start": "0001-01-01T00:00:00+05:00", "end": "0001-01-02T00:00:00Z"}, "start"),
        ("/api/v1/meters/M1/energy/15min",  # after year 9999 in UTC
         {"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T23:00:00-05:00"}, "end"),
        ("/api/v1/rankings/transformer_loading", {**RANGE, "entity_type": "meter"},
         "entity_type"),
        ("/api/v1/rankings/nope", RANGE, "ranking"),
        ("/api/v1/entities/planet/X/indicators", RANGE, "entity_type"),
        ("/api/v1/entities/meter/M1/indicators", {**RANGE, "grain": "1h"}, "grain"),
    ]
    for path, params, field in cases:
        r = client.get(path, params=params, headers=h)
        assert r.status_code == 422, (path, params, r.text)
        assert field in r.text, (path, params, r.text)


def test_missing_forged_and_expired_tokens_are_401(client: TestClient,
                                                   app_settings: GridLakeSettings) -> None:
    path = "/api/v1/datasets"
    assert client.get(path).status_code == 401
    assert client.get(path).headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": "Basic YTpi"}).status_code == 401
    assert client.get(path, headers=bearer("not.a.token")).status_code == 401
    secret = app_settings.api.jwt_secret.get_secret_value()  # type: ignore[union-attr]
    now = datetime.now(UTC)
    claims = {"sub": "admin", "role": "admin", "regions": [], "typ": "access",
              "iss": "gridlake", "jti": "j", "iat": now - timedelta(hours=2)}
    expired = jwt.encode({**claims, "exp": now - timedelta(hours=1)}, secret, "HS256")
    assert client.get(path, headers=bearer(expired)).status_code == 401
    forged = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, "x" * 40, "HS256")
    r = client.get(path, headers=bearer(forged))
    assert r.status_code == 401 and "invalid token" in r.json()["detail"]
    good = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, secret, "HS256")
    assert client.get(path, headers=bearer(good)).status_code == 200


def test_login_refresh_rotation_and_logout(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"})
    assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    pair = login(client, "admin", ADMIN_PASSWORD)
    assert pair["role"] == "admin" and pair["expires_in"] == 15 * 60
    me = client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])).json()
    assert me["username"] == "admin" and "users:manage" in me["permissions"]
    # the refresh token is not an access token
    assert client.get("/api/v1/auth/me", headers=bearer(pair["refresh_token"])).status_code \
        == 401
    new = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert new.status_code == 200
    # single use: the old one is spent
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    newer = new.json()["refresh_token"]
    assert client.post("/api/v1/auth/logout", json={"refresh_token": newer}).status_code == 204
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": newer}).status_code == 401


def test_user_admin_and_audit_log(client: TestClient, users: Users) -> None:
    h = users.admin
    r = client.post("/api/v1/users", headers=h, json={
        "username": "op1", "password": PASSWORD, "role": "operator", "regions": ["R1"]})
    assert r.status_code == 201 and r.json()["regions"] == ["R1"]
    assert "password" not in r.text
    assert client.post("/api/v1/users", headers=h, json={
        "username": "op1", "password": PASSWORD, "role": "viewer"}).status_code == 409
    bad = client.post("/api/v1/users", headers=h, json={
        "username": "op2", "password": PASSWORD, "role": "root"})
    assert bad.status_code == 422 and "role" in bad.text
    short = client.post("/api/v1/users", headers=h, json={
        "username": "op2", "password": "short", "role": "viewer"})
    assert short.status_code == 422 and "password" in short.text
    bad_region = client.post("/api/v1/users", headers=h, json={
        "username": "op2", "password": PASSWORD, "role": "viewer", "regions": ["R1;--"]})
    assert bad_region.status_code == 422
    op = login(client, "op1", PASSWORD)
    assert op["regions"] == ["R1"]
    r = client.patch("/api/v1/users/op1", headers=h, json={"role": "viewer", "regions": []})
    assert r.json()["role"] == "viewer" and r.json()["regions"] == []
    # a refresh after the change carries the new role; deactivation revokes refresh tokens
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": op["refresh_token"]})
    assert fresh.json()["role"] == "viewer"
    client.patch("/api/v1/users/op1", headers=h, json={"active": False})
    assert client.post("/api/v1/auth/refresh", json={
        "refresh_token": fresh.json()["refresh_token"]}).status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "op1", "password": PASSWORD})
    assert r.status_code == 401
    assert client.delete("/api/v1/users/admin", headers=h).status_code == 409
    assert client.delete("/api/v1/users/op1", headers=h).status_code == 204
    assert client.get("/api/v1/users/op1", headers=h).status_code == 404
    log = client.get("/api/v1/audit", headers=h, params={"actor": "admin"}).json()
    actions = [e["action"] for e in log["entries"]]
    assert actions[:4] == ["user_delete", "user_update", "user_update", "user_create"]
    assert log["entries"][1]["detail"] == {"active": False}
    assert "login_failed" in [e["action"] for e in client.get(
        "/api/v1/audit", headers=h, params={"actor": "op1"}).json()["entries"]]


def test_body_size_limit_is_413(client: TestClient, users: Users) -> None:
    r = client.post("/api/v1/users", headers={**users.admin, "Content-Type": "application/json"},
                    content=b'{"username": "' + b"x" * 1_100_000 + b'"}')
    assert r.status_code == 413


def test_rate_limit_per_user_is_429(app_settings: GridLakeSettings) -> None:
    cfg = app_settings.model_copy(update={"api": app_settings.api.model_copy(update={
        "rate_limit_per_s": 1.0, "rate_limit_burst": 5})})
    with TestClient(create_app(cfg)) as c:
        u = Users(c)
        h = u.admin  # the login itself counts against the client address, not the user
        codes = [c.get("/api/v1/datasets", headers=h).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = c.get("/api/v1/datasets", headers=h)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # another user has a bucket of their own
        other = c.post("/api/v1/auth/login", json={"username": "admin",
                                                   "password": ADMIN_PASSWORD})
        assert other.status_code in (200, 429)


def test_dependencies_down_is_503_never_500(client: TestClient, users: Users) -> None:
    r = client.get("/api/v1/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["redis"].startswith("down") and checks["database"] == "ok"
    assert client.get("/api/v1/health").json()["status"] == "ok"
    # Redis and the lake both unreachable: an honest 503 with Retry-After, for every call
    for _ in range(3):
        r = client.get("/api/v1/datasets/transformer_daily", params=RANGE, headers=users.admin)
        assert r.status_code == 503 and r.headers["retry-after"]
    r = client.post("/api/v1/ml/score", headers=users.admin, json={"series": []})
    assert r.status_code == 503 and "ML service" in r.text


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert all(p.startswith("/api/v1/") for p in paths)
    assert {"/api/v1/datasets/{dataset}", "/api/v1/rankings/{ranking}", "/api/v1/devices",
            "/api/v1/jobs/backfill", "/api/v1/feed", "/api/v1/ml/score", "/api/v1/ready",
            "/api/v1/auth/login", "/api/v1/freshness"} <= set(paths)
    params = {p["name"]: p for p in paths["/api/v1/datasets/{dataset}"]["get"]["parameters"]}
    assert params["start"]["schema"].get("examples") or params["start"].get("examples")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert client.get("/docs").status_code == 200


def test_second_worker_on_the_same_database_keeps_one_admin(
        app_settings: GridLakeSettings) -> None:
    # the admin is created once, even when a second app (worker) starts on the same database
    with TestClient(create_app(app_settings)) as c:
        login(c, "admin", ADMIN_PASSWORD)
    with TestClient(create_app(api_settings(app_settings, app_settings.home))) as c:
        users = c.get("/api/v1/users", headers=Users(c).admin).json()
        assert [u["username"] for u in users["users"]] == ["admin"]
