from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lakehouse.contracts.messages import ESS_BMS
from lakehouse.contracts.schema import FieldType
from ml.data.sources import (
    DataDescription,
    FileSource,
    SourceError,
    numeric_channels,
    resolve_channels,
    write_series_file,
)
from tests.ml.ml_helpers import SiteData


def test_channels_come_from_the_contract() -> None:
    names = [f.name for f in numeric_channels(ESS_BMS)]
    assert names == [f.name for f in ESS_BMS.fields if f.type is FieldType.DOUBLE]
    assert "cell_voltage_gap_mv" in names and "state" not in names and "seq" not in names
    sub = resolve_channels(ESS_BMS, ("soc_pct", "dc_voltage_v"))
    assert [f.unit for f in sub] == ["%", "V"]
    with pytest.raises(SourceError):
        resolve_channels(ESS_BMS, ("no_such_channel",))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_round_trip_with_missing_rows(tmp_path: Path, site_a: SiteData,
                                           suffix: str) -> None:
    original = [s.slice(0, 500) for s in site_a.test]
    holed = original[0].values.copy()
    holed[100:103] = np.nan  # rows absent from the file
    series = [type(original[0])(original[0].device_id, original[0].ts_ms, holed,
                                original[0].fault_types), original[1]]
    path = write_series_file(series, site_a.description, tmp_path / f"ess{suffix}")
    src = FileSource(path, ESS_BMS)
    back = src.load()
    desc = src.description()
    assert isinstance(desc, DataDescription) and desc.step_ms == 10_000
    assert desc.channels == site_a.description.channels
    assert [s.device_id for s in back] == ["ESS-01", "ESS-02"]
    assert np.array_equal(back[0].ts_ms, original[0].ts_ms)
    assert np.isnan(back[0].values[100:103]).all()
    assert np.allclose(back[0].values[:100], original[0].values[:100])
    assert back[1].fault_types is not None and original[1].fault_types is not None
    assert np.array_equal(back[1].fault_types, original[1].fault_types)
    sub = FileSource(path, ESS_BMS, channels=("soc_pct",)).load()
    assert sub[0].values.shape == (500, 1)


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("nope")
    with pytest.raises(SourceError):
        FileSource(bad).load()
    csv = tmp_path / "x.csv"
    csv.write_text("ess_id,ts,soc_pct\nESS-01,0,50\n")
    with pytest.raises(SourceError, match="step"):
        FileSource(csv).load()
    csv.write_text("ts,soc_pct\n0,50\n")
    with pytest.raises(SourceError, match="ess_id"):
        FileSource(csv).load()
