from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.images.data import ImageDataError, ImageSet, load_folder
from ml.images.inference import (
    NoImageModelError,
    active_image_model_id,
    load_image_model,
)
from ml.images.training import (
    ImageFitOutcome,
    ImageTrainConfig,
    choose_threshold,
    evaluate_image_model,
    fit_image_model,
    register_image_model,
    score_metrics,
)
from ml.models.resnet import ResNetConfig
from ml.registry import (
    MODEL_FILE,
    CorruptModelError,
    LocalBackend,
    ModelRegistry,
    WrongKindError,
)
from tests.ml.images.image_helpers import write_set


def test_classifier_beats_chance_on_held_out_images(trained_classifier: ImageFitOutcome,
                                                    image_set: ImageSet) -> None:
    m = trained_classifier.metrics
    assert m is not None and m.n == 24 and m.defects == 12  # 8:1:1 of 240, stratified
    # measured: ROC AUC 1.0, PR AUC 1.0, accuracy 0.875 (seed 0); chance is 0.5
    assert m.roc_auc >= 0.85 and m.pr_auc >= 0.8 and m.accuracy >= 0.75
    assert trained_classifier.threshold_method == "val_max_f1"
    lineage = trained_classifier.data
    assert (lineage["train"], lineage["val"], lineage["test"]) == (192, 24, 24)
    assert lineage["sha256"] == image_set.lineage["sha256"] and lineage["split_seed"] == 0
    assert trained_classifier.extra["train_s"] > 0
    assert trained_classifier.extra["infer_images_per_s"] > 0


def test_autoencoder_trains_on_normals_and_beats_chance(
        trained_autoencoder: ImageFitOutcome) -> None:
    m = trained_autoencoder.metrics
    assert m is not None
    # measured: ROC AUC 1.0 (seed 0); chance is 0.5
    assert m.roc_auc >= 0.85 and m.pr_auc >= 0.8 and m.accuracy >= 0.75
    assert trained_autoencoder.data["trained_on"] == 96  # normal training images only
    cal = trained_autoencoder.calibration
    assert cal["sigma"] > 0 and cal["cell_scale"] > 0
    pred = trained_autoencoder.image_model().predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert pred.heatmaps is not None and pred.heatmaps.shape == (2, 4, 4)  # 32 px / 8
    assert float(pred.heatmaps.min()) >= 0.0 and float(pred.heatmaps.max()) <= 1.0


def test_autoencoder_scores_defects_above_normals(trained_autoencoder: ImageFitOutcome,
                                                  image_set: ImageSet) -> None:
    pred = trained_autoencoder.image_model().predict(image_set.images)
    normal = pred.scores[image_set.labels == 0]
    defect = pred.scores[image_set.labels == 1]
    assert abs(float(np.median(normal))) < 1.5  # calibrated: normals near 0 (in sigmas)
    assert float(np.median(defect)) > float(np.quantile(normal, 0.9))
    heat = pred.heatmaps
    assert heat is not None
    assert heat[image_set.labels == 1].max(axis=(1, 2)).mean() \
        > heat[image_set.labels == 0].max(axis=(1, 2)).mean()


@pytest.mark.parametrize("fixture", ["trained_classifier", "trained_autoencoder"])
def test_registry_round_trip_gives_identical_outputs(
        fixture: str, request: pytest.FixtureRequest, tmp_path: Path,
        image_set: ImageSet) -> None:
    outcome: ImageFitOutcome = request.getfixturevalue(fixture)
    reg = ModelRegistry(LocalBackend(tmp_path / "models"))
    meta = register_image_model(reg, outcome)
    assert meta.model_id.startswith(outcome.kind.replace("_", "-") + "-")
    loaded = load_image_model(reg, meta.model_id)
    a = outcome.image_model().predict(image_set.images[:40])
    b = loaded.model.predict(image_set.images[:40])
    assert np.array_equal(a.scores, b.scores)
    if a.heatmaps is not None:
        assert b.heatmaps is not None and np.array_equal(a.heatmaps, b.heatmaps)
    stored = json.loads((tmp_path / "models" / meta.model_id / "metadata.json").read_text())
    assert stored["kind"] == outcome.kind and stored["threshold"] == outcome.threshold
    assert stored["metrics"]["roc_auc"] == outcome.metrics.roc_auc  # type: ignore[union-attr]
    assert stored["data"]["sha256"] == image_set.lineage["sha256"]
    assert stored["preprocess"]["image_size"] == 32
    assert [(m.model_id, m.kind) for m in reg.list_models()] == [(meta.model_id, outcome.kind)]
    assert reg.series_models() == [] and reg.image_models(outcome.kind) == [meta]
    with pytest.raises(WrongKindError, match="not AnomalyBERT"):
        reg.load(meta.model_id)
    assert active_image_model_id(reg, outcome.kind) == meta.model_id


def test_corrupt_or_mismatched_image_model_files(tmp_path: Path,
                                                 trained_autoencoder: ImageFitOutcome) -> None:
    reg = ModelRegistry(LocalBackend(tmp_path))
    meta = register_image_model(reg, trained_autoencoder)
    pt = tmp_path / meta.model_id / MODEL_FILE
    good = pt.read_bytes()
    pt.write_bytes(good[:200])
    with pytest.raises(CorruptModelError, match="checksum"):
        load_image_model(reg, meta.model_id)
    pt.write_bytes(good)
    meta_file = tmp_path / meta.model_id / "metadata.json"
    stored = json.loads(meta_file.read_text())
    stored["model_config"]["base"] = 16  # shapes no longer match the weights
    meta_file.write_text(json.dumps(stored))
    with pytest.raises(CorruptModelError, match="cannot load"):
        load_image_model(reg, meta.model_id)
    meta_file.write_text("{broken")
    with pytest.raises(CorruptModelError):
        load_image_model(reg, meta.model_id)
    with pytest.raises(NoImageModelError, match="gridlake ml images train"):
        active_image_model_id(reg, "image_classifier")


def test_evaluate_on_other_data(trained_classifier: ImageFitOutcome, tmp_path: Path) -> None:
    other = load_folder(write_set(tmp_path / "other", 60, 0.5, seed=9), 32)
    m = evaluate_image_model(trained_classifier.image_model(), other,
                             trained_classifier.threshold)
    assert m.n == 60 and m.roc_auc >= 0.8


def test_threshold_and_metric_helpers() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    labels = np.array([0, 0, 1, 1, 1])
    th, method = choose_threshold(scores, labels)
    assert (th, method) == (0.3, "val_max_f1")
    m = score_metrics(scores, labels, th)
    assert (m.accuracy, m.f1, m.roc_auc, m.pr_auc) == (1.0, 1.0, 1.0, 1.0)
    th, method = choose_threshold(np.linspace(0, 1, 101), np.zeros(101))
    assert method == "val_normal_q99" and th == pytest.approx(0.99)


def test_classifier_needs_both_classes(image_set: ImageSet) -> None:
    normals = image_set.subset(np.flatnonzero(image_set.labels == 0))
    with pytest.raises(ImageDataError, match="defect"):
        fit_image_model("image_classifier", normals,
                        ResNetConfig(image_size=32, width=8, small_input=True),
                        ImageTrainConfig(epochs=1))
    with pytest.raises(ValueError, match="px"):
        fit_image_model("image_classifier", image_set, ResNetConfig(image_size=64),
                        ImageTrainConfig(epochs=1))
