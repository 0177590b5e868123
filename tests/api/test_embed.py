"""Signed embedding: an embed token opens exactly its view's GET requests, read-only.

Unit tests on an app with throw-away settings (nothing listens on Redis, the lake is
unreachable: an allowed request still gets past the guard and answers from the route),
a property-based test that random requests with a valid token never reach anything else,
and the region scope on the loaded stack (integration).
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.embed import AUDIENCE, NOT_ALLOWED, VIEWS, EmbedTokenError, Grant, embed_secret, sign
from api.security import Principal, Role
from infra.settings import GridLakeSettings
from tests.api.ads_data import World
from tests.api.conftest import bearer
from tests.api.test_authorization import RANGE, ROUTES

LOAD_CURVE = {"entity_type": "feeder", "entity_id": "FDR-0001"}
CURVE_PATH = "/api/v1/entities/feeder/FDR-0001/load-curve"
HEALTH_PATH = "/api/v1/asset-health/transformer/TX-1"


def token(cfg: GridLakeSettings, view: str = "load_curve",
          params: dict[str, str] | None = None, regions: list[str] | None = None,
          ttl_s: int = 300, extra: dict[str, Any] | None = None) -> str:
    """An embed token signed with ``cfg``'s key (``extra`` claims replace signed ones)."""
    key = embed_secret(cfg)
    p = LOAD_CURVE if params is None and view == "load_curve" else params or {}
    tok = sign(key, view, p, regions=regions, ttl_s=ttl_s, subject="portal-user")
    if not extra:
        return tok
    body = jwt.decode(tok, options={"verify_signature": False})
    return jwt.encode({**body, **extra}, key, algorithm="HS256")


def past_guard(r: Any) -> bool:
    """Answered by the route itself (no such entity here, or the lake unreachable)."""
    return r.status_code in (200, 404, 503) and r.json()["detail" if r.status_code >= 400
                                                        else "start"] != NOT_ALLOWED


def test_the_views_requests_pass_the_guard(client: TestClient,
                                           app_settings: GridLakeSettings) -> None:
    curve = bearer(token(app_settings))
    assert past_guard(client.get(CURVE_PATH, params=RANGE, headers=curve))
    health = bearer(token(app_settings, "asset_health",
                          {"asset_type": "transformer", "asset_id": "TX-1"}))
    assert past_guard(client.get(HEALTH_PATH, params=RANGE, headers=health))
    overview = bearer(token(app_settings, "overview", regions=["R1"]))
    r = client.get("/api/v1/freshness", headers=overview)
    assert r.status_code == 200 and "serving" in r.json()
    assert past_guard(client.get("/api/v1/datasets/load_curve", headers=overview,
                                 params={**RANGE, "entity_type": "region", "limit": 100}))


def refused(r: Any) -> bool:
    return r.status_code == 403 and r.json()["detail"] == NOT_ALLOWED


def test_other_view_params_and_routes_are_refused(client: TestClient,
                                                  app_settings: GridLakeSettings) -> None:
    h = bearer(token(app_settings))
    # another entity, another entity type, a parameter the view does not take
    assert refused(client.get("/api/v1/entities/feeder/FDR-0002/load-curve", params=RANGE,
                              headers=h))
    assert refused(client.get("/api/v1/entities/substation/FDR-0001/load-curve",
                              params=RANGE, headers=h))
    assert refused(client.get(CURVE_PATH, params={**RANGE, "entity_id": "X"}, headers=h))
    assert refused(client.get(CURVE_PATH, params=[("start", RANGE["start"]),
                                                  ("start", RANGE["start"])], headers=h))
    assert refused(client.get(CURVE_PATH + "/", params=RANGE, headers=h))
    # another view of the same entity, and the overview's requests
    assert refused(client.get("/api/v1/entities/feeder/FDR-0001/indicators", params=RANGE,
                              headers=h))
    assert refused(client.get("/api/v1/freshness", headers=h))
    assert refused(client.get("/api/v1/feed", headers=h))
    # writes and other methods on the very path of the view
    for method in ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        r = client.request(method, CURVE_PATH, params=RANGE, headers=h)
        assert r.status_code == 403, (method, r.status_code)
    # the overview may not widen its dataset query or open the whole feed
    o = bearer(token(app_settings, "overview"))
    for params in ({"entity_type": "feeder"}, {}, {"entity_type": "region", "filter": "x=1"},
                   {"entity_type": "region", "entity_id": "R2"}):
        assert refused(client.get("/api/v1/datasets/load_curve", params={**RANGE, **params},
                                  headers=o)), params
    assert refused(client.get("/api/v1/datasets/voltage_daily", headers=o,
                              params={**RANGE, "entity_type": "region"}))
    assert refused(client.get("/api/v1/feed", headers=o))
    assert refused(client.get("/api/v1/feed", params={"datasets": "transformer_daily"},
                              headers=o))
    assert refused(client.get("/api/v1/feed", params={"alarms_only": "1"}, headers=o))


def test_a_token_may_fix_the_time_range(client: TestClient,
                                        app_settings: GridLakeSettings) -> None:
    h = bearer(token(app_settings, params={**LOAD_CURVE, **RANGE}))
    assert past_guard(client.get(CURVE_PATH, params=RANGE, headers=h))
    assert refused(client.get(CURVE_PATH, params={**RANGE, "start": "2026-01-01T00:00:00Z"},
                              headers=h))
    assert refused(client.get(CURVE_PATH, params={"end": RANGE["end"]}, headers=h))
    with pytest.raises(EmbedTokenError, match="optionally start, end"):
        sign("k" * 40, "load_curve", {**LOAD_CURVE, "limit": "5"}, regions=None, ttl_s=60,
             subject="s")


def test_every_other_api_route_is_refused(client: TestClient,
                                          app_settings: GridLakeSettings) -> None:
    """Users, devices, jobs, ML, rankings ...: every route the API has, with each view."""
    for view, params in (("load_curve", LOAD_CURVE),
                         ("asset_health", {"asset_type": "transformer", "asset_id": "TX-1"}),
                         ("overview", {})):
        h = bearer(token(app_settings, view, params))
        allowed = {e.path.format(**params) for e in VIEWS[view].endpoints}
        for (method, _), (_, path, query, body) in ROUTES.items():
            if method == "GET" and path in allowed:
                continue
            r = client.request(method, path, params=query, json=body, headers=h)
            assert r.status_code == 403, (view, method, path, r.status_code, r.text)
        for path in ("/api/v1/users", "/api/v1/devices", "/api/v1/jobs", "/api/v1/audit",
                     "/api/v1/auth/me", "/api/v1/ml/models", "/api/v1/ready", "/docs",
                     "/openapi.json"):
            assert refused(client.get(path, headers=h)), (view, path)


def test_invalid_tokens_are_401_with_a_reason(client: TestClient,
                                              app_settings: GridLakeSettings) -> None:
    def detail(tok: str) -> str:
        r = client.get(CURVE_PATH, params=RANGE, headers=bearer(tok))
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        return str(r.json()["detail"])

    past = int(time.time()) - 1000
    assert "expired" in detail(token(app_settings, extra={"iat": past, "exp": past + 60}))
    good = token(app_settings)
    head, body, sig = good.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    assert "invalid embed token" in detail(tampered)
    # the same claims under another key (a portal with the wrong secret)
    claims = jwt.decode(good, options={"verify_signature": False})
    assert "invalid embed token" in detail(jwt.encode(claims, "x" * 40, algorithm="HS256"))
    assert "another audience" in detail(token(app_settings, extra={"aud": "someone-else"}))
    assert "typ" in detail(token(app_settings, extra={"typ": "access", "aud": AUDIENCE}))
    assert "longer than" in detail(token(app_settings, extra={"exp": int(time.time()) + 86_400}))
    assert "unknown view" in detail(token(app_settings, extra={"view": "users"}))
    assert "takes" in detail(token(app_settings, extra={"params": {"entity_id": "FDR-0001"}}))
    assert "region" in detail(token(app_settings, extra={"regions": []}))
    # alg=none is never accepted
    none = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    assert client.get(CURVE_PATH, params=RANGE, headers=bearer(none)).status_code == 401


def test_an_access_token_is_not_affected(client: TestClient, users: Any) -> None:
    assert client.get("/api/v1/roles", headers=users.admin).status_code == 200


def test_sign_refuses_what_no_view_takes() -> None:
    key = "k" * 40
    with pytest.raises(EmbedTokenError, match="unknown view"):
        sign(key, "users", {}, regions=None, ttl_s=60, subject="s")
    with pytest.raises(EmbedTokenError, match="takes entity_type, entity_id"):
        sign(key, "load_curve", {"entity_type": "feeder"}, regions=None, ttl_s=60, subject="s")
    with pytest.raises(EmbedTokenError, match="param entity_id"):
        sign(key, "load_curve", {"entity_type": "feeder", "entity_id": "../users"},
             regions=None, ttl_s=60, subject="s")


def test_the_secret_is_generated_once_private(app_settings: GridLakeSettings) -> None:
    first = embed_secret(app_settings)
    path = app_settings.run / "web-embed-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert embed_secret(app_settings) == first and len(first) >= 32


# ------------------------------------------------------------------- property-based
_WHO = Principal("embed:p", Role.VIEWER, frozenset({"R1"}), expires=time.time() + 60)
_segment = st.sampled_from(["api", "v1", "entities", "feeder", "FDR-0001", "FDR-0002",
                            "load-curve", "indicators", "asset-health", "transformer", "TX-1",
                            "datasets", "load_curve", "feed", "freshness", "users", "jobs",
                            "devices", "", "..", "%2F"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%\\"),
    max_size=8)
_paths = st.lists(_segment, min_size=1, max_size=7).map(lambda s: "/" + "/".join(s))
_names = st.sampled_from(["start", "end", "fields", "format", "entity_type", "entity_id",
                          "datasets", "entity_types", "alarms_only", "limit", "filter",
                          "regions", "token"]) | st.text(max_size=6)
_values = st.sampled_from(["region", "feeder", "FDR-0001", "load_curve", "true", "1",
                           "R2", "2026-03-01T00:00:00Z", "loading_rate_pct>100"]
                          ) | st.text(max_size=6)
_queries = st.lists(st.tuples(_names, _values), max_size=5)
_methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])


def _is_view_request(view: str, params: dict[str, str], path: str,
                     query: list[tuple[str, str]]) -> bool:
    """The oracle, written out per view (independent of :class:`Endpoint`)."""
    q = dict(query)
    if len(q) != len(query):
        return False
    if view == "load_curve":
        return (path == f"/api/v1/entities/{params['entity_type']}/{params['entity_id']}"
                "/load-curve" and set(q) <= {"start", "end", "fields", "format"}
                and all(q.get(k) == params[k] for k in ("start", "end") if k in params))
    if view == "asset_health":
        return (path == f"/api/v1/asset-health/{params['asset_type']}/{params['asset_id']}"
                and set(q) <= {"start", "end"})
    if path == "/api/v1/freshness":
        return not q
    if path == "/api/v1/datasets/transformer_daily":
        return q.get("filter") == "loading_rate_pct>100" and set(q) <= {
            "filter", "start", "end", "fields", "sort", "limit"}
    if path == "/api/v1/datasets/load_curve":
        return q.get("entity_type") == "region" and set(q) <= {
            "entity_type", "start", "end", "fields", "sort", "limit", "offset", "format"}
    if path == "/api/v1/feed":
        return q in ({"datasets": "load_curve", "entity_types": "region"},
                     {"alarms_only": "true"})
    return False


_VIEW_PARAMS: dict[str, dict[str, str]] = {
    "load_curve": LOAD_CURVE, "overview": {},
    "asset_health": {"asset_type": "transformer", "asset_id": "TX-1"},
    "load_curve_range": {**LOAD_CURVE, "start": "2026-03-01T00:00:00Z"}}


@settings(max_examples=400, deadline=None)
@given(case=st.sampled_from(sorted(_VIEW_PARAMS)), method=_methods, path=_paths,
       query=_queries)
def test_random_requests_never_leave_the_view(case: str, method: str, path: str,
                                              query: list[tuple[str, str]]) -> None:
    params = _VIEW_PARAMS[case]
    view = case.removesuffix("_range")
    grant = Grant(view, params, _WHO)
    allowed = grant.allows(method, path, query)
    assert allowed == (method == "GET" and _is_view_request(view, params, path, query))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=_methods, path=_paths, query=_queries)
def test_random_requests_through_the_app(client: TestClient, app_settings: GridLakeSettings,
                                         method: str, path: str,
                                         query: list[tuple[str, str]]) -> None:
    """Through the whole app: a refused request is 403 before routing, never a 2xx."""
    h = bearer(token(app_settings))
    # absolute: httpx refuses a relative URL whose path starts with "//"; a raw client
    # may send one all the same
    r = client.request(method, f"{client.base_url}{path}", params=query, headers=h)
    if not (method == "GET" and _is_view_request("load_curve", LOAD_CURVE, path, query)):
        assert r.status_code == 403, (method, path, query, r.status_code, r.text)
    else:
        assert r.status_code in (404, 422, 503), r.text  # no feeder, a bad range, no lake


# ------------------------------------------------------------------- integration
@pytest.mark.integration
@pytest.mark.slow
def test_region_scope_of_an_embed_token(live: TestClient, world: World) -> None:
    cfg = live.app.state.settings  # type: ignore[attr-defined]
    in_r1 = next(d for d, rec in world.registry.items()
                 if rec["device_type"] == "transformer" and rec["region_id"] == "R1")
    in_r2 = next(d for d, rec in world.registry.items()
                 if rec["device_type"] == "transformer" and rec["region_id"] == "R2")

    def curve(entity: str, regions: list[str] | None) -> Any:
        tok = token(cfg, params={"entity_type": "transformer", "entity_id": entity},
                    regions=regions)
        return live.get(f"/api/v1/entities/transformer/{entity}/load-curve", params=RANGE,
                        headers=bearer(tok))

    ok = curve(in_r1, ["R1"])
    assert ok.status_code == 200 and ok.json()["total"] > 0
    assert curve(in_r2, ["R1"]).status_code == 403
    assert curve(in_r2, None).status_code == 200
    # the overview's regions' curves hold only the token's regions
    tok = token(cfg, "overview", regions=["R1"])
    rows = live.get("/api/v1/datasets/load_curve", headers=bearer(tok), params={
        **RANGE, "entity_type": "region", "limit": 10_000}).json()["rows"]
    assert rows and {r["entity_id"] for r in rows} == {"R1"}
