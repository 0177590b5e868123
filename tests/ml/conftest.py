"""Shared fixtures of the ML tests: seeded simulator sites and one small trained model.

Everything here is session-scoped and deterministic (fixed seeds, one torch thread), so
the whole ML suite simulates each site once and trains the source model once.
"""

from __future__ import annotations

import pytest
import torch

from ml.pipeline import SITE_A, SITE_B, FitOutcome, SiteScenario, fit_model
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
