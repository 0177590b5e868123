from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from infra.settings import GridLakeSettings
from ml.images.data import decode_image
from ml.images.training import ImageFitOutcome, register_image_model
from ml.registry import MODEL_FILE, ImageModelMetadata, LocalBackend, ModelRegistry
from ml.service.app import create_app
from tests.ml.images.image_helpers import synthetic_image


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(LocalBackend(tmp_path / "models"))


@pytest.fixture
def image_models(registry: ModelRegistry, trained_classifier: ImageFitOutcome,
                 trained_autoencoder: ImageFitOutcome) -> tuple[ImageModelMetadata,
                                                                ImageModelMetadata]:
    return (register_image_model(registry, trained_classifier),
            register_image_model(registry, trained_autoencoder))


def _png(defect: bool, seed: int = 1, size: int = 40) -> bytes:
    buf = io.BytesIO()
    synthetic_image(np.random.default_rng(seed), defect, size).save(buf, "PNG")
    return buf.getvalue()


def _post(client: TestClient, data: bytes, kind: str = "classifier",
          ctype: str = "image/png", **params: str) -> Response:
    return client.post("/images/predict", params={"kind": kind, **params}, content=data,
                       headers={"Content-Type": ctype})


def test_service_scores_equal_the_library(
        settings: GridLakeSettings, registry: ModelRegistry,
        image_models: tuple[ImageModelMetadata, ImageModelMetadata],
        trained_classifier: ImageFitOutcome, trained_autoencoder: ImageFitOutcome) -> None:
    clf, ae = image_models
    client = TestClient(create_app(settings, registry=registry))
    for defect in (False, True):
        data = _png(defect)
        image = decode_image(data, 32)[None]
        r = _post(client, data)
        assert r.status_code == 200, r.text
        out = r.json()
        expected = float(trained_classifier.image_model().predict(image).scores[0])
        assert out["model_id"] == clf.model_id and out["model_kind"] == "image_classifier"
        assert out["score"] == pytest.approx(expected, abs=1e-6)
        assert out["defect"] == (expected >= clf.threshold) and out["heatmap"] is None
        assert out["label"] == ("defect" if out["defect"] else "normal")
        r = _post(client, data, kind="autoencoder", ctype="application/octet-stream")
        out = r.json()
        pred = trained_autoencoder.image_model().predict(image)
        assert out["model_id"] == ae.model_id and out["threshold"] == ae.threshold
        assert out["score"] == pytest.approx(float(pred.scores[0]), abs=1e-6)
        assert out["heatmap_shape"] == [4, 4]
        assert np.allclose(out["heatmap"], pred.heatmaps[0], atol=1e-6)  # type: ignore[index]
        assert out["image_id"] is None
    # the defect image is flagged by both models
    assert _post(client, _png(True)).json()["defect"]
    r = _post(client, _png(True), kind="autoencoder")
    assert r.json()["defect"]


def test_bad_bodies_get_a_reason(settings: GridLakeSettings, registry: ModelRegistry,
                                 image_models: tuple[ImageModelMetadata,
                                                     ImageModelMetadata]) -> None:
    small = settings.model_copy(update={"images": settings.images.model_copy(
        update={"max_bytes": 5000, "max_pixels": 100 * 100})})
    client = TestClient(create_app(small, registry=registry))
    r = _post(client, b"just some text", ctype="text/plain")
    assert r.status_code == 400 and "Content-Type" in r.json()["detail"]
    r = _post(client, b"just some text", ctype="application/octet-stream")
    assert r.status_code == 400 and "not an image" in r.json()["detail"]
    r = _post(client, _png(False)[:300])
    assert r.status_code == 400 and "truncated" in r.json()["detail"]
    buf = io.BytesIO()
    Image.new("RGB", (200, 200)).save(buf, "PNG")
    r = _post(client, buf.getvalue())
    assert r.status_code == 400 and "too large" in r.json()["detail"]
    r = _post(client, b"\x89PNG" + b"0" * 6000)
    assert r.status_code == 413
    r = _post(client, b"")
    assert r.status_code == 400
    r = _post(client, _png(False), kind="vgg")
    assert r.status_code == 422
    r = _post(client, _png(False), model_id="no-such-model")
    assert r.status_code == 404
    clf, ae = image_models
    r = _post(client, _png(False), kind="classifier", model_id=ae.model_id)
    assert r.status_code == 422


def test_no_model_and_corrupt_model(settings: GridLakeSettings, registry: ModelRegistry,
                                    trained_classifier: ImageFitOutcome,
                                    tmp_path: Path) -> None:
    client = TestClient(create_app(settings, registry=registry))
    r = _post(client, _png(False))
    assert r.status_code == 409 and "gridlake ml images train" in r.json()["detail"]
    meta = register_image_model(registry, trained_classifier)
    pt = tmp_path / "models" / meta.model_id / MODEL_FILE
    pt.write_bytes(pt.read_bytes()[:100])
    client = TestClient(create_app(settings, registry=registry))
    r = _post(client, _png(False))
    assert r.status_code == 409 and "checksum" in r.json()["detail"]


def test_image_models_listing(settings: GridLakeSettings, registry: ModelRegistry,
                              image_models: tuple[ImageModelMetadata, ImageModelMetadata],
                              trained_classifier: ImageFitOutcome) -> None:
    clf, ae = image_models
    newer = register_image_model(registry, trained_classifier)
    pinned = settings.model_copy(update={"images": settings.images.model_copy(
        update={"active_classifier": clf.model_id})})
    client = TestClient(create_app(pinned, registry=registry))
    models = client.get("/images/models").json()
    assert [(m["model_id"], m["kind"], m["active"]) for m in models] == [
        (clf.model_id, "image_classifier", True), (ae.model_id, "image_autoencoder", True),
        (newer.model_id, "image_classifier", False)]
    assert models[0]["metrics"]["roc_auc"] == clf.metrics["roc_auc"]  # type: ignore[index]
    assert models[0]["image_size"] == 32 and models[0]["data"]["split_seed"] == 0
    assert _post(client, _png(False)).json()["model_id"] == clf.model_id
    listing = client.get("/models").json()  # the general listing shows every kind
    assert {m["kind"] for m in listing} == {"image_classifier", "image_autoencoder"}
    assert client.get("/health").json()["active_model"] is None  # no AnomalyBERT model
    r = client.post(f"/models/{clf.model_id}/activate")
    assert r.status_code == 404 and "image_classifier" in r.json()["detail"]
    r = client.post(f"/images/lake/{'z' * 64}/predict")
    assert r.status_code == 422  # not a sha-256 id
