"""The ML service's Prometheus endpoint: requests, scoring by model kind, active model."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import GridLakeSettings
from ml.pipeline import FitOutcome, register
from ml.registry import LocalBackend, ModelRegistry
from ml.service.app import create_app
from tests.ml.ml_helpers import SiteData


def sample(text: str, name: str, **labels: str) -> float:
    """The value of series ``name{labels}`` in a scrape (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(LocalBackend(tmp_path / "models"))


def test_metrics_after_a_score_call(settings: GridLakeSettings, registry: ModelRegistry,
                                    trained_a: FitOutcome, site_a: SiteData) -> None:
    meta = register(registry, trained_a)
    client = TestClient(create_app(settings, registry=registry, activate=meta.model_id))
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    ok0 = sample(before.text, "gridlake_ml_scores_total", kind=meta.kind, endpoint="score",
                 outcome="ok")
    steps0 = sample(before.text, "gridlake_ml_scored_steps_total", kind=meta.kind,
                    endpoint="score")
    req0 = sample(before.text, "gridlake_ml_requests_total", method="POST", route="/score",
                  status="200")
    values = site_a.test[0].values[:500]
    assert client.post("/score", json={"series": [{"values": values.tolist()}]}
                       ).status_code == 200
    assert client.post("/score", json={"series": [{"values": [[1.0]]}]}).status_code == 422
    text = client.get("/metrics").text
    assert sample(text, "gridlake_ml_scores_total", kind=meta.kind, endpoint="score",
                  outcome="ok") == ok0 + 1
    assert sample(text, "gridlake_ml_scored_steps_total", kind=meta.kind,
                  endpoint="score") == steps0 + 500
    assert sample(text, "gridlake_ml_score_duration_seconds_count", kind=meta.kind,
                  endpoint="score") >= 1
    assert sample(text, "gridlake_ml_requests_total", method="POST", route="/score",
                  status="200") == req0 + 1
    assert sample(text, "gridlake_ml_requests_total", method="POST", route="/score",
                  status="422") >= 1
    assert sample(text, "gridlake_ml_active_model_info", model_id=meta.model_id,
                  kind=meta.kind) == 1
    assert sample(text, "gridlake_ml_active_model") == 1


def test_no_model_and_private_metrics(settings: GridLakeSettings,
                                      registry: ModelRegistry) -> None:
    client = TestClient(create_app(settings, registry=registry))
    text = client.get("/metrics").text
    assert sample(text, "gridlake_ml_active_model") == 0
    assert "gridlake_ml_active_model_info{" not in text
    private = settings.model_copy(update={"ml": settings.ml.model_copy(
        update={"metrics_public": False})})
    assert TestClient(create_app(private, registry=registry)).get(
        "/metrics").status_code == 404
