"""One error schema: what the API answers, what its OpenAPI document says, and the ML proxy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.errors import ErrorBody, document_errors, error_statuses
from api.security import RateLimiter
from infra.settings import ApiSettings
from lakehouse.contracts.messages import DEVICE_REGISTRY
from tests.api.conftest import Users


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_every_error_answer_is_documented_with_the_one_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ErrorBody" in schemas
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    for method, path, op in _operations(spec):
        responses = op["responses"]
        secured = bool(op.get("security"))
        if secured:
            assert {"401", "403", "429", "503"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(responses), (method, path)
        if op.get("parameters"):
            assert "422" in responses, (method, path)
        for code, entry in responses.items():
            if int(code) < 400 or (path, code) == ("/api/v1/ready", "503"):
                continue
            schema = entry["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
            if code in ("429", "503"):
                assert "Retry-After" in entry["headers"], (method, path, code)


def test_generated_statuses_follow_the_operation() -> None:
    assert error_statuses({}) == set()
    assert error_statuses({"security": [{"b": []}], "parameters": [{"in": "path"}]}) == {
        401, 403, 404, 422, 429, 503}
    assert error_statuses({"requestBody": {}}, tags=["auth"]) == {400, 401, 413, 422, 429}
    spec = {"paths": {"/x": {"post": {"responses": {"409": {"description": "Taken"}},
                                      "requestBody": {}}}}}
    documented = document_errors(spec)["paths"]["/x"]["post"]["responses"]
    assert set(documented) == {"400", "409", "413", "422"}
    assert documented["409"]["description"] == "Taken"  # a route's own words are kept


def test_fastapi_validation_errors_answer_the_documented_shape(client: TestClient,
                                                               users: Users) -> None:
    r = client.get("/api/v1/datasets/load_curve", headers=users.admin,
                   params={"start": "yesterday", "end": "2026-03-02", "limit": "0"})
    assert r.status_code == 422
    body = ErrorBody.model_validate(r.json())
    assert body.errors is not None
    assert {tuple(e.loc) for e in body.errors} == {("query", "start"), ("query", "limit")}
    assert body.detail.startswith("start: ") and "; limit: " in body.detail
    # a password is never echoed back
    r = client.post("/api/v1/users", headers=users.admin, json={
        "username": "x y", "password": "secret-password-xyz", "role": "viewer"})
    assert r.status_code == 422 and "secret-password-xyz" not in r.text
    # the route's own 422s list their error too
    r = client.get("/api/v1/datasets/load_curve", headers=users.admin,
                   params={"start": "2026-03-02", "end": "2026-03-01"})
    assert r.json() == {"detail": "end: must be after start", "errors": [
        {"loc": ["request", "end"], "msg": "must be after start", "type": "value_error"}]}


def test_devices_list_gives_times_as_the_spec_and_the_single_device_do(
        client: TestClient, users: Users) -> None:
    record = {
        "device_id": "SUB-1", "ts": 1_772_323_200_000, "version": 1, "change_type": "create",
        "device_type": "substation", "model": "S", "manufacturer": "M", "serial_number": "1",
        "status": "in_service", "install_date": "2026-03-01", "region_id": "R1",
        "latitude": 31.0, "longitude": 121.0, "parent_id": "R1"}
    assert DEVICE_REGISTRY.validate(record) is None
    assert client.app.state.ctx.catalog.apply(record)  # type: ignore[attr-defined]
    listed = client.get("/api/v1/devices", headers=users.admin).json()["rows"]
    one = client.get("/api/v1/devices/SUB-1", headers=users.admin).json()
    assert listed[0]["ts"] == "2026-03-01T00:00:00Z"
    assert one["ts"].replace("+00:00", "Z") == listed[0]["ts"]
    csv = client.get("/api/v1/devices", headers=users.admin, params={"format": "csv"}).text
    assert "2026-03-01T00:00:00Z" in csv
    # a registry time past year 9999 (the contract does not bound it) is unknown, not a 500
    far = {**record, "device_id": "SUB-2", "ts": 10**15}
    assert client.app.state.ctx.catalog.apply(far)  # type: ignore[attr-defined]
    r = client.get("/api/v1/devices", headers=users.admin, params={"q": "SUB-2"})
    assert r.status_code == 200 and r.json()["rows"][0]["ts"] is None
    assert client.get("/api/v1/devices/SUB-2", headers=users.admin).json()["ts"] is None


def _mock_ml(client: TestClient, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.ml = httpx.AsyncClient(base_url="http://ml", transport=httpx.MockTransport(handler))


def test_ml_unreachable_is_503_with_retry_after(client: TestClient, users: Users) -> None:
    for method, path in (("GET", "/api/v1/ml/health"), ("POST", "/api/v1/ml/score")):
        r = client.request(method, path, headers=users.admin,
                           json={"series": []} if method == "POST" else None)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
        assert "ML service" in r.json()["detail"]


@pytest.mark.parametrize(("status", "body", "detail"), [
    (422, {"detail": [{"type": "missing", "loc": ["body", "series"], "msg": "Field required",
                       "input": {}}]}, "series: Field required"),
    (409, {"detail": "no active model"}, "no active model"),
    (404, b"not json", "the ML service answered HTTP 404"),
    (503, {"detail": "loading"}, "loading"),
])
def test_ml_errors_come_back_in_the_one_schema(client: TestClient, users: Users, status: int,
                                               body: Any, detail: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    _mock_ml(client, answer)
    r = client.post("/api/v1/ml/score", headers=users.admin, json={"series": []})
    assert r.status_code == status
    got = ErrorBody.model_validate(r.json())
    assert got.detail == detail
    if status == 422:
        assert got.errors and got.errors[0].loc == ["body", "series"]
    if status == 503:
        assert int(r.headers["retry-after"]) >= 1


def test_ml_success_passes_through(client: TestClient, users: Users) -> None:
    _mock_ml(client, lambda request: httpx.Response(200, json={"scores": [0.5]}))
    r = client.post("/api/v1/ml/score", headers=users.admin, json={"series": []})
    assert r.status_code == 200 and r.json() == {"scores": [0.5]}


def test_rate_limit_defaults_engage_for_one_busy_user(client: TestClient,
                                                      users: Users) -> None:
    # the defaults, not the tests' unlimited ones
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    defaults = ApiSettings()
    ctx.limiter = RateLimiter(defaults.rate_limit_per_s, defaults.rate_limit_burst)
    h = users.headers("viewer")
    codes = [client.get("/api/v1/auth/me", headers=h) for _ in range(
        defaults.rate_limit_burst + 100)]
    refused = [r for r in codes if r.status_code == 429]
    assert refused, "one user's burst well past the limit was never refused"
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert ErrorBody.model_validate(refused[0].json()).detail.startswith("rate limit")


def test_route_specific_answers_are_documented(client: TestClient, users: Users) -> None:
    spec = client.get("/openapi.json").json()["paths"]
    cases = [
        (client.delete("/api/v1/users/admin", headers=users.admin),
         "/api/v1/users/{username}", "delete"),
        (client.get("/api/v1/quality/scorecards", headers=users.headers("viewer", ["R1"]),
                    params={"start": "2026-03-01", "end": "2026-03-02", "region_id": "R9"}),
         "/api/v1/quality/scorecards", "get"),
    ]
    for r, path, method in cases:
        assert r.status_code in (404, 409), r.text
        assert str(r.status_code) in spec[path][method]["responses"], (path, r.status_code)
    for path, method in [("/api/v1/devices/{device_id}", "patch"),
                         ("/api/v1/devices/{device_id}/retire", "post"),
                         ("/api/v1/devices", "post"), ("/api/v1/users", "post")]:
        assert "409" in spec[path][method]["responses"], (method, path)
