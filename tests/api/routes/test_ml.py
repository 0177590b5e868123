"""The ML proxy against a real ML service (empty local model registry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import GridLakeSettings
from tests.api.ads_data import World
from tests.api.conftest import Users, api_settings, served

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ml_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Any]]]:
    """A real ML service; yields its URL and the identity headers of each request it got."""
    from ml.service.app import create_app as create_ml_app

    home = tmp_path_factory.mktemp("ml")
    cfg = GridLakeSettings(_env_file=None, home=home)  # type: ignore[call-arg]
    cfg.ml.registry, cfg.ml.local_dir = "local", home / "models"
    app = create_ml_app(cfg)
    seen: list[Any] = []

    @app.middleware("http")
    async def record(request: Any, call_next: Any) -> Any:
        seen.append({k: v for k, v in request.headers.items() if k.startswith("x-")})
        return await call_next(request)

    with served(app) as url:
        yield url, seen


@pytest.fixture(scope="module")
def proxied(world: World, ml_service: tuple[str, list[Any]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    cfg = api_settings(world.settings, tmp_path_factory.mktemp("api-ml"),
                       ml_url=ml_service[0])
    with TestClient(create_app(cfg)) as c:
        assert c.app.state.ctx.catalog.wait_loaded(30)  # type: ignore[attr-defined]
        yield c


def test_proxy_passes_identity_and_answers(proxied: TestClient, world: World,
                                           ml_service: tuple[str, list[Any]]) -> None:
    users = Users(proxied)
    h = users.headers("analyst", ["R1"])
    seen = ml_service[1]
    seen.clear()
    r = proxied.get("/api/v1/ml/models", headers=h)
    assert r.status_code == 200 and r.json() == []
    assert seen[-1]["x-gridlake-user"] == "analyst-R1"
    assert seen[-1]["x-gridlake-role"] == "analyst"
    assert seen[-1]["x-gridlake-regions"] == "R1" and len(seen[-1]["x-request-id"]) == 16
    assert proxied.get("/api/v1/ml/health", headers=h).json()["active_model"] is None
    # the ML service's own answers come back as they are: no model yet → 409
    r1_dev = next(d for d, rec in world.registry.items() if rec["region_id"] == "R1")
    r = proxied.post("/api/v1/ml/score", headers=h, json={
        "series": [{"device_id": r1_dev, "values": [[1.0, 2.0]] * 8}]})
    assert r.status_code == 409 and "no active model" in r.json()["detail"]
    r = proxied.post("/api/v1/ml/models/none-such/activate", headers=users.admin)
    assert r.status_code == 404
    # the ML service refused it: audited as a failed activation, with its status
    last = proxied.get("/api/v1/audit", headers=users.admin).json()["entries"][0]
    assert last["action"] == "ml_activate_failed" and last["target"] == "none-such"
    assert last["detail"]["status"] == 404, last


def test_proxy_enforces_roles_and_regions(proxied: TestClient, world: World,
                                          ml_service: tuple[str, list[Any]]) -> None:
    users = Users(proxied)
    seen = ml_service[1]
    seen.clear()
    r2_dev = next(d for d, rec in world.registry.items() if rec["region_id"] == "R2")
    analyst_r1 = users.headers("analyst", ["R1"])
    for path, body in [("/api/v1/ml/score", {"series": [{"device_id": r2_dev,
                                                         "values": [[1.0]]}]}),
                       ("/api/v1/ml/score/lake", {"device_id": r2_dev,
                                                  "start": "2026-03-01T00:00:00Z",
                                                  "end": "2026-03-02T00:00:00Z"})]:
        assert proxied.post(path, json=body, headers=analyst_r1).status_code == 403
    assert proxied.post("/api/v1/ml/score/lake", headers=analyst_r1, json={
        "device_id": "NOPE", "start": "2026-03-01", "end": "2026-03-02"}).status_code == 404
    viewer = users.headers("viewer")
    assert proxied.get("/api/v1/ml/models", headers=viewer).status_code == 403
    assert proxied.post("/api/v1/ml/models/x/activate",
                        headers=users.headers("operator")).status_code == 403
    assert proxied.post("/api/v1/ml/score", content=b"{not json", headers={
        **analyst_r1, "Content-Type": "application/json"}).status_code == 422
    assert seen == []  # nothing refused reached the ML service


def test_proxy_body_limit_is_the_ml_one(tmp_path: Path, settings: GridLakeSettings) -> None:
    cfg = api_settings(settings, tmp_path / "home", ml_max_body_bytes=4096,
                       max_body_bytes=2048)
    with TestClient(create_app(cfg)) as c:
        h = Users(c).admin
        body = b'{"series": [' + b" " * 3000 + b"]}"
        r = c.post("/api/v1/ml/score", content=body,
                   headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 503  # over the general limit, under the ML one: forwarded
        r = c.post("/api/v1/ml/score", content=body + b" " * 5000,
                   headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 413
