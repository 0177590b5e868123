"""``gridlake bench --only memory`` names the parts that were not running."""

from __future__ import annotations

import os

import psutil
import pytest

from infra.settings import GridLakeSettings
from ops.bench import harness


def test_memory_names_what_was_not_running(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = psutil.Process(os.getpid())
    monkeypatch.setattr(harness, "gridlake_processes",
                        lambda s: {"api": [me], "kafka": [me]})
    out = harness.bench_memory(settings)
    assert set(out["not_running"]) == set(harness.PLATFORM_PARTS) - {"api", "kafka"}
    assert "ml" in out["not_running"] and "stream-lakehouse" in out["not_running"]
    # each figure is rounded to whole MiB on its own: the sum may differ by one per part
    parts = out["rss_mib.api"] + out["rss_mib.kafka"]
    assert out["rss_mib.total"] > 0 and abs(out["rss_mib.total"] - parts) <= 2
