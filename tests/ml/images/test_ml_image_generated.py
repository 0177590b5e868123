"""The image models on views of the procedural generator (``mock_devices.images``).

The simpler synthetic set of ``image_helpers`` proves that the models beat chance where
the signal is learnable in seconds. The generator's defects are not: a crack or a missing
part is a few pixels at 64 px, and within a test's CPU budget (and within the 5–8 minute
runs of docs/images.md, ``## Models``) neither model beats chance on held-out generated
views: the ResNet memorises its training views instead. These tests pin what does hold
(the set is labelled as planned, the classifier fits its training split, metrics are
reported on the held-out split) and keep the held-out target as an expected failure, so
that a change that makes the models generalise shows up as XPASS.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from ml.images.data import ImageSet, decode_image
from ml.images.training import ImageFitOutcome, ImageTrainConfig, fit_image_model
from ml.models.resnet import ResNetConfig
from ml.registry import IMAGE_CLASSIFIER
from mock_devices.images.batch import iter_batch

SIZE = 64
COUNT = 400


@pytest.fixture(scope="module")
def generated_set() -> ImageSet:
    """400 generated views (balanced set), decoded from file bytes like imported images."""
    rows, images = [], []
    for row, arr in iter_batch(COUNT, kind="balanced", seed=3, size=(96, 160)):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        images.append(decode_image(buf.getvalue(), SIZE))
        rows.append(row)
    labels = np.array([0 if r["label"] == "normal" else 1 for r in rows], dtype=np.int64)
    return ImageSet(np.stack(images), labels, [r["file"] for r in rows], rows,
                    {"source": "generated", "seed": 3})


@pytest.fixture(scope="module")
def generated_classifier(generated_set: ImageSet) -> ImageFitOutcome:
    return fit_image_model(IMAGE_CLASSIFIER, generated_set,
                           ResNetConfig(image_size=SIZE, width=16, pool="max"),
                           ImageTrainConfig(epochs=30, lr=2e-3, seed=0))


def test_generated_set_is_labelled_as_planned(generated_set: ImageSet) -> None:
    assert len(generated_set) == COUNT and int(generated_set.labels.sum()) == COUNT // 2
    assert {r["camera"] for r in generated_set.rows} == {"visible", "infrared"}
    for row, label in zip(generated_set.rows, generated_set.labels, strict=True):
        assert (row["label"] == "normal") == (label == 0)


@pytest.mark.slow
def test_classifier_fits_generated_training_views(
        generated_classifier: ImageFitOutcome) -> None:
    losses = generated_classifier.extra["losses"]
    # measured: 0.691 → 0.022 (seed 0; held-out ROC AUC 0.40, i.e. chance). A frozen
    # network, a detached loss or a lost optimiser step stays at ln 2 ≈ 0.69.
    assert losses[0] > 0.6 and losses[-1] < 0.5 * losses[0]
    m = generated_classifier.metrics
    assert m is not None and m.n == 40 and m.defects == 20
    assert not math.isnan(m.roc_auc) and 0.0 <= m.accuracy <= 1.0


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="the ResNet memorises generated views instead of "
                   "generalising within a CPU test budget (docs/images.md, ## Models)")
def test_classifier_beats_chance_on_generated_held_out_views(
        generated_classifier: ImageFitOutcome) -> None:
    m = generated_classifier.metrics
    assert m is not None and m.roc_auc >= 0.65
