"""Image endpoints without the stack: the lake reader answers from rows and files made
here, the ML service is an in-process stand-in. Checks region scoping (404 outside), the
content's bytes and headers, the results, and that predictions are forwarded only after
the scope check."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.routes import images as image_routes
from infra.lake import LakeNotFound, LakeUnavailable
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import ADS_IMAGE_ANOMALY, ODS_EQUIPMENT_IMAGE
from lakehouse.time import from_ms
from tests.api.conftest import Users

DAY0 = 1_772_323_200_000  # 2026-03-01


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8 + seed, 6), (seed * 10 % 255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


FILES = {i: _png(i) for i in range(4)}
IDS = {i: hashlib.sha256(b).hexdigest() for i, b in FILES.items()}
PLACES = {0: ("TX-1", "R1"), 1: ("TX-2", "R2"), 2: ("SUB-1", "R1"), 3: ("TX-3", "R1")}


def _index_row(i: int) -> dict[str, Any]:
    asset, region = PLACES[i]
    return {"image_id": IDS[i], "path": f"/img/{IDS[i][:2]}/{IDS[i]}.png",
            "bytes": len(FILES[i]), "format": "PNG", "width": 8 + i, "height": 6,
            "asset_id": asset, "asset_type": "substation" if asset.startswith("SUB")
            else "transformer", "region_id": region, "substation_id": "SUB-1",
            "captured_ts": from_ms(DAY0 + i * 3_600_000),
            "camera": "infrared" if i % 2 else "visible", "inspector": None,
            "component": None, "label": "crack" if i == 3 else "normal",
            "source_file": f"f{i}.png", "import_batch": "b1", "imported_ts": from_ms(DAY0),
            "dt": "2026-03-01"}


def _result_row(i: int, kind: str, score: float) -> dict[str, Any]:
    row = _index_row(i)
    return {"image_id": IDS[i], "model_id": f"{kind}-1", "asset_id": row["asset_id"],
            "asset_type": row["asset_type"], "region_id": row["region_id"],
            "substation_id": row["substation_id"], "captured_ts": row["captured_ts"],
            "camera": row["camera"], "model_kind": kind, "score": score, "threshold": 0.5,
            "defect": score >= 0.5, "updated_ts": from_ms(DAY0), "dt": "2026-03-01"}


INDEX = [_index_row(i) for i in range(4)]
RESULTS = [_result_row(0, "image_classifier", 0.9), _result_row(0, "image_autoencoder", 0.2),
           _result_row(1, "image_classifier", 0.8), _result_row(3, "image_classifier", 0.1)]


class FakeLake:
    """Table versions and rows of the two tables; files by path."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {
            ODS_EQUIPMENT_IMAGE.name: INDEX, ADS_IMAGE_ANOMALY.name: RESULTS}
        self.reads = 0
        self.down = False

    def version(self, table: TableContract) -> str | None:
        if self.down:
            from api.lake_reader import LakeReadError
            raise LakeReadError("lake unavailable: test")
        return "v1" if table.name in self.tables else None

    def read_all(self, table: TableContract) -> tuple[str | None, list[dict[str, Any]]]:
        self.reads += 1
        return self.version(table), [dict(r) for r in self.tables.get(table.name, [])]

    def read_file(self, path: str) -> bytes:
        for i, r in enumerate(INDEX):
            if r["path"] == path and i != 2:  # image 2's file is lost
                return FILES[i]
        raise LakeNotFound(path)


@pytest.fixture
def lake(client: TestClient) -> FakeLake:
    fake = FakeLake()
    reader = client.app.state.ctx.lake  # type: ignore[attr-defined]
    reader.version = fake.version
    reader.read_all = fake.read_all
    reader.fs.read = fake.read_file
    return fake


def test_list_filters_pages_and_scopes(client: TestClient, lake: FakeLake,
                                       users: Users) -> None:
    r = client.get("/api/v1/images", headers=users.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4
    assert [x["image_id"] for x in body["rows"]] == [IDS[3], IDS[2], IDS[1], IDS[0]]
    assert body["rows"][0]["content_url"] == f"/api/v1/images/{IDS[3]}/content"
    assert "dt" not in body["rows"][0]

    def ids(params: dict[str, Any], headers: dict[str, str] = users.admin) -> list[str]:
        got = client.get("/api/v1/images", headers=headers, params=params)
        assert got.status_code == 200, got.text
        return [x["image_id"] for x in got.json()["rows"]]

    assert ids({"asset_id": "TX-2"}) == [IDS[1]]
    assert ids({"asset_type": "substation"}) == [IDS[2]]
    assert ids({"camera": "infrared"}) == [IDS[3], IDS[1]]
    assert ids({"label": "crack"}) == [IDS[3]]
    assert ids({"region_id": "R2"}) == [IDS[1]]
    assert ids({"start": "2026-03-01T01:00:00Z", "end": "2026-03-01T03:00:00Z"}) == \
        [IDS[2], IDS[1]]
    assert ids({"limit": 2, "offset": 1}) == [IDS[2], IDS[1]]
    r1 = users.headers("viewer", ["R1"])
    assert ids({}, r1) == [IDS[3], IDS[2], IDS[0]]
    assert ids({"asset_id": "TX-2"}, r1) == []
    assert client.get("/api/v1/images", headers=r1,
                      params={"region_id": "R2"}).status_code == 403
    assert client.get("/api/v1/images", headers=users.admin, params={
        "start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}).status_code == 422
    assert client.get("/api/v1/images").status_code == 401
    # the copy is read once and reused (the timeline did not move)
    assert lake.reads == 1


def test_one_image_content_and_results_scoped(client: TestClient, lake: FakeLake,
                                              users: Users) -> None:
    r1 = users.headers("viewer", ["R1"])
    r = client.get(f"/api/v1/images/{IDS[0]}", headers=r1)
    assert r.status_code == 200 and r.json()["asset_id"] == "TX-1"
    content = client.get(f"/api/v1/images/{IDS[0]}/content", headers=r1)
    assert content.status_code == 200 and content.content == FILES[0]
    assert content.headers["content-type"] == "image/png"
    assert content.headers["etag"] == f'"{IDS[0]}"'
    assert "immutable" in content.headers["cache-control"]
    again = client.get(f"/api/v1/images/{IDS[0]}/content",
                       headers={**r1, "If-None-Match": f'"{IDS[0]}"'})
    assert again.status_code == 304 and not again.content
    results = client.get(f"/api/v1/images/{IDS[0]}/results", headers=r1).json()
    assert {(x["model_kind"], x["defect"]) for x in results["rows"]} == {
        ("image_classifier", True), ("image_autoencoder", False)}
    # outside R1: the same 404 as an image that does not exist
    for path in ("", "/content", "/results"):
        outside = client.get(f"/api/v1/images/{IDS[1]}{path}", headers=r1)
        unknown = client.get(f"/api/v1/images/{'0' * 64}{path}", headers=r1)
        assert outside.status_code == unknown.status_code == 404
        assert client.get(f"/api/v1/images/{IDS[1]}{path}",
                          headers=users.admin).status_code == 200
    assert client.get("/api/v1/images/not-a-sha", headers=r1).status_code == 422
    lost = client.get(f"/api/v1/images/{IDS[2]}/content", headers=r1)
    assert lost.status_code == 404 and "missing" in lost.json()["detail"]


def test_anomalies_filtered_and_scoped(client: TestClient, lake: FakeLake,
                                       users: Users) -> None:
    def rows(params: dict[str, Any], headers: dict[str, str]) -> list[tuple[str, str]]:
        got = client.get("/api/v1/image-anomalies", headers=headers, params=params)
        assert got.status_code == 200, got.text
        return [(x["image_id"], x["model_kind"]) for x in got.json()["rows"]]

    admin = users.admin
    assert rows({"defect": "true"}, admin) == [(IDS[1], "image_classifier"),
                                               (IDS[0], "image_classifier")]
    assert rows({"model_kind": "image_autoencoder"}, admin) == [(IDS[0], "image_autoencoder")]
    assert len(rows({}, admin)) == 4
    r2 = users.headers("analyst", ["R2"])
    assert rows({}, r2) == [(IDS[1], "image_classifier")]
    assert rows({"defect": "false"}, r2) == []


def test_lake_down_is_503(client: TestClient, lake: FakeLake, users: Users) -> None:
    lake.down = True
    r = client.get("/api/v1/images", headers=users.admin)
    assert r.status_code == 503 and r.headers["retry-after"]


def test_predict_forwards_after_the_scope_check(client: TestClient, lake: FakeLake,
                                                users: Users,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    answer = {"image_id": IDS[0], "model_id": "m1", "model_kind": "image_classifier",
              "score": 0.9, "threshold": 0.5, "defect": True, "label": "defect",
              "heatmap": None, "heatmap_shape": None}

    def ml(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("kind") == "autoencoder":
            return httpx.Response(409, json={"detail": "no image_autoencoder: train one"})
        return httpx.Response(200, json=answer)

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    monkeypatch.setattr(ctx, "ml", httpx.AsyncClient(transport=httpx.MockTransport(ml),
                                                     base_url="http://ml"))
    r1 = users.headers("analyst", ["R1"])
    r = client.post(f"/api/v1/images/{IDS[0]}/predict", headers=r1,
                    params={"kind": "classifier", "model_id": "m1"})
    assert r.status_code == 200 and r.json() == answer
    assert seen[-1].url.path == f"/images/lake/{IDS[0]}/predict"
    assert dict(seen[-1].url.params) == {"kind": "classifier", "model_id": "m1"}
    assert seen[-1].headers["x-gridlake-regions"] == "R1"
    n = len(seen)
    assert client.post(f"/api/v1/images/{IDS[1]}/predict", headers=r1).status_code == 404
    assert len(seen) == n  # outside the scope: never forwarded
    assert client.post(f"/api/v1/images/{IDS[0]}/predict",
                       headers=users.headers("viewer", ["R1"])).status_code == 403
    no_model = client.post(f"/api/v1/images/{IDS[0]}/predict", headers=r1,
                           params={"kind": "autoencoder"})
    assert no_model.status_code == 409 and "train" in no_model.json()["detail"]
    # a raw upload is forwarded as it came
    up = client.post("/api/v1/ml/images/predict", headers={**r1, "Content-Type": "image/png"},
                     params={"kind": "classifier"}, content=FILES[1])
    assert up.status_code == 200
    assert seen[-1].url.path == "/images/predict" and seen[-1].content == FILES[1]
    assert seen[-1].headers["content-type"] == "image/png"
    assert client.post("/api/v1/ml/images/predict", headers=r1,
                       content=b"").status_code == 400


def test_upload_over_the_limit_is_413(client: TestClient, users: Users) -> None:
    limit = client.app.state.settings.images.max_bytes  # type: ignore[attr-defined]
    r = client.post("/api/v1/ml/images/predict", headers={
        **users.headers("analyst"), "Content-Type": "application/octet-stream"},
        content=b"0" * (limit + 1))
    assert r.status_code == 413


def test_ml_service_down_is_503(client: TestClient, users: Users) -> None:
    # nothing listens on the ML port of the throw-away settings
    r = client.post("/api/v1/ml/images/predict", headers={
        **users.headers("analyst"), "Content-Type": "image/png"}, content=FILES[0])
    assert r.status_code == 503 and r.headers["retry-after"]


def test_unavailable_hdfs_for_content_is_503(client: TestClient, lake: FakeLake,
                                            users: Users) -> None:
    def down(path: str) -> bytes:
        raise LakeUnavailable("WebHDFS unreachable")

    client.app.state.ctx.lake.fs.read = down  # type: ignore[attr-defined]
    r = client.get(f"/api/v1/images/{IDS[0]}/content", headers=users.admin)
    assert r.status_code == 503


def test_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/api/v1/images/{image_id}/content"]["get"]["responses"]
    assert set(content["200"]["content"]) == set(image_routes.MEDIA_TYPES.values())
    assert "304" in content
    upload = spec["paths"]["/api/v1/ml/images/predict"]["post"]
    assert "image/png" in upload["requestBody"]["content"]
    assert json.dumps(spec).count("/api/v1/image-anomalies") == 1
