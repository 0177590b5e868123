"""The application without the stack: nothing listens on its Redis, Kafka or WebHDFS
ports, so these check what needs no data — errors, security, limits, documentation."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
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
    epoch = client.app.state.ctx.users.find("admin").epoch  # type: ignore[attr-defined]
    claims = {"sub": "admin", "role": "admin", "regions": [], "typ": "access",
              "iss": "gridlake", "jti": "j", "iat": now - timedelta(hours=2), "epoch": epoch}
    expired = jwt.encode({**claims, "exp": now - timedelta(hours=1)}, secret, "HS256")
    assert client.get(path, headers=bearer(expired)).status_code == 401
    forged = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, "x" * 40, "HS256")
    r = client.get(path, headers=bearer(forged))
    assert r.status_code == 401 and "invalid token" in r.json()["detail"]
    good = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, secret, "HS256")
    assert client.get(path, headers=bearer(good)).status_code == 200
    # signed, but of another session epoch (the user changed since): refused
    stale = jwt.encode({**claims, "epoch": "0" * 32, "exp": now + timedelta(hours=1)},
                       secret, "HS256")
    assert client.get(path, headers=bearer(stale)).status_code == 401


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
    assert checks["redis"] == "unavailable" and checks["database"] == "ok"
    r = client.get("/api/v1/ready", headers=users.admin)
    assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("down")
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


def test_ready_shows_error_text_to_operators_only(client: TestClient, users: Users) -> None:
    anonymous = client.get("/api/v1/ready").json()
    assert set(anonymous["checks"].values()) <= {"ok", "unavailable"}
    assert anonymous["status"] == "degraded" and anonymous["required"]
    for who in (users.headers("viewer"), users.headers("analyst"),
                bearer("not.a.token")):
        assert client.get("/api/v1/ready", headers=who).json() == anonymous
    for who in (users.admin, users.headers("operator")):
        checks = client.get("/api/v1/ready", headers=who).json()["checks"]
        assert checks["kafka"].startswith("down") and checks["redis"].startswith("down:")


@pytest.mark.parametrize(("password", "rule"), [
    (" " * 10, "only spaces"),
    ("\x00" * 10, "control"),
    ("policy-user", "username"),
    ("POLICY-USER-2026", "username"),
    ("password12", "common"),
    ("aaaaaaaaaaaa", "different"),
    ("short", "at least 10"),
])
def test_password_policy_on_create_and_change(client: TestClient, users: Users,
                                              password: str, rule: str) -> None:
    h = users.admin
    r = client.post("/api/v1/users", headers=h, json={
        "username": "policy-user", "password": password, "role": "viewer"})
    assert r.status_code == 422 and rule in r.json()["detail"], r.text
    assert client.get("/api/v1/users/policy-user", headers=h).status_code == 404
    assert client.post("/api/v1/users", headers=h, json={
        "username": "policy-user", "password": PASSWORD, "role": "viewer"}).status_code == 201
    r = client.patch("/api/v1/users/policy-user", headers=h, json={"password": password})
    assert r.status_code == 422 and rule in r.json()["detail"], r.text
    login(client, "policy-user", PASSWORD)  # unchanged


def test_last_admin_cannot_be_demoted_deactivated_or_deleted(client: TestClient,
                                                              users: Users) -> None:
    h = users.admin
    for change in ({"role": "operator"}, {"active": False}):
        r = client.patch("/api/v1/users/admin", headers=h, json=change)
        assert r.status_code == 409 and "last active administrator" in r.json()["detail"]
    client.post("/api/v1/users", headers=h, json={
        "username": "admin2", "password": PASSWORD, "role": "admin"})
    h2 = bearer(login(client, "admin2", PASSWORD)["access_token"])
    # two admins: one may go, then the other is the last
    assert client.patch("/api/v1/users/admin", headers=h2,
                        json={"active": False}).status_code == 200
    assert client.delete("/api/v1/users/admin2", headers=h2).status_code == 409  # self
    r = client.patch("/api/v1/users/admin2", headers=h2, json={"role": "viewer"})
    assert r.status_code == 409
    assert client.get("/api/v1/users/admin2", headers=h2).json()["role"] == "admin"
    # the deactivated admin's token ended with the change
    assert client.get("/api/v1/users", headers=h).status_code == 401


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
        app_settings: GridLakeSettings) -> None:
    def locked_out(cfg: GridLakeSettings, spoof: bool) -> list[int]:
        with TestClient(create_app(cfg), client=("127.0.0.1", 40000)) as c:
            codes = []
            for i in range(4):
                forwarded = {"X-Forwarded-For": f"198.51.100.{i}"} if spoof else {}
                codes.append(c.post("/api/v1/auth/login", headers=forwarded, json={
                    "username": f"guess{i}", "password": "whatever-it-is"}).status_code)
            return codes

    base = {"login_max_failures_per_address": 2, "login_lockout_s": 30.0}
    # from loopback, by default: the header is the client's own claim, not believed
    cfg = api_settings(app_settings, app_settings.home / "a", **base)
    assert locked_out(cfg, spoof=True) == [401, 401, 429, 429]
    # behind a configured proxy every forwarded client has its own count
    cfg = api_settings(app_settings, app_settings.home / "b", trusted_proxies=["127.0.0.1"],
                       **base)
    assert locked_out(cfg, spoof=True) == [401] * 4
    with TestClient(create_app(cfg), client=("127.0.0.1", 40000)) as c:
        c.post("/api/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.7"},
               json={"username": "admin", "password": "wrong-password-1"})
        log = c.get("/api/v1/audit", headers=Users(c).admin,
                    params={"action": "login_failed"}).json()["entries"]
        assert log[0]["detail"]["address"] == "198.51.100.7"


def test_refresh_logout_and_reuse_are_audited(client: TestClient) -> None:
    pair = login(client, "admin", ADMIN_PASSWORD)
    new = client.post("/api/v1/auth/refresh",
                      json={"refresh_token": pair["refresh_token"]}).json()
    assert client.post("/api/v1/auth/logout",
                       json={"refresh_token": new["refresh_token"]}).status_code == 204
    # signing out ended the sign-in's family: the token is dead, whoever holds it
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": new["refresh_token"]}).status_code == 401
    entries = client.get("/api/v1/audit", headers=bearer(new["access_token"]),
                         params={"actor": "admin"}).json()["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["logout", "refresh", "login"]
    assert entries[1]["detail"]["family"] and entries[0]["detail"]["known"] is True


def test_attempted_usernames_are_audited_sanitised(client: TestClient, users: Users) -> None:
    odd = ["adm\u202enimda", "root\x00", "x" * 64, "\u2066evil\u2069", "a\nb", "tab\tbed"]
    for name in odd:
        r = client.post("/api/v1/auth/login", json={"username": name,
                                                     "password": "some-password"})
        assert r.status_code == 401, (name, r.text)  # never a 500
    r = client.get("/api/v1/audit", headers=users.admin, params={"action": "login_failed"})
    assert r.status_code == 200
    actors = [e["actor"] for e in r.json()["entries"]]
    assert "adm\\u202enimda" in actors and "root\\x00" in actors and "tab\\x09bed" in actors
    assert "a\\x0ab" in actors and "\\u2066evil\\u2069" in actors
    for actor in actors:
        assert actor.isprintable() and len(actor) <= 64


def test_failed_model_activation_is_audited(client: TestClient, users: Users) -> None:
    r = client.post("/api/v1/ml/models/m-1/activate", headers=users.admin)
    assert r.status_code == 503  # no ML service listens
    entry = client.get("/api/v1/audit", headers=users.admin,
                       params={"action": "ml_activate_failed"}).json()["entries"][0]
    assert entry["target"] == "m-1" and entry["detail"]["status"] == 503
    assert "unreachable" in entry["detail"]["reason"]
