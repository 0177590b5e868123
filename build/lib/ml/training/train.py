"""Self-supervised training of AnomalyBERT on (assumed normal) series.

Each step samples ``batch_size`` windows at random positions of the scaled, gap-free
training segments, degrades them (:mod:`ml.data.degradation`, replacement intervals
taken from the same segment) and minimises the per-step binary cross-entropy between
the model's logits and the degradation mask. Optimiser: AdamW (lr 1e-4 by default),
linear warm-up then cosine decay to ``min_lr_ratio · lr``, gradient clipping at 1.0.
Runs are reproducible for a seed (numpy Generator for data, torch seed for weights and
dropout). Optional checkpoints every ``checkpoint_every`` steps can be resumed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from ml.data.degradation import DegradationConfig, degrade
from ml.data.scaling import DEFAULT_SCALER, GapPolicy, Scaler, ScalerKind, fill_gaps
from ml.data.sources import Series
from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig
from ml.progress import progress_bar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Attributes:
        steps: Optimiser steps.
        batch_size: Windows per step.
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_steps: Steps of linear warm-up.
        min_lr_ratio: Final learning rate as a fraction of ``lr`` (cosine decay).
        grad_clip: Maximum global gradient norm.
        seed: Seed of data sampling, degradation, initialisation and dropout.
        degradation: Synthetic degradation settings.
        scaler: How channels are scaled (fitted on the training series only).
        clip: Scaled values are clipped to ``±clip`` (``None``: no clipping).
        gap_policy: How gaps in the training series are handled.
        max_gap: Longest gap that is interpolated.
        checkpoint_every: Save a checkpoint every this many steps (0: never).
        checkpoint_dir: Directory of checkpoints (required when checkpointing).
        progress: Show a progress bar (rich) when available.
        log_every: Log the mean loss every this many steps.

    """

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    scaler: ScalerKind = DEFAULT_SCALER
    clip: float | None = 10.0
    gap_policy: GapPolicy = GapPolicy.INTERPOLATE
    max_gap: int = 6
    checkpoint_every: int = 0
    checkpoint_dir: Path | None = None
    progress: bool = False
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.checkpoint_every and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs a checkpoint_dir")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model metadata)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["degradation"] = self.degradation.to_dict()
        d["gap_policy"] = self.gap_policy.value
        d["scaler"] = self.scaler.value
        d["checkpoint_dir"] = None if self.checkpoint_dir is None else str(self.checkpoint_dir)
        return d


@dataclass
class TrainResult:
    """Outcome of a training run.

    Attributes:
        model: The trained network (eval mode).
        scaler: Scaler fitted on the training series.
        losses: Training loss of every step.
        steps: Steps run in this call.
        seconds: Wall time of the optimisation loop.

    """

    model: AnomalyBert
    scaler: Scaler
    losses: list[float]
    steps: int
    seconds: float

    @property
    def steps_per_s(self) -> float:
        """Optimiser steps per second."""
        return self.steps / self.seconds if self.seconds > 0 else math.inf

    @property
    def final_loss(self) -> float:
        """Mean loss of the last 10 % of steps."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return float(np.mean(tail)) if tail else math.nan


def scaled_segments(series: Sequence[Series], scaler: Scaler, window: int,
                    policy: GapPolicy = GapPolicy.INTERPOLATE,
                    max_gap: int = 6) -> list[np.ndarray]:
    """Scaled, gap-free segments of at least one window from the series.

    Raises:
        ValueError: No segment is long enough.

    """
    out = [scaler.transform(seg.values) for s in series
           for seg in fill_gaps(s.values, policy, max_gap, min_length=window)]
    if not out:
        raise ValueError(f"no gap-free stretch of at least {window} steps to train on")
    return out


def sample_batch(segments: Sequence[np.ndarray], window: int, batch_size: int,
                 rng: np.random.Generator, degradation: DegradationConfig,
                 patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Random degraded windows and their masks: ``(B, W, C)`` float32, ``(B, W)`` float32.

    Positions are uniform over all possible window starts of all segments. Each window
    is degraded with its segment as the pool and its start as the origin (a sped-up
    length adjustment reads the data before the window); ``patch_size`` is the model's,
    which sets the label margin around a peak.
    """
    sizes = np.array([len(s) - window + 1 for s in segments], dtype=np.float64)
    which = rng.choice(len(segments), size=batch_size, p=sizes / sizes.sum())
    xs, ys = [], []
    for i in which.tolist():
        seg = segments[i]
        start = int(rng.integers(0, len(seg) - window + 1))
        d = degrade(seg[start:start + window], rng, degradation, pool=seg, origin=start,
                    patch_size=patch_size)
        xs.append(d.values)
        ys.append(d.mask)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def fit_scaler(series: Sequence[Series], config: TrainConfig) -> Scaler:
    """The scaler of ``config`` fitted on the training series (near-constant channels logged).

    Raises:
        ValueError: No usable training data.

    """
    scaler = Scaler.fit([s.values for s in series], clip=config.clip, kind=config.scaler)
    if scaler.near_constant:
        logger.warning("channels %s are (nearly) constant in the training data: their "
                       "scale is floored at %.1g of their level", list(scaler.near_constant),
                       1e-3)
    return scaler


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Multiplier of the peak lr at a step: linear warm-up then cosine decay."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def fit(
    model: AnomalyBert,
    segments: Sequence[np.ndarray],
    config: TrainConfig,
    resume_from: Path | None = None,
    description: str = "training",
) -> tuple[list[float], float]:
    """Run the optimisation loop on scaled segments; returns (losses, seconds).

    The model is left in eval mode. A checkpoint written by this loop can be given as
    ``resume_from`` to continue the same schedule.
    """
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    window = model.config.window
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr,
                            weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(config.warmup_steps, config.steps, config.min_lr_ratio))
    first = 0
    if resume_from is not None:
        ckpt = torch.load(resume_from, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        first = int(ckpt["step"])
        logger.info("resumed from %s at step %d", resume_from, first)
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    with progress_bar(config.progress, config.steps - first, description) as advance:
        for step in range(first, config.steps):
            x, y = sample_batch(segments, window, config.batch_size, rng, config.degradation,
                                model.config.patch_size)
            logits = model(torch.from_numpy(x))
            loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            losses.append(float(loss.item()))
            advance(f"loss {losses[-1]:.4f}")
            done = step + 1
            if config.log_every and done % config.log_every == 0:
                logger.info("step %d/%d loss %.4f lr %.2e", done, config.steps,
                            float(np.mean(losses[-config.log_every:])),
                            sched.get_last_lr()[0])
            if config.checkpoint_every and done % config.checkpoint_every == 0:
                assert config.checkpoint_dir is not None
                save_checkpoint(config.checkpoint_dir / f"step-{done:07d}.pt", model, opt,
                                sched, rng, done)
    seconds = time.perf_counter() - t0
    model.eval()
    return losses, seconds


def save_checkpoint(path: Path, model: AnomalyBert, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, rng: np.random.Generator,
                    step: int) -> Path:
    """Write a resumable training checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "step": step,
                "model_config": model.config.to_dict()}, tmp)
    tmp.replace(path)
    logger.info("checkpoint %s", path)
    return path


def train(
    series: Sequence[Series],
    model_config: AnomalyBertConfig,
    config: TrainConfig | None = None,
    resume_from: Path | None = None,
) -> TrainResult:
    """Fit a scaler on ``series`` and train a new model on them from scratch.

    Args:
        series: Training series (assumed normal; labels are ignored).
        model_config: Network hyper-parameters (``n_channels`` must match the series).
        config: Training hyper-parameters.
        resume_from: Checkpoint to continue from.

    Raises:
        ValueError: Channel mismatch or not enough data.

    """
    cfg = config or TrainConfig()
    n_ch = {s.values.shape[1] for s in series}
    if n_ch != {model_config.n_channels}:
        raise ValueError(f"series have {sorted(n_ch)} channels, the model expects "
                         f"{model_config.n_channels}")
    scaler = fit_scaler(series, cfg)
    segments = scaled_segments(series, scaler, model_config.window, cfg.gap_policy,
                               cfg.max_gap)
    torch.manual_seed(cfg.seed)
    model = AnomalyBert(model_config)
    losses, seconds = fit(model, segments, cfg, resume_from)
    logger.info("trained %d steps in %.1f s (final loss %.4f)", len(losses), seconds,
                float(np.mean(losses[-10:])))
    return TrainResult(model, scaler, losses, len(losses), seconds)
