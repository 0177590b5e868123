from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from infra.settings import GridLakeSettings
from ml.pipeline import FitOutcome, register
from ml.registry import MODEL_FILE, LocalBackend, ModelMetadata, ModelRegistry
from ml.service.app import create_app
from tests.ml.ml_helpers import SiteData


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(LocalBackend(tmp_path / "models"))


@pytest.fixture
def two_models(registry: ModelRegistry, trained_a: FitOutcome) -> tuple[ModelMetadata,
                                                                        ModelMetadata]:
    first = register(registry, trained_a)
    second = registry.save(trained_a.model, trained_a.result.scaler, trained_a.data, {},
                           threshold=0.99, parent_id=first.model_id)
    return first, second


def _client(settings: GridLakeSettings, registry: ModelRegistry,
            activate: str | None = None) -> TestClient:
    return TestClient(create_app(settings, registry=registry, activate=activate))


def _body(values: np.ndarray, device: str = "ESS-01") -> dict[str, object]:
    return {"series": [{"device_id": device, "values": values.tolist()}]}


def test_scores_match_the_library(settings: GridLakeSettings, registry: ModelRegistry,
                                  two_models: tuple[ModelMetadata, ModelMetadata],
                                  trained_a: FitOutcome, site_a: SiteData) -> None:
    first, _ = two_models
    client = _client(settings, registry, activate=first.model_id)
    assert client.get("/health").json() == {"status": "ok", "active_model": first.model_id}
    parts = [site_a.test[0].values[3000:4000], site_a.test[1].values[:700]]
    body = {"series": [{"device_id": "a", "values": parts[0].tolist()},
                       {"values": parts[1].tolist()}]}
    r = client.post("/score", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_id"] == first.model_id and out["threshold"] == trained_a.threshold
    assert out["channels"] == list(site_a.description.channels)
    expected = trained_a.scorer().score(parts)
    for res, exp in zip(out["results"], expected, strict=True):
        assert np.allclose(res["scores"], exp, rtol=0, atol=1e-6)
        assert res["anomalous"] == (exp >= trained_a.threshold).tolist()
        assert res["anomalous_steps"] == int((exp >= trained_a.threshold).sum())
    assert out["results"][0]["device_id"] == "a" and out["results"][1]["device_id"] is None


def test_list_and_hot_swap(settings: GridLakeSettings, registry: ModelRegistry,
                           two_models: tuple[ModelMetadata, ModelMetadata],
                           site_a: SiteData) -> None:
    first, second = two_models
    client = _client(settings, registry)  # newest model activated at start
    models = client.get("/models").json()
    assert [m["model_id"] for m in models] == [first.model_id, second.model_id]
    assert [m["active"] for m in models] == [False, True]
    assert models[1]["parent_id"] == first.model_id and models[0]["window"] == 256
    assert models[0]["f1"] is not None and models[0]["contract"] == "ess_bms"
    body = _body(site_a.test[0].values[:600])
    seen: list[str] = []
    errors: list[int] = []

    def hammer() -> None:
        for _ in range(5):
            r = client.post("/score", json=body)
            if r.status_code != 200:
                errors.append(r.status_code)
            else:
                seen.append(r.json()["model_id"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for mid in (first.model_id, second.model_id, first.model_id):
        assert client.post(f"/models/{mid}/activate").json()["active"] is True
    for t in threads:
        t.join()
    assert not errors and set(seen) <= {first.model_id, second.model_id}
    assert client.get("/health").json()["active_model"] == first.model_id
    assert client.post("/score", json=body).json()["threshold"] == first.threshold


def test_bad_input_is_a_clear_4xx(settings: GridLakeSettings, registry: ModelRegistry,
                                  two_models: tuple[ModelMetadata, ModelMetadata],
                                  site_a: SiteData) -> None:
    first, second = two_models
    client = _client(settings, registry, activate=first.model_id)
    ok = site_a.test[0].values[:300]

    def post(payload: object) -> tuple[int, str]:
        r = client.post("/score", json=payload)
        return r.status_code, str(r.json()["detail"])

    assert post(_body(ok[:, :5])) == (422, "series 0: expected 9 channels per step, step 0 "
                                            "has 5")
    code, detail = post(_body(ok[:100]))
    assert code == 422 and "at least 256 steps" in detail
    with_null = ok.tolist()
    with_null[7][2] = None
    code, detail = post({"series": [{"values": with_null}]})
    assert code == 422 and "NaN" in detail
    raw = json.dumps(_body(np.where(np.arange(300)[:, None] == 5, np.nan, ok)))
    r = client.post("/score", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "1 step(s) contain NaN" in r.json()["detail"]
    ragged = ok.tolist()
    ragged[3] = ragged[3][:8]
    assert post({"series": [{"values": ragged}]})[0] == 422
    assert post({"series": []})[0] == 422
    assert post({"nothing": 1})[0] == 422
    r = client.post("/models/no-such-model/activate")
    assert r.status_code == 404 and "no model" in r.json()["detail"]
    pt = registry.backend.root / second.model_id / MODEL_FILE  # type: ignore[attr-defined]
    pt.write_bytes(b"corrupt")
    r = client.post(f"/models/{second.model_id}/activate")
    assert r.status_code == 422 and "checksum" in r.json()["detail"]
    assert client.get("/health").json()["active_model"] == first.model_id  # still serving
    assert client.post("/score", json=_body(ok)).status_code == 200
    # a range outside years 1-9999 in UTC is refused before the lake is read
    r = client.post("/score/lake", json={"device_id": "ESS-01",
                                         "start": "0001-01-01T00:00:00+05:00",
                                         "end": "0001-01-02T00:00:00Z"})
    assert r.status_code == 422 and r.json()["detail"].startswith("start:")


def test_no_model(settings: GridLakeSettings, registry: ModelRegistry) -> None:
    client = _client(settings, registry)
    assert client.get("/health").json()["active_model"] is None
    assert client.get("/models").json() == []
    r = client.post("/score", json={"series": [{"values": [[1.0]]}]})
    assert r.status_code == 409 and "activate" in r.json()["detail"]
