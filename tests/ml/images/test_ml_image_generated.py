"""The image models on views of the procedural generator (``mock_devices.images``).

The simpler synthetic set of ``image_helpers`` proves that the models beat chance where
the signal is learnable in seconds. The generator's defects are not: a crack or a missing
part is a few pixels at 64 px, and within a test's CPU budget (and within the 5–8 minute
runs of docs/images.md, ``## Models``) neither model beats chance on held-out generated
views: the ResNet memorises its training views instead (issue 21 stays open for it). What
is pinned here is that generated views reach the models labelled as planned, through the
same decoding as imported files.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.images.data import ImageSet, decode_image
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


def test_generated_set_is_labelled_as_planned(generated_set: ImageSet) -> None:
    assert len(generated_set) == COUNT and int(generated_set.labels.sum()) == COUNT // 2
    assert {r["camera"] for r in generated_set.rows} == {"visible", "infrared"}
    for row, label in zip(generated_set.rows, generated_set.labels, strict=True):
        assert (row["label"] == "normal") == (label == 0)
