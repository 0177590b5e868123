"""Scoring images with a trained image model (library, service and batch job alike).

:class:`ImageModel` wraps a network with everything needed to turn decoded images into
scores: the preprocessing (:mod:`ml.images.data`), the score definition per kind and, for
the autoencoder, the calibration fitted on the validation normals:

* classifier - ``score`` is the defect probability (sigmoid of the logit);
* autoencoder - ``score = (raw - mu) / sigma`` where ``raw`` is the mean of the top-k
  anomaly-map values and ``mu``/``sigma`` those of the validation normals (so a normal
  image scores around 0, and the threshold reads in standard deviations); its heat map
  is the anomaly map averaged over a ``grid × grid`` raster and divided by
  ``cell_scale`` (twice the 99th percentile of the validation normals' cells), clipped
  to ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.images.data import decode_image, to_tensor
from ml.models.image_autoencoder import ImageAutoencoder, ImageAutoencoderConfig, pool_map
from ml.models.resnet import ResNet, ResNetConfig
from ml.registry import (
    IMAGE_AUTOENCODER,
    IMAGE_CLASSIFIER,
    CorruptModelError,
    ImageModelMetadata,
    ModelRegistry,
    WrongKindError,
)

HEATMAP_GRID_DIVISOR = 8
"""The heat map has ``image_size / 8`` cells per side (8 for 64 px inputs)."""


@dataclass
class Prediction:
    """Scores (and heat maps) of a batch of images.

    Attributes:
        scores: ``(N,)`` anomaly scores.
        heatmaps: ``(N, g, g)`` values in ``[0, 1]`` (autoencoder), else ``None``.

    """

    scores: np.ndarray
    heatmaps: np.ndarray | None


def build_network(kind: str, model_config: dict[str, object]) -> nn.Module:
    """An untrained network of ``kind`` with ``model_config``.

    Raises:
        ValueError: Unknown kind or bad configuration.

    """
    if kind == IMAGE_CLASSIFIER:
        return ResNet(ResNetConfig.from_dict(dict(model_config)))
    if kind == IMAGE_AUTOENCODER:
        return ImageAutoencoder(ImageAutoencoderConfig.from_dict(dict(model_config)))
    raise ValueError(f"unknown image model kind {kind!r}")


class ImageModel:
    """A network ready to score images.

    Args:
        kind: ``image_classifier`` or ``image_autoencoder``.
        network: The network (put in eval mode here).
        calibration: Autoencoder score/heat-map normalisation (``mu``, ``sigma``,
            ``cell_scale``); ignored for the classifier.
        batch_size: Images per forward pass.

    """

    def __init__(self, kind: str, network: nn.Module, calibration: dict[str, float] | None = None,
                 batch_size: int = 64) -> None:
        self.kind = kind
        self.network = network.eval()
        self.calibration = dict(calibration or {})
        self.batch_size = batch_size
        cfg: Any = network.config
        self.image_size = int(cfg.image_size)
        self.grid = max(1, self.image_size // HEATMAP_GRID_DIVISOR)

    @torch.no_grad()
    def raw(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Uncalibrated scores and pooled maps (autoencoder) of ``(N, S, S, 3)`` uint8."""
        scores, cells = [], []
        for i in range(0, len(images), self.batch_size):
            x = to_tensor(images[i:i + self.batch_size])
            if self.kind == IMAGE_CLASSIFIER:
                scores.append(torch.sigmoid(self.network(x)).numpy())
            else:
                ae: ImageAutoencoder = self.network  # type: ignore[assignment]
                raw, maps = ae.raw_scores(x)
                scores.append(raw.numpy())
                cells.append(pool_map(maps, self.grid).numpy())
        s = np.concatenate(scores) if scores else np.zeros(0, np.float32)
        c = np.concatenate(cells) if cells else None
        return s.astype(np.float64), c

    def predict(self, images: np.ndarray) -> Prediction:
        """Scores (and heat maps) of decoded images ``(N, S, S, 3)`` uint8."""
        raw, cells = self.raw(images)
        if self.kind == IMAGE_CLASSIFIER:
            return Prediction(raw, None)
        mu = self.calibration.get("mu", 0.0)
        sigma = self.calibration.get("sigma", 1.0) or 1.0
        scale = self.calibration.get("cell_scale", 1.0) or 1.0
        heat = None if cells is None else np.clip(cells / scale, 0.0, 1.0)
        return Prediction((raw - mu) / sigma, heat)

    def predict_bytes(self, data: bytes, max_pixels: int | None = None) -> Prediction:
        """Score one image file's bytes (raises ``ImageDecodeError`` on a bad image)."""
        return self.predict(decode_image(data, self.image_size, max_pixels)[None])


@dataclass
class LoadedImageModel:
    """A registered image model: its metadata and the model to score with."""

    metadata: ImageModelMetadata
    model: ImageModel

    @property
    def model_id(self) -> str:
        """The model's id."""
        return self.metadata.model_id

    @property
    def threshold(self) -> float:
        """The decision threshold (0.5 for a classifier stored without one)."""
        th = self.metadata.threshold
        return float(th) if th is not None else (0.5 if self.metadata.kind ==
                                                 IMAGE_CLASSIFIER else 3.0)


def load_image_model(registry: ModelRegistry, model_id: str,
                     batch_size: int = 64) -> LoadedImageModel:
    """Load a registered image model.

    Raises:
        ml.registry.UnknownModelError: No such model, or not an image model.
        CorruptModelError: Checksum mismatch, unreadable checkpoint, config or shapes.

    """
    meta, state = registry.image_weights(model_id)
    try:
        net = build_network(meta.kind, meta.model_config)
        net.load_state_dict(state, strict=True)
        size = int(meta.preprocess["image_size"])
    except Exception as err:  # any failure to rebuild means a corrupt model
        raise CorruptModelError(f"model {model_id}: cannot load ({err})") from err
    model = ImageModel(meta.kind, net, meta.calibration, batch_size)
    if size != model.image_size:
        raise CorruptModelError(f"model {model_id}: preprocessing and network disagree on "
                                "the image size")
    return LoadedImageModel(meta, model)


class NoImageModelError(ValueError):
    """No image model of the wanted kind in the registry."""


def active_image_model_id(registry: ModelRegistry, kind: str,
                          configured: str | None = None) -> str:
    """The image model of ``kind`` to use.

    ``configured`` (``settings.images.active_*``) when given, else the newest of that kind.

    Raises:
        NoImageModelError: No image model of that kind (the message says how to train one).
        ml.registry.UnknownModelError: ``configured`` is not a model of that kind.

    """
    if kind not in (IMAGE_CLASSIFIER, IMAGE_AUTOENCODER):
        raise ValueError(f"unknown image model kind {kind!r}")
    if configured:
        meta = registry.image_metadata(configured)
        if meta.kind != kind:
            raise WrongKindError(f"model {configured} is an {meta.kind}, not an {kind}")
        return configured
    models = registry.image_models(kind)
    if not models:
        short = "classifier" if kind == IMAGE_CLASSIFIER else "autoencoder"
        raise NoImageModelError(f"no {kind} model in the registry; train one: gridlake ml "
                                f"images train --kind {short} --data FOLDER")
    return models[-1].model_id
