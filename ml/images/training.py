"""Training and evaluating the image models on an :class:`~ml.images.data.ImageSet`.

One run splits the labelled set 8:1:1 (stratified, seeded; :func:`split_indices`),
trains on the training split, chooses the decision threshold on the validation split and
reports the test split's metrics as the reference does: accuracy, ROC AUC and PR AUC
(average precision), plus F1, precision and recall at the threshold.

* **Classifier** (ResNet-18, :mod:`ml.models.resnet`): binary cross-entropy with the
  positive class weighted by ``normal / defect`` of the training split (capped at 10), so
  an imbalanced set does not collapse to "always normal"; AdamW with a one-cycle
  schedule; flips and brightness jitter. The epoch with the best validation PR AUC is
  kept.
* **Autoencoder** (:mod:`ml.models.image_autoencoder`): trained on the *normal* training
  images only (unlabelled images count as normal: it is meant for utilities without defect
  labels). Self-supervised: with probability ``defect_prob`` each input gets a synthetic
  defect pasted on it (a cut-paste patch of the same image with changed brightness, a
  noise blotch of random colour, a smooth dark or rust-coloured stain, or a thin dark
  scratch), while the reconstruction target stays the clean image.
  Its scores are calibrated on the validation normals (:mod:`ml.images.inference`).

Threshold: the score maximising F1 on the validation split (max-F1, not Youden); when the
validation split has no defect (an unlabelled set) the 99th percentile of the validation
normals' scores.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ml.evaluation import average_precision, best_f1_threshold, precision_recall_f1, roc_auc
from ml.images.data import RESIZE, ImageDataError, ImageSet, augment, split_indices, to_tensor
from ml.images.inference import HEATMAP_GRID_DIVISOR, ImageModel
from ml.models.image_autoencoder import ImageAutoencoder, ImageAutoencoderConfig, pool_map
from ml.models.resnet import ResNet, ResNetConfig
from ml.progress import progress_bar
from ml.registry import IMAGE_AUTOENCODER, IMAGE_CLASSIFIER, ImageModelMetadata, ModelRegistry

logger = logging.getLogger(__name__)

MAX_POS_WEIGHT = 10.0
NORMAL_QUANTILE = 0.99


@dataclass(frozen=True)
class ImageTrainConfig:
    """Hyper-parameters of a training run.

    Attributes:
        epochs: Passes over the training split.
        batch_size: Images per step.
        lr: Peak learning rate (one-cycle schedule).
        weight_decay: AdamW weight decay.
        seed: Seed of the split, the initialisation and the augmentation.
        augment: Random flips and brightness jitter on training images.
        defect_prob: Autoencoder: probability of a synthetic defect on an input.
        progress: Show a progress bar.

    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True
    defect_prob: float = 0.5
    progress: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 <= self.defect_prob <= 1):
            raise ValueError("lr must be positive, weight_decay >= 0, defect_prob in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the progress switch)."""
        d = dataclasses.asdict(self)
        d.pop("progress")
        return d


@dataclass
class ImageMetrics:
    """Quality of scores on labelled images at a threshold."""

    n: int
    defects: int
    threshold: float
    accuracy: float
    roc_auc: float
    pr_auc: float
    f1: float
    precision: float
    recall: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN stays NaN: no positives or no negatives)."""
        return dataclasses.asdict(self)


def score_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> ImageMetrics:
    """Accuracy, ROC AUC, PR AUC, F1, precision and recall of ``scores >= threshold``."""
    y = labels.astype(bool)
    pred = scores >= threshold
    p, r, f = precision_recall_f1(pred, y)
    acc = float(np.mean(pred == y)) if len(y) else math.nan
    return ImageMetrics(len(y), int(y.sum()), float(threshold), acc, roc_auc(scores, y),
                        average_precision(scores, y), f, p, r)


def choose_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, str]:
    """Max-F1 threshold on validation scores; without defects, their 99th percentile."""
    if labels.astype(bool).any() and (~labels.astype(bool)).any():
        th, _ = best_f1_threshold(scores, labels.astype(bool))
        return th, "val_max_f1"
    return float(np.quantile(scores, NORMAL_QUANTILE)), "val_normal_q99"


@dataclass
class ImageFitOutcome:
    """A trained image model with its threshold, metrics and lineage (ready to register)."""

    kind: str
    network: nn.Module
    model_config: dict[str, Any]
    train_config: ImageTrainConfig
    data: dict[str, Any]
    image_size: int
    calibration: dict[str, float]
    threshold: float
    threshold_method: str
    metrics: ImageMetrics | None
    extra: dict[str, Any] = field(default_factory=dict)

    def image_model(self, batch_size: int = 64) -> ImageModel:
        """The trained model, ready to score."""
        return ImageModel(self.kind, self.network, self.calibration, batch_size)


def _paste_defects(x: torch.Tensor, prob: float, g: torch.Generator) -> torch.Tensor:
    """Synthetic defects on a copy of ``x`` ``(B, 3, S, S)``.

    Four kinds, equally likely: a cut-paste patch of the same image at another
    brightness, a noise blotch of random colour, a smooth stain (a soft-edged patch of
    one dark or rust-like colour: soot, oil, corrosion, which a bottleneck reproduces
    easily unless it learns to remove it) and a thin dark scratch (a jagged line).
    """
    out = x.clone()
    b, _, s, _ = x.shape
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    for i in range(b):
        if float(torch.rand(1, generator=g)) >= prob:
            continue
        r = int(torch.randint(max(2, s // 16), max(3, s // 5), (1,), generator=g))
        cy, cx = (int(v) for v in torch.randint(r, s - r, (2,), generator=g))
        ry = r * (0.5 + float(torch.rand(1, generator=g)))
        dist = ((yy - cy) / ry) ** 2 + ((xx - cx) / r) ** 2
        mask = (dist <= 1.0).float()
        kind = int(torch.randint(0, 4, (1,), generator=g))
        if kind == 0:
            # cut-paste: the same image's texture from elsewhere, darker or brighter
            sy, sx = (int(v) for v in torch.randint(0, s, (2,), generator=g))
            src = torch.roll(x[i], shifts=(sy - cy, sx - cx), dims=(1, 2))
            gain = 0.4 + 1.2 * float(torch.rand(1, generator=g))
            patch = (src * gain).clamp(0, 1)
        elif kind == 1:
            colour = torch.rand(3, 1, 1, generator=g)
            noise = torch.rand(3, s, s, generator=g) * 0.3
            patch = (colour + noise - 0.15).clamp(0, 1)
        elif kind == 2:
            colour = torch.rand(3, 1, 1, generator=g) * 0.5
            if float(torch.rand(1, generator=g)) < 0.5:  # rust-like: warm
                colour = colour * torch.tensor([1.4, 0.7, 0.3]).view(3, 1, 1)
            mask = (1.0 - dist).clamp(0, 1).sqrt() * (0.6 + 0.4 * float(torch.rand(1,
                                                                                generator=g)))
            patch = colour.clamp(0, 1).expand(3, s, s)
        else:
            mask = torch.zeros(s, s)
            py, px = float(cy), float(cx)
            dy, dx = (torch.rand(2, generator=g) * 2 - 1).tolist()
            for _ in range(int(torch.randint(s // 6, s // 2, (1,), generator=g))):
                mask[int(py) % s, int(px) % s] = 1.0
                jy, jx = (torch.rand(2, generator=g) * 0.8 - 0.4).tolist()
                py, px = py + dy + jy, px + dx + jx
            patch = x[i] * 0.25
        out[i] = out[i] * (1 - mask[None]) + patch * mask[None]
    return out


def _batches(n: int, batch_size: int, g: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=g)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def fit_image_model(kind: str, data: ImageSet,
                    model_config: ResNetConfig | ImageAutoencoderConfig,
                    config: ImageTrainConfig) -> ImageFitOutcome:
    """Split, train, threshold and evaluate one image model.

    Raises:
        ImageDataError: Too few labelled images, or (classifier) a class missing.
        ValueError: Unknown kind, or a configuration of another kind.

    """
    if kind not in (IMAGE_CLASSIFIER, IMAGE_AUTOENCODER):
        raise ValueError(f"unknown image model kind {kind!r}")
    size = model_config.image_size
    if data.images.shape[1] != size:
        raise ValueError(f"images are {data.images.shape[1]} px, the model wants {size}")
    labels = data.labels
    if kind == IMAGE_CLASSIFIER:
        if not isinstance(model_config, ResNetConfig):
            raise ValueError("the classifier needs a ResNetConfig")
        known = np.flatnonzero(labels >= 0)
        if (labels[known] == 1).sum() < 3 or (labels[known] == 0).sum() < 3:
            raise ImageDataError("the classifier needs at least 3 normal and 3 defect images "
                                 "with labels")
    else:
        if not isinstance(model_config, ImageAutoencoderConfig):
            raise ValueError("the autoencoder needs an ImageAutoencoderConfig")
        known = np.arange(len(labels))  # unlabelled images are presumed normal
    if len(known) < 10:
        raise ImageDataError(f"too few images to split 8:1:1 ({len(known)})")
    tr, va, te = (known[i] for i in split_indices(np.maximum(labels[known], 0), config.seed))
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    x_all = data.images
    y_all = np.maximum(labels, 0)  # unlabelled (autoencoder only) → normal
    if kind == IMAGE_AUTOENCODER:
        train_idx = tr[y_all[tr] == 0]
        net: nn.Module = ImageAutoencoder(model_config)  # type: ignore[arg-type]
    else:
        train_idx = tr
        net = ResNet(model_config)  # type: ignore[arg-type]
    n_train = len(train_idx)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr,
                                                total_steps=config.epochs * steps_per_epoch,
                                                pct_start=0.2)
    n_pos = int((y_all[train_idx] == 1).sum())
    pos_weight = torch.tensor(min(MAX_POS_WEIGHT, (n_train - n_pos) / max(1, n_pos)))
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    losses: list[float] = []
    t0 = time.perf_counter()
    with progress_bar(config.progress, config.epochs * steps_per_epoch,
                      f"training {kind}") as advance:
        for epoch in range(config.epochs):
            net.train()
            total = 0.0
            for idx in _batches(n_train, config.batch_size, g):
                rows = train_idx[idx.numpy()]
                x = to_tensor(x_all[rows])
                if config.augment:
                    x = augment(x, g)
                if kind == IMAGE_CLASSIFIER:
                    y = torch.from_numpy(y_all[rows]).float()
                    loss = F.binary_cross_entropy_with_logits(net(x), y, pos_weight=pos_weight)
                else:
                    loss = F.mse_loss(net(_paste_defects(x, config.defect_prob, g)), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(rows)
                advance(f"epoch {epoch + 1} loss {loss.item():.4f}")
            losses.append(total / max(1, n_train))
            if kind == IMAGE_CLASSIFIER and len(va):
                raw, _ = ImageModel(kind, net).raw(x_all[va])
                ap = average_precision(raw, y_all[va].astype(bool))
                ap = -1.0 if math.isnan(ap) else ap
                if best is None or ap > best[0]:
                    best = (ap, {k: v.detach().clone() for k, v in net.state_dict().items()})
            logger.info("epoch %d: loss %.5f", epoch + 1, losses[-1])
    train_s = time.perf_counter() - t0
    if best is not None:
        net.load_state_dict(best[1])
    net.eval()
    calibration: dict[str, float] = {}
    if kind == IMAGE_AUTOENCODER:
        calibration = _calibrate(net, x_all[va[y_all[va] == 0]] if len(va) else x_all[train_idx])
    model = ImageModel(kind, net, calibration)
    val_scores = model.predict(x_all[va]).scores
    threshold, method = choose_threshold(val_scores, y_all[va])
    t1 = time.perf_counter()
    test_scores = model.predict(x_all[te]).scores
    infer_s = time.perf_counter() - t1
    metrics = score_metrics(test_scores, y_all[te], threshold) if len(te) else None
    lineage = {**data.lineage, "split_seed": config.seed, "split": "8:1:1 stratified",
               "train": int(len(tr)), "val": int(len(va)), "test": int(len(te)),
               "trained_on": int(n_train)}
    extra = {"train_s": round(train_s, 2),
             "train_images_per_s": round(config.epochs * n_train / train_s, 1)
             if train_s > 0 else None,
             "infer_images_per_s": round(len(te) / infer_s, 1) if infer_s > 0 else None,
             "losses": [round(v, 6) for v in losses], "threshold_method": method,
             "pos_weight": round(float(pos_weight), 3) if kind == IMAGE_CLASSIFIER else None,
             "torch_threads": torch.get_num_threads()}
    return ImageFitOutcome(kind, net, model_config.to_dict(), config, lineage, size,
                           calibration, threshold, method, metrics, extra)


@torch.no_grad()
def _calibrate(net: nn.Module, normals: np.ndarray) -> dict[str, float]:
    """Score normalisation and heat-map scale from validation normals."""
    ae: ImageAutoencoder = net  # type: ignore[assignment]
    raws, cells = [], []
    grid = max(1, ae.config.image_size // HEATMAP_GRID_DIVISOR)
    for i in range(0, len(normals), 64):
        raw, maps = ae.raw_scores(to_tensor(normals[i:i + 64]))
        raws.append(raw.numpy())
        cells.append(pool_map(maps, grid).numpy().ravel())
    r = np.concatenate(raws).astype(np.float64)
    c = np.concatenate(cells).astype(np.float64)
    sigma = float(r.std()) if len(r) > 1 and r.std() > 0 else max(float(abs(r.mean())), 1e-6)
    return {"mu": float(r.mean()), "sigma": sigma,
            "cell_scale": max(2.0 * float(np.quantile(c, 0.99)), 1e-6)}


def register_image_model(registry: ModelRegistry, outcome: ImageFitOutcome,
                         model_id: str | None = None) -> ImageModelMetadata:
    """Store a trained image model with its metrics, threshold and lineage."""
    return registry.save_image(
        outcome.network, outcome.kind, outcome.model_config, outcome.data,
        {"image_size": outcome.image_size, "resize": RESIZE, "channels": "RGB",
         "scale": "[0,1]"},
        outcome.train_config.to_dict(), outcome.calibration,
        None if outcome.metrics is None else outcome.metrics.to_dict(), outcome.threshold,
        outcome.extra, model_id)


def evaluate_image_model(model: ImageModel, data: ImageSet, threshold: float) -> ImageMetrics:
    """Metrics of a model on every labelled image of ``data``.

    Raises:
        ImageDataError: No labelled image.

    """
    known = np.flatnonzero(data.labels >= 0)
    if not len(known):
        raise ImageDataError("no labelled image to evaluate on")
    scores = model.predict(data.images[known]).scores
    return score_metrics(scores, data.labels[known], threshold)
