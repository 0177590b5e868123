"""Fine-tuning a saved model on another site's data.

The parent's transformer body and prediction head are kept; the patch embedding is
kept too when the new site has the same channels, and re-initialised when the channel
count differs (the embedding is the only layer whose shape depends on it). A new
scaler is always fitted on the target site's training data (other plant, other
ratings, other units scale). The fine-tuning loop is the training loop
(:func:`ml.training.train.fit`) with its own, usually much smaller, budget; optionally
the body is frozen for the first ``freeze_body_steps`` so that a fresh embedding can
adapt before the body moves.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ml.data.sources import Series
from ml.models.anomalybert import AnomalyBert
from ml.training.train import TrainConfig, TrainResult, fit, fit_scaler, scaled_segments

logger = logging.getLogger(__name__)


@dataclass
class TransferResult(TrainResult):
    """A fine-tuning run: :class:`TrainResult` plus what was carried over.

    Attributes:
        reinitialised_embedding: Whether the patch embedding was re-initialised.

    """

    reinitialised_embedding: bool = False


def transfer(
    parent: AnomalyBert,
    target: Sequence[Series],
    config: TrainConfig | None = None,
    freeze_body_steps: int = 0,
) -> TransferResult:
    """Fine-tune a copy of ``parent`` on the target site's (normal) series.

    Args:
        parent: The source-site model (left unchanged).
        target: Target-site training series; their channel count may differ.
        config: Fine-tuning hyper-parameters (steps are the target budget).
        freeze_body_steps: Steps at the start that train only the patch embedding.

    Raises:
        ValueError: Series with inconsistent channel counts, or too little data.

    """
    cfg = config or TrainConfig(steps=200)
    channels = {s.values.shape[1] for s in target}
    if len(channels) != 1:
        raise ValueError(f"target series have differing channel counts {sorted(channels)}")
    n_ch = channels.pop()
    reinit = n_ch != parent.config.n_channels
    model = parent.with_channels(n_ch)
    scaler = fit_scaler(target, cfg)
    segments = scaled_segments(target, scaler, model.config.window, cfg.gap_policy,
                               cfg.max_gap)
    logger.info("transfer: %d -> %d channels (embedding %s)", parent.config.n_channels, n_ch,
                "re-initialised" if reinit else "kept")
    losses: list[float] = []
    seconds = 0.0
    frozen = min(freeze_body_steps, cfg.steps)
    if frozen:
        body = model.body_parameters()
        for p in body:
            p.requires_grad_(False)
        warm = dataclasses.replace(cfg, steps=frozen, warmup_steps=min(cfg.warmup_steps, frozen),
                                   checkpoint_every=0)
        part, sec = fit(model, segments, warm, description="transfer (embedding)")
        losses += part
        seconds += sec
        for p in body:
            p.requires_grad_(True)
    if cfg.steps - frozen > 0:
        rest = dataclasses.replace(cfg, steps=cfg.steps - frozen, seed=cfg.seed + frozen)
        part, sec = fit(model, segments, rest, description="transfer")
        losses += part
        seconds += sec
    return TransferResult(model=model, scaler=scaler, losses=losses, steps=len(losses),
                          seconds=seconds, reinitialised_embedding=reinit)
