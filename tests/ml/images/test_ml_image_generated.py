"""The image models on views of the procedural generator (``mock_devices.images``).

Generated views reach the models labelled as planned, through the same decoding as
imported files. A ResNet (width 16, max pooling: the CLI's network) and a small
autoencoder are trained single-threaded at 64 px (the CLI's input size), about a minute
each, and their held-out metrics are asserted at the measured values (seeded,
deterministic on one thread) with a margin. The classifier's test set is infrared views
(hot spot or not): on the mixed set it needs the full-size run of docs/images.md (test
ROC AUC 0.81 on 1,600 training views), not a test's budget (640 views, 10 epochs: 0.38).
The autoencoder does not beat chance on generated views as a whole yet (docs/images.md);
what it finds, hot spots, is pinned.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
import pytest
from PIL import Image

from ml.evaluation import roc_auc
from ml.images.data import ImageSet, decode_image, split_indices
from ml.images.training import ImageFitOutcome, ImageTrainConfig, fit_image_model
from ml.models.image_autoencoder import ImageAutoencoderConfig
from ml.models.resnet import ResNetConfig
from mock_devices.images.batch import iter_batch

SIZE = 64
COUNT = 800
CLS_EPOCHS, AE_EPOCHS = 10, 10
CLS_ROC, CLS_PR, CLS_ACC = 0.9, 0.9, 0.8
AE_HOT = 0.55


def _decoded(batch: Iterable[tuple[dict[str, str], np.ndarray]], source: str) -> ImageSet:
    rows, images = [], []
    for row, arr in batch:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG", compress_level=1)
        images.append(decode_image(buf.getvalue(), SIZE))
        rows.append(row)
    labels = np.array([0 if r["label"] == "normal" else 1 for r in rows], dtype=np.int64)
    return ImageSet(np.stack(images), labels, [r["file"] for r in rows], rows,
                    {"source": source})


@pytest.fixture(scope="module")
def generated_set() -> ImageSet:
    """800 generated views (balanced set), decoded from file bytes like imported images."""
    return _decoded(iter_batch(COUNT, kind="balanced", seed=3, size=(96, 160)), "generated")


def _fit(kind: str, data: ImageSet, config: ResNetConfig | ImageAutoencoderConfig,
         epochs: int) -> ImageFitOutcome:
    # one torch thread (tests/ml/fixtures.py): deterministic, as measured
    return fit_image_model(kind, data, config,
                           ImageTrainConfig(epochs=epochs, batch_size=32, lr=2e-3, seed=0))


def test_generated_set_is_labelled_as_planned(generated_set: ImageSet) -> None:
    assert len(generated_set) == COUNT and int(generated_set.labels.sum()) == COUNT // 2
    assert {r["camera"] for r in generated_set.rows} == {"visible", "infrared"}
    for row, label in zip(generated_set.rows, generated_set.labels, strict=True):
        assert (row["label"] == "normal") == (label == 0)


@pytest.fixture(scope="module")
def infrared_set() -> ImageSet:
    """400 generated infrared views, half with a hot spot, decoded like imported files."""
    return _decoded(iter_batch(400, kind="balanced", seed=4, size=(96, 160),
                               infrared_share=1.0), "infrared")


@pytest.mark.slow
def test_classifier_finds_hot_spots_in_held_out_generated_views(infrared_set: ImageSet) -> None:
    """The mixed set needs the full-size run (docs/images.md: ROC AUC 0.81 on 1,600
    training views); within a test's budget, the infrared half of the task is pinned."""
    out = _fit("image_classifier", infrared_set,
               ResNetConfig(image_size=SIZE, width=16, small_input=True, pool="max"),
               CLS_EPOCHS)
    m = out.metrics
    assert m is not None and (m.n, m.defects) == (40, 20)
    # measured: ROC AUC 0.993, PR AUC 0.993, accuracy 0.95 (60 s on a busy core);
    # chance is ROC AUC 0.5, PR AUC 0.5
    assert m.roc_auc >= CLS_ROC and m.pr_auc >= CLS_PR and m.accuracy >= CLS_ACC, m


@pytest.mark.slow
def test_autoencoder_finds_hot_spots_in_held_out_generated_views(
        generated_set: ImageSet) -> None:
    """Overall the autoencoder is still at chance on generated views (docs/images.md:
    stains are easier to reconstruct than the surface they hide); hot spots it finds."""
    out = _fit("image_autoencoder", generated_set,
               ImageAutoencoderConfig(image_size=SIZE, base=8, depth=3, latent=16),
               AE_EPOCHS)
    m = out.metrics
    assert m is not None and (m.n, m.defects) == (80, 40)
    assert out.data["trained_on"] == 320  # the normal training views only
    _, va, te = split_indices(generated_set.labels, 0)
    held = np.concatenate([va, te])
    kinds = np.array([generated_set.rows[i]["label"] for i in held])
    cams = np.array([generated_set.rows[i]["camera"] for i in held])
    ir = (cams == "infrared") & np.isin(kinds, ["hot_spot", "normal"])
    scores = out.image_model().predict(generated_set.images[held[ir]]).scores
    auc = roc_auc(scores, kinds[ir] == "hot_spot")
    # measured: 0.616 (hot spot vs infrared normals, validation + test;
    # overall test ROC AUC 0.44); chance is 0.5
    assert auc >= AE_HOT, auc
