"""The image import benchmark: registered in the harness, and its own batch is importable."""

from __future__ import annotations

from pathlib import Path

from jobs.images.checks import read_descriptions
from ops.bench import harness
from ops.bench.images import _own_batch, registry_records


def test_registered_and_needs_the_stack() -> None:
    assert "images_import" in harness.BENCHMARKS
    assert "images_import" in harness.NEEDS_STACK


def test_fallback_batch_names_registry_assets(tmp_path: Path) -> None:
    assets = sorted(r["device_id"] for r in registry_records()
                    if r["device_type"] == "transformer")[:3]
    _own_batch(tmp_path, 6, assets)
    frame = read_descriptions(tmp_path / "descriptions.csv")
    assert len(frame) == 6 and set(frame["asset_id"]) <= set(assets)
    assert all((tmp_path / f).is_file() for f in frame["file"])
