"""Helpers shared by the ML tests (no test functions here)."""

from __future__ import annotations

from dataclasses import dataclass

from ml.data.sources import DataDescription, Series
from ml.models.anomalybert import AnomalyBertConfig
from ml.training.train import TrainConfig
from mock_devices.ml_source import SiteScenario

TINY = {"patch_size": 8, "n_patches": 32, "d_model": 32, "n_layers": 2, "n_heads": 4,
        "d_ff": 64}
"""A network that trains in seconds on one CPU thread (window of 256 steps)."""

SOURCE_TRAINING = TrainConfig(steps=300, lr=1e-3, warmup_steps=30, seed=0, log_every=0)


def tiny_config(n_channels: int, **overrides: int) -> AnomalyBertConfig:
    return AnomalyBertConfig(n_channels=n_channels, **{**TINY, **overrides})


@dataclass
class SiteData:
    scenario: SiteScenario
    normal: list[Series]
    test: list[Series]
    description: DataDescription
