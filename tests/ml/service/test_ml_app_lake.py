"""The service's lake endpoint: a device and time range scored from the DWD table."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lakehouse.time import parse_time_ms
from ml.data.lake_source import LakeSource
from ml.detection import score_devices
from ml.registry import ModelMetadata, ModelRegistry
from ml.service.app import create_app
from tests.ml.lake_helpers import TEST, LakeSlice

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scores_a_device_range_from_the_lake(ml_lake: LakeSlice,
                                             lake_model: ModelMetadata) -> None:
    s = ml_lake.settings
    registry = ModelRegistry.from_settings(s)
    client = TestClient(create_app(s, registry=registry, activate=lake_model.model_id,
                                   spark=ml_lake.spark))
    body = {"device_id": "ESS-01", "start": f"{TEST[0]}:00Z", "end": f"{TEST[1]}:00Z"}
    r = client.post("/score/lake", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    loaded = registry.load(lake_model.model_id)
    [series] = LakeSource(s, parse_time_ms(TEST[0]), parse_time_ms(TEST[1]),
                          devices=("ESS-01",), channels=lake_model.data.channels,
                          step_ms=lake_model.data.step_ms, spark=ml_lake.spark).load()
    assert lake_model.threshold is not None
    [want] = score_devices(loaded.scorer(), [series], lake_model.threshold,
                           lake_model.data.step_ms)
    assert out["ts_ms"] == series.ts_ms.tolist() and len(out["ts_ms"]) == 3.5 * 360
    assert out["threshold"] == lake_model.threshold and out["contract"] == "ess_bms"
    np.testing.assert_allclose(np.array(out["scores"], dtype=float), want.scores, atol=1e-6)
    assert out["anomalous"] == want.anomalous.tolist()
    assert [(i["steps"], i["ongoing"]) for i in out["intervals"]] == [
        (i.steps, i.ongoing) for i in want.intervals]

    def status(**change: str) -> int:
        return client.post("/score/lake", json={**body, **change}).status_code

    assert status(device_id="ESS-99") == 404
    assert status(end=body["start"]) == 422
    assert status(end=f"{TEST[0][:-2]}35:00Z") == 422  # 30 steps: shorter than one window
    assert status(start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z") == 413
