from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lakehouse.contracts.messages import METER_READING
from mock_devices.config import ConfigError, parse_time_ms
from mock_devices.replay import SAMPLE_PATH, ReplayConfig, load_uci, replay_records
from tests.mock_devices.sim_helpers import dicts


def test_sample_is_shipped_and_loads() -> None:
    df = load_uci(SAMPLE_PATH)
    assert len(df) == 3000
    assert (np.diff(df["ts_ms"]) == 60_000).all()
    assert df["ts_ms"].iloc[0] == parse_time_ms("2006-12-16T17:24")
    assert df["active_power_kw"].between(0, 15).all()


def test_one_meter_integrates_power_into_the_register() -> None:
    df = load_uci(SAMPLE_PATH)
    recs = dicts(replay_records(df, ReplayConfig(meters=1, noise=0.0, registry=False)))
    assert len(recs) == 3000
    msgs = [v for _, _, v in recs]
    for m in msgs[:50]:
        assert isinstance(m, dict) and METER_READING.validate(m) is None
    e = np.array([m["energy_import_kwh"] for m in msgs])
    p = np.array([m["active_power_kw"] for m in msgs])
    assert (np.diff(e) >= 0).all()
    assert np.allclose(np.diff(e), p[:-1] / 60.0, atol=1.1e-3)
    assert np.allclose(p, df["active_power_kw"])


def test_missing_values_become_gaps(tmp_path: Path) -> None:
    lines = SAMPLE_PATH.read_text().splitlines()
    for i in (10, 11, 12):
        parts = lines[i].split(";")
        lines[i] = ";".join(parts[:2] + ["?"] * (len(parts) - 2))
    path = tmp_path / "gappy.txt"
    path.write_text("\n".join(lines[:101]))
    recs = [v for _, _, v in dicts(replay_records(load_uci(path),
                                                  ReplayConfig(noise=0.0, registry=False)))]
    assert len(recs) == 97
    ts = [m["ts"] for m in recs]
    assert ts[9] - ts[8] == 4 * 60_000  # rows 10-12 (data rows 9-11) are missing
    e = [m["energy_import_kwh"] for m in recs]
    p = [m["active_power_kw"] for m in recs]
    assert e[9] - e[8] == pytest.approx(p[8] / 60.0, abs=1e-3)  # no energy invented


def test_many_meters_noise_shift_and_determinism() -> None:
    df = load_uci(SAMPLE_PATH, max_rows=120)
    cfg = ReplayConfig(meters=3, seed=4, noise=0.05, start_ms=parse_time_ms("2024-05-01"))
    a = dicts(replay_records(df, cfg))
    assert a == list(replay_records(df, cfg))
    reg = [v for t, _, v in a if t == "device.registry"]
    msgs = [v for t, _, v in a if t == "meter.readings"]
    assert len(reg) == 3 and len(msgs) == 360
    assert msgs[0]["ts"] == parse_time_ms("2024-05-01")
    powers = {m["device_id"]: m["active_power_kw"] for m in msgs[:3]}
    assert len(set(powers.values())) == 3


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_uci(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ConfigError, match="format"):
        load_uci(bad)
    with pytest.raises(ConfigError):
        ReplayConfig(meters=0)
