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
from pathlib import Path

import pytest
import torch

from infra.settings import GridLakeSettings
from lakehouse.time import parse_time_ms
from ml.data.lake_source import LakeSource
from ml.images.data import ImageSet, load_folder
from ml.images.training import ImageFitOutcome, ImageTrainConfig, fit_image_model
from ml.models.image_autoencoder import ImageAutoencoderConfig
from ml.models.resnet import ResNetConfig
from ml.pipeline import FitOutcome, fit_model, register
from ml.registry import ModelMetadata, ModelRegistry
from ml.training.train import TrainConfig
from mock_devices.ml_source import SITE_A, SITE_B, SiteScenario
from tests.ml.images.image_helpers import write_set
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


IMAGE_SIZE = 32
"""Input size of the test image models (small: the whole image suite trains in seconds)."""


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A balanced synthetic image set (240 PNGs and descriptions.csv); its description file."""
    return write_set(tmp_path_factory.mktemp("images"), 240, 0.5, seed=3)


@pytest.fixture(scope="session")
def image_set(image_folder: Path) -> ImageSet:
    return load_folder(image_folder, IMAGE_SIZE)


@pytest.fixture(scope="session")
def trained_classifier(image_set: ImageSet) -> ImageFitOutcome:
    """A narrow ResNet-18 (width 8, small-input stem) trained for 12 epochs."""
    return fit_image_model("image_classifier", image_set,
                           ResNetConfig(image_size=IMAGE_SIZE, width=8, small_input=True),
                           ImageTrainConfig(epochs=12, batch_size=16, lr=1e-2, seed=0))


@pytest.fixture(scope="session")
def trained_autoencoder(image_set: ImageSet) -> ImageFitOutcome:
    """A small autoencoder trained on the normal training images for 8 epochs."""
    return fit_image_model("image_autoencoder", image_set,
                           ImageAutoencoderConfig(image_size=IMAGE_SIZE, base=8, depth=3,
                                                  latent=16),
                           ImageTrainConfig(epochs=8, batch_size=16, lr=5e-3, seed=0))
