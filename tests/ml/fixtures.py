"""Shared fixtures of the ML tests (and of ``gridlake ml``'s): seeded sites, one small model.

A plugin of the root ``conftest.py`` (``pytest_plugins``), so that the command line's tests
under ``tests/ops`` share the session-scoped sites and model with ``tests/ml``.

Everything here is session-scoped and deterministic (fixed seeds, one torch thread), so
the whole ML suite simulates each site once and trains the source model once. The lake
fixtures (integration tests only) write one slice of DWD rows with Spark into a lake of
their own and train one tiny model on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from infra.settings import GridLakeSettings
from lakehouse.time import parse_time_ms
from ml.data.lake_source import LakeSource
from ml.pipeline import FitOutcome, fit_model, register
from ml.registry import ModelMetadata, ModelRegistry
from ml.training.train import TrainConfig
from mock_devices.ml_source import SITE_A, SITE_B, SiteScenario
from tests.ml.lake_helpers import TRAIN, LakeSlice, write_slice
from tests.ml.ml_helpers import SOURCE_TRAINING, SiteData, tiny_config

torch.set_num_threads(1)


def _site(scenario: SiteScenario) -> SiteData:
    src = scenario.normal_source()
    return SiteData(scenario, src.load(), scenario.test_source().load(), src.description())


@pytest.fixture(scope="session")
def site_a() -> SiteData:
    return _site(SITE_A)


@pytest.fixture(scope="session")
def site_b() -> SiteData:
    return _site(SITE_B)


@pytest.fixture(scope="session")
def trained_a(site_a: SiteData) -> FitOutcome:
    """The source-site model: tiny network, 300 steps, threshold from validation."""
    return fit_model(site_a.normal, site_a.description, SOURCE_TRAINING,
                     model_config=tiny_config(site_a.description.n_channels),
                     test=site_a.test, label_tuned=True)


@pytest.fixture(scope="session")
def ml_lake(stack: GridLakeSettings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakeSlice]:
    """The ML lake slice, written once (real Spark, Hudi on HDFS) into a lake of its own."""
    yield from write_slice(stack, tmp_path_factory.mktemp("ml-lake"))


@pytest.fixture(scope="session")
def lake_model(ml_lake: LakeSlice) -> ModelMetadata:
    """A tiny model trained on the lake's training range, in the slice's HDFS registry."""
    s = ml_lake.settings
    src = LakeSource(s, parse_time_ms(TRAIN[0]), parse_time_ms(TRAIN[1]), spark=ml_lake.spark)
    cfg = TrainConfig(steps=40, lr=1e-3, warmup_steps=5, seed=0, log_every=0)
    outcome = fit_model(src.load(), src.description(), cfg,
                        model_config=tiny_config(src.description().n_channels, n_patches=16))
    return register(ModelRegistry.from_settings(s), outcome)
