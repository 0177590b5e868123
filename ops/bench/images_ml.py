"""Image-model benchmark: training time and CPU inference speed of both image models.

Quick by default (``gridlake bench --only images_ml``, about a minute on a busy 2-core
machine): a generated balanced batch of ``count`` images (:func:`mock_devices.images.
generate_batch`), decoded once at each model's input size, an 8:1:1 split, a few epochs
of the ResNet-18 classifier and of the autoencoder, then

* ``*_train_s`` / ``*_train_images_per_s`` - training wall time and throughput;
* ``*_infer_images_per_s`` - scoring throughput on decoded images (batch 64, the given
  torch threads), over ``infer_images`` images, after one untimed batch;
* ``*_roc_auc`` / ``*_pr_auc`` / ``*_accuracy`` - test-split metrics (tiny budget: a
  sanity check, not the docs/images.md table);
* ``decode_images_per_s`` - reading and decoding files to arrays (Pillow, threads).

``GRIDLAKE_BENCH_IMAGES_COUNT`` / ``_EPOCHS`` / ``_THREADS`` override the size of the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.images.data import ImageSet, load_folder
from ml.images.training import ImageFitOutcome, ImageTrainConfig, fit_image_model
from ml.models.image_autoencoder import ImageAutoencoderConfig
from ml.models.resnet import ResNetConfig
from mock_devices.images import generate_batch

#: the configurations of the docs/images.md table (CPU-sized)
CLASSIFIER = ResNetConfig(image_size=128, width=16, small_input=False)
AUTOENCODER = ImageAutoencoderConfig(image_size=96, base=16, depth=4, latent=16, top_k=0.005)


def _infer_speed(outcome: ImageFitOutcome, data: ImageSet, n: int) -> float:
    model = outcome.image_model(batch_size=64)
    reps = int(np.ceil(n / len(data)))
    images = np.concatenate([data.images] * reps)[:n]
    model.predict(images[:64])  # warm-up: allocator and kernels
    t0 = time.perf_counter()
    model.predict(images)
    return round(n / (time.perf_counter() - t0), 1)


def _figures(prefix: str, outcome: ImageFitOutcome, data: ImageSet,
             infer_images: int) -> dict[str, Any]:
    m = outcome.metrics
    return {
        f"{prefix}_train_s": outcome.extra["train_s"],
        f"{prefix}_train_images_per_s": outcome.extra["train_images_per_s"],
        f"{prefix}_infer_images_per_s": _infer_speed(outcome, data, infer_images),
        f"{prefix}_params_m": round(sum(p.numel() for p in outcome.network.parameters())
                                    / 1e6, 3),
        f"{prefix}_roc_auc": None if m is None else round(m.roc_auc, 4),
        f"{prefix}_pr_auc": None if m is None else round(m.pr_auc, 4),
        f"{prefix}_accuracy": None if m is None else round(m.accuracy, 4),
    }


def run_benchmark(count: int = 400, epochs: int = 3, threads: int = 1,
                  infer_images: int = 512, seed: int = 0) -> dict[str, Any]:
    """Generate, decode, train both models briefly, time inference; a flat dict."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="gridlake-bench-images-") as tmp:
            desc = generate_batch(Path(tmp) / "batch", count, kind="balanced", seed=seed)
            t0 = time.perf_counter()
            clf_data = load_folder(desc, CLASSIFIER.image_size)
            decode = count / (time.perf_counter() - t0)
            ae_data = load_folder(desc, AUTOENCODER.image_size)
        tc = ImageTrainConfig(epochs=epochs, batch_size=32, lr=5e-3, seed=seed)
        clf = fit_image_model("image_classifier", clf_data, CLASSIFIER, tc)
        ae = fit_image_model("image_autoencoder", ae_data, AUTOENCODER, tc)
        return {"images": count, "epochs": epochs, "threads": threads,
                "decode_images_per_s": round(decode, 1),
                "classifier_config": "ResNet-18, 128 px, width 16, standard stem",
                "autoencoder_config": "96 px, base 16, depth 4, latent 16, top-k 0.5 %",
                **_figures("classifier", clf, clf_data, infer_images),
                **_figures("autoencoder", ae, ae_data, infer_images)}
    finally:
        torch.set_num_threads(previous)


def options_from_env() -> dict[str, int]:
    """Run size from ``GRIDLAKE_BENCH_IMAGES_*`` (count, epochs, threads)."""
    out = {}
    for key in ("count", "epochs", "threads"):
        value = os.environ.get(f"GRIDLAKE_BENCH_IMAGES_{key.upper()}")
        if value:
            out[key] = int(value)
    return out
