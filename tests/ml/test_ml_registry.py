from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pytest

from infra.settings import GridLakeSettings, MlSettings
from ml.pipeline import FitOutcome, register
from ml.registry import (
    MODEL_FILE,
    CorruptModelError,
    HdfsBackend,
    LocalBackend,
    ModelRegistry,
    RegistryError,
    UnknownModelError,
    new_model_id,
    valid_model_id,
)
from tests.ml.ml_helpers import SiteData


def _scores(outcome_or_loaded: object, site: SiteData) -> list[np.ndarray]:
    scorer = outcome_or_loaded.scorer()  # type: ignore[attr-defined]
    return scorer.score([s.values for s in site.test])  # type: ignore[no-any-return]


def test_save_load_gives_identical_scores(tmp_path: Path, trained_a: FitOutcome,
                                          site_a: SiteData) -> None:
    reg = ModelRegistry(LocalBackend(tmp_path))
    meta = register(reg, trained_a)
    assert valid_model_id(meta.model_id) and meta.model_id.startswith("anomalybert-ess_bms-")
    loaded = reg.load(meta.model_id)
    for a, b in zip(_scores(trained_a, site_a), _scores(loaded, site_a), strict=True):
        assert np.array_equal(a, b)
    stored = json.loads((tmp_path / meta.model_id / "metadata.json").read_text())
    assert stored["data"]["channels"] == list(site_a.description.channels)
    assert stored["data"]["units"][0] == "V"
    scaler = trained_a.result.scaler
    assert stored["scaler"]["offset"] == scaler.offset.tolist()
    assert stored["scaler"]["kind"] == scaler.kind.value == stored["train_config"]["scaler"]
    assert loaded.scaler.kind is scaler.kind and np.array_equal(loaded.scaler.scale, scaler.scale)
    assert stored["model_config"]["patch_size"] == 8
    assert stored["train_config"]["lr"] == 1e-3
    assert stored["metrics"]["f1"] == trained_a.evaluation.f1  # type: ignore[union-attr]
    assert stored["threshold"] == trained_a.threshold and stored["parent_id"] is None
    assert loaded.metadata.evaluation == trained_a.evaluation
    assert [m.model_id for m in reg.list_models()] == [meta.model_id]
    updated = reg.update(meta.model_id, threshold=0.5)
    assert updated.threshold == 0.5 and reg.metadata(meta.model_id).threshold == 0.5


def test_errors_are_typed(tmp_path: Path, trained_a: FitOutcome) -> None:
    reg = ModelRegistry(LocalBackend(tmp_path))
    with pytest.raises(UnknownModelError):
        reg.load("nope")
    with pytest.raises(UnknownModelError):
        reg.load("../etc")
    meta = register(reg, trained_a)
    with pytest.raises(RegistryError, match="exists"):
        reg.save(trained_a.model, trained_a.result.scaler, trained_a.data, {},
                 model_id=meta.model_id)
    pt = tmp_path / meta.model_id / MODEL_FILE
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(CorruptModelError, match="checksum"):
        reg.load(meta.model_id)
    (tmp_path / meta.model_id / "metadata.json").write_text("{not json")
    with pytest.raises(CorruptModelError):
        reg.load(meta.model_id)
    assert reg.list_models() == []  # unreadable models are skipped, not fatal
    assert new_model_id("x y/z").startswith("x-y-z-")


def test_cache_of_remote_backend(tmp_path: Path, trained_a: FitOutcome) -> None:
    remote = LocalBackend(tmp_path / "remote")
    reg = ModelRegistry(remote, cache_dir=tmp_path / "cache")
    meta = register(reg, trained_a)
    reg.load(meta.model_id)
    cached = tmp_path / "cache" / meta.model_id / MODEL_FILE
    assert cached.read_bytes() == (tmp_path / "remote" / meta.model_id / MODEL_FILE).read_bytes()
    cached.write_bytes(b"garbage")  # a bad cache entry is ignored and replaced
    reg.load(meta.model_id)
    assert cached.read_bytes() != b"garbage"


def test_from_settings(settings: GridLakeSettings) -> None:
    local = settings.model_copy(update={"ml": MlSettings(registry="local")})
    reg = ModelRegistry.from_settings(local)
    assert isinstance(reg.backend, LocalBackend)
    assert reg.backend.root == settings.home / "models" / "registry"
    remote = ModelRegistry.from_settings(settings)
    assert isinstance(remote.backend, HdfsBackend)
    assert remote.backend.describe() == f"{settings.hdfs.webhdfs_url}/gridlake/models"
    assert settings.ml.port == 8100


@pytest.mark.integration
def test_hdfs_backend_round_trip(stack: GridLakeSettings, trained_a: FitOutcome,
                                 site_a: SiteData, tmp_path: Path) -> None:
    root = f"{stack.ml.hdfs_root}-test-{secrets.token_hex(4)}"
    backend = HdfsBackend(stack.hdfs.webhdfs_url, stack.hdfs.user, root)
    reg = ModelRegistry(backend, cache_dir=tmp_path / "cache")
    try:
        meta = register(reg, trained_a)
        assert [m.model_id for m in reg.list_models()] == [meta.model_id]
        loaded = reg.load(meta.model_id)
        for a, b in zip(_scores(trained_a, site_a), _scores(loaded, site_a), strict=True):
            assert np.array_equal(a, b)
        assert (tmp_path / "cache" / meta.model_id / MODEL_FILE).is_file()
        with pytest.raises(UnknownModelError):
            reg.load("missing-model")
    finally:
        backend.client.delete(root, recursive=True)
