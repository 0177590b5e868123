"""Batch scoring of lake images into ``ads_image_anomaly`` and lake prediction in the
service, on the live stack (a lake, image store and registry of the test's own)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from lakehouse.contracts.tables import ADS_IMAGE_ANOMALY, ODS_EQUIPMENT_IMAGE
from lakehouse.time import dt_of, parse_time_ms
from ml.data.lake_source import load_table, upsert_rows
from ml.images.data import decode_image
from ml.images.scoring import ImageScoreRequest, run_image_scoring
from ml.images.training import ImageFitOutcome, register_image_model
from ml.registry import ModelRegistry
from ml.service.app import create_app
from tests.ml.images.image_helpers import synthetic_image
from tests.ml.lake_helpers import isolated

pytestmark = pytest.mark.integration


def _png(defect: bool, seed: int) -> bytes:
    buf = io.BytesIO()
    synthetic_image(np.random.default_rng(seed), defect, 40).save(buf, "PNG")
    return buf.getvalue()


def _index_rows(settings: GridLakeSettings, files: list[tuple[bytes, str, str]],
                batch: str) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """Store files content-addressed on HDFS; their index rows (as the import writes)."""
    rows, blobs = [], {}
    captured = parse_time_ms("2024-06-01T10:00")
    with WebHdfs.from_settings(settings) as fs:
        for i, (data, label, region) in enumerate(files):
            sha = hashlib.sha256(data).hexdigest()
            path = f"{settings.images.hdfs_root}/{sha[:2]}/{sha}.png"
            fs.write(path, data)
            blobs[sha] = data
            rows.append({"image_id": sha, "path": path, "bytes": len(data), "format": "PNG",
                         "width": 40, "height": 40, "asset_id": f"TX-0000{i}",
                         "asset_type": "transformer", "region_id": region,
                         "substation_id": "SUB-01", "captured_ts": captured + i * 60_000,
                         "camera": "visible", "inspector": "t", "component": "bushing",
                         "label": label, "source_file": f"img/{i}.png", "import_batch": batch,
                         "imported_ts": captured, "dt": dt_of(captured)})
    return pd.DataFrame(rows, columns=ODS_EQUIPMENT_IMAGE.field_names), blobs


def test_batch_scoring_and_lake_prediction(stack: GridLakeSettings, tmp_path: Path,
                                           trained_classifier: ImageFitOutcome,
                                           trained_autoencoder: ImageFitOutcome) -> None:
    from infra.spark import spark_scope

    base, _ = isolated(stack, tmp_path / "models")
    root = base.hdfs.lake_root.rsplit("/", 1)[0]
    settings = base.model_copy(update={"images": base.images.model_copy(
        update={"hdfs_root": f"{root}/images"})})
    try:
        with spark_scope(settings, "test-ml-images") as spark:
            reg = ModelRegistry.from_settings(settings)
            clf = register_image_model(reg, trained_classifier)
            ae = register_image_model(reg, trained_autoencoder)
            first, blobs = _index_rows(settings, [(_png(False, 1), "normal", "R1"),
                                                  (_png(True, 2), "crack", "R2"),
                                                  (_png(True, 3), "", "R1"),
                                                  (b"not an image at all", "", "R2")], "b1")
            second, more = _index_rows(settings, [(_png(False, 4), "normal", "R3")], "b2")
            upsert_rows(spark, settings, ODS_EQUIPMENT_IMAGE, pd.concat([first, second]))
            blobs.update(more)
            bad_id = str(first["image_id"].iloc[3])

            out = run_image_scoring(settings, ImageScoreRequest(batches=("b1",)), spark=spark)
            assert out.model_id == clf.model_id  # the newest classifier
            assert (out.candidates, out.scored, out.rows_written) == (4, 3, 3)
            assert [s.item for s in out.skipped] == [bad_id] and "not an image" in \
                out.skipped[0].reason
            ads = load_table(spark, settings, ADS_IMAGE_ANOMALY).toPandas().set_index("image_id")
            assert set(ads.index) == set(first["image_id"].iloc[:3])
            lib = trained_classifier.image_model()
            for _, row in first.iloc[:3].iterrows():
                got = ads.loc[row["image_id"]]
                score = float(lib.predict(decode_image(blobs[row["image_id"]], 32)[None])
                              .scores[0])
                assert got["score"] == pytest.approx(score, abs=1e-6)
                assert got["defect"] == (score >= clf.threshold)
                assert (got["region_id"], got["asset_id"], got["camera"]) == (
                    row["region_id"], row["asset_id"], "visible")
                assert got["model_kind"] == "image_classifier" and got["model_id"] == clf.model_id
            assert bool(ads.loc[first["image_id"].iloc[1], "defect"])  # the crack is flagged

            again = run_image_scoring(settings, ImageScoreRequest(), spark=spark)
            # b1's scored images are left out; the bad file is tried again; b2 is new
            assert (again.candidates, again.already_scored, again.scored) == (5, 3, 1)
            ae_run = run_image_scoring(settings, ImageScoreRequest(kind="image_autoencoder",
                                                                   batches=("b2",)), spark=spark)
            assert ae_run.model_id == ae.model_id and ae_run.scored == 1
            ads = load_table(spark, settings, ADS_IMAGE_ANOMALY).toPandas()
            assert len(ads) == 5 and set(ads["model_id"]) == {clf.model_id, ae.model_id}

            client = TestClient(create_app(settings, registry=reg, spark=spark))
            sha = str(first["image_id"].iloc[1])
            r = client.post(f"/images/lake/{sha}/predict", params={"kind": "autoencoder"})
            assert r.status_code == 200, r.text
            body = r.json()
            expected = trained_autoencoder.image_model().predict(
                decode_image(blobs[sha], 32)[None])
            assert body["image_id"] == sha and body["model_id"] == ae.model_id
            assert body["score"] == pytest.approx(float(expected.scores[0]), abs=1e-6)
            assert body["heatmap_shape"] == [4, 4]
            r = client.post(f"/images/lake/{'0' * 64}/predict")
            assert r.status_code == 404
            r = client.post(f"/images/lake/{bad_id}/predict")
            assert r.status_code == 422 and "not an image" in r.json()["detail"]
    finally:
        with WebHdfs.from_settings(settings) as fs:
            fs.delete(root, recursive=True)
