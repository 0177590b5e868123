"""The simulator's side of ML's series-source protocol (``mock_devices/ml_source.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lakehouse.contracts.messages import ESS_BMS, TRANSFORMER_DGA, TRANSFORMER_TELEMETRY
from ml.data.sources import SeriesSource, SourceError, numeric_channels
from mock_devices.ml_source import SITE_A, SITE_B, SimulatorSource, ess_fault_plan
from tests.ml.ml_helpers import SiteData


def test_simulated_site_is_labelled_by_the_fault_plan(site_a: SiteData) -> None:
    desc = site_a.description
    assert isinstance(site_a.scenario.normal_source(), SeriesSource)
    assert desc.channels == tuple(f.name for f in numeric_channels(ESS_BMS))
    assert desc.step_ms == 10_000 and desc.source == "simulator"
    assert [s.device_id for s in site_a.test] == ["ESS-01", "ESS-02"]
    for s in site_a.normal:
        assert s.labels is not None and not s.labels.any()
        assert len(s) == 24 * 360 and np.isfinite(s.values).all()
    plan = ess_fault_plan("2024-06-02")
    for s in site_a.test:
        assert s.fault_types is not None
        for req in plan:
            if req.device_id != s.device_id:
                continue
            assert req.start_ms is not None
            duration = req.duration_ms or (45 * 60_000)
            inside = (s.ts_ms >= req.start_ms) & (s.ts_ms < req.start_ms + duration)
            assert (s.fault_types[inside] == req.type).all()
        assert set(np.unique(s.fault_types)) == {"", "ess_thermal_runaway",
                                                 "ess_cell_imbalance"}


def test_simulator_other_contract_and_channel_subset() -> None:
    src = SimulatorSource(TRANSFORMER_TELEMETRY, hours=0.5,
                          channels=("load_pu", "top_oil_temp_c"))
    series = src.load()
    assert src.description().step_ms == 60_000
    assert series and all(s.values.shape == (30, 2) for s in series)


def test_contracts_the_simulator_does_not_emit_are_refused() -> None:
    with pytest.raises(SourceError, match="does not emit"):
        SimulatorSource(TRANSFORMER_DGA, hours=0.5).load()


def test_the_sites_of_the_benchmark() -> None:
    assert (SITE_A.name, SITE_A.seed, SITE_A.meters) == ("site-a", 7, 50)
    assert (SITE_B.name, SITE_B.seed, SITE_B.meters) == ("site-b", 11, 400)
    test = SITE_B.test_source()
    assert test.faults == ess_fault_plan("2024-06-02") and test.fleet.seed == 11
    assert test.description().site == "site-b" and SITE_B.normal_source().faults == ()


def test_the_simulator_side_needs_no_torch() -> None:
    # ML's protocol module (and its label parser) is all the simulator imports of ml: numpy
    # and pandas only
    code = ("import sys, mock_devices.ml_source\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pyspark', "
            "'pyflink') or m.startswith('ml.') and m not in ('ml.data', 'ml.data.sources', "
            "'ml.data.labels')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    assert done.stdout.strip() == "[]"
