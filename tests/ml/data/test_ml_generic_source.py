from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.data.labels import ANOMALY, as_fault_types
from ml.data.sources import (
    GENERIC_CONTRACT,
    SINGLE_SERIES,
    GenericFileSource,
    Series,
    SourceError,
    check_series_length,
    contract_by_name,
    write_series_file,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def _frame(n: int = 40) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({
        "time": pd.date_range("2024-01-01", periods=n, freq="10s", tz="UTC"),
        "power": np.sin(t / 5.0),
        "temp": 20.0 + t * 0.1,
        "site": "north",
    })


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# -- the three file forms --------------------------------------------------------------

def test_csv_with_a_date_time_column(tmp_path: Path) -> None:
    frame = _frame()
    path = _csv(tmp_path, frame)
    desc, series = GenericFileSource(path, time_column="time",
                                     columns=("temp", "power")).read()
    assert desc.contract == GENERIC_CONTRACT and desc.source == "file"
    assert desc.channels == ("temp", "power") and desc.units == ("", "")
    assert desc.step_ms == 10_000
    [s] = series
    assert s.device_id == SINGLE_SERIES and s.fault_types is None
    assert s.ts_ms[0] == T0 and np.all(np.diff(s.ts_ms) == 10_000)
    assert np.allclose(s.values, frame[["temp", "power"]].to_numpy())


def test_csv_with_epoch_ms_times_and_a_gap(tmp_path: Path) -> None:
    frame = _frame(30).drop(columns=["site"])
    frame["time"] = T0 + np.arange(30) * 1000
    frame = frame.drop(index=[10, 11])  # two instants without a row become NaN steps
    path = _csv(tmp_path, frame)
    [s] = GenericFileSource(path, time_column="time").load()
    assert len(s) == 30
    assert np.isnan(s.values[10:12]).all() and np.isfinite(s.values[12:]).all()


def test_csv_without_a_time_column_is_indexed_with_step_ms(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame(20).drop(columns=["time", "site"]))
    desc, [s] = GenericFileSource(path).read()
    assert desc.step_ms == 1000 and desc.channels == ("power", "temp")
    assert np.array_equal(s.ts_ms, np.arange(20) * 1000)
    desc, [s] = GenericFileSource(path, step_ms=250).read()
    assert desc.step_ms == 250 and s.ts_ms[-1] == 19 * 250


def test_key_column_splits_devices_without_times(tmp_path: Path) -> None:
    frame = pd.DataFrame({"dev": ["a", "b"] * 10, "x": np.arange(20.0)})
    path = _csv(tmp_path, frame)
    a, b = GenericFileSource(path, key_column="dev").load()
    assert (a.device_id, b.device_id) == ("a", "b")
    assert np.array_equal(a.values[:, 0], np.arange(0.0, 20.0, 2))
    assert np.array_equal(b.ts_ms, np.arange(10) * 1000)


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _frame().to_parquet(path)
    [s] = GenericFileSource(path, time_column="time", columns=("power",)).load()
    assert s.values.shape == (40, 1) and s.ts_ms[1] - s.ts_ms[0] == 10_000


def test_npy_matrix_by_index_and_name(tmp_path: Path) -> None:
    m = np.arange(60.0).reshape(20, 3)
    path = tmp_path / "m.npy"
    np.save(path, m)
    desc, [s] = GenericFileSource(path).read()
    assert desc.channels == ("ch0", "ch1", "ch2") and np.array_equal(s.values, m)
    desc, [s] = GenericFileSource(path, columns=("2", "ch0")).read()
    assert desc.channels == ("ch2", "ch0") and np.array_equal(s.values, m[:, [2, 0]])
    desc, _ = GenericFileSource(path, mapping=(("1", "flow"),)).read()
    assert desc.channels == ("flow",)


def test_npz_with_labels_times_and_names(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(25, 2))
    labels = np.zeros(25, dtype=int)
    labels[5:8] = 1
    path = tmp_path / "m.npz"
    np.savez(path, values=values, labels=labels, ts=T0 + np.arange(25) * 500,
             channels=np.array(["a", "b"]))
    desc, [s] = GenericFileSource(path).read()
    assert desc.channels == ("a", "b") and desc.step_ms == 500
    assert s.ts_ms[0] == T0
    assert s.labels is not None and np.flatnonzero(s.labels).tolist() == [5, 6, 7]


# -- mapping ---------------------------------------------------------------------------

def test_column_mapping_renames_and_selects(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame())
    desc, [s] = GenericFileSource(path, time_column="time",
                                  mapping=(("temp", "t_c"), ("power", "p_kw"))).read()
    # the mapping alone selects its sources, in its order
    assert desc.channels == ("t_c", "p_kw")
    assert np.allclose(s.values[:, 0], _frame()["temp"])
    desc = GenericFileSource(path, time_column="time", columns=("power", "temp"),
                             mapping=(("temp", "t_c"),)).description()
    assert desc.channels == ("power", "t_c")
    assert desc.details["map"] == "temp:t_c" and desc.details["columns"] == "power,temp"


# -- labels ----------------------------------------------------------------------------

@pytest.mark.parametrize("column", [
    [0, 0, 1, 1, 0, 0],
    [False, False, True, True, False, False],
    ["", "", "overheat", "overheat", "", ""],
    ["normal", "normal", "anomaly", "anomaly", "normal", "normal"],
])
def test_label_column_forms(tmp_path: Path, column: list[object]) -> None:
    frame = pd.DataFrame({"x": np.arange(6.0), "y": [1.0, 2, 3, 4, 5, 7], "lab": column})
    path = _csv(tmp_path, frame)
    [s] = GenericFileSource(path, label_column="lab").load()
    assert s.labels is not None and s.labels.tolist() == [False, False, True, True, False,
                                                          False]
    assert s.values.shape == (6, 2)  # the label column is not a channel
    kinds = set(np.asarray(s.fault_types)[s.labels].tolist())
    assert kinds == ({"overheat"} if "overheat" in column else {ANOMALY})


def test_interval_file_in_steps(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame(20).drop(columns=["time", "site"]))
    iv = tmp_path / "iv.csv"
    pd.DataFrame({"start": [3, 10], "end": [5, 12], "type": ["spike", None]}).to_csv(
        iv, index=False)
    [s] = GenericFileSource(path, intervals=iv).load()
    assert s.fault_types is not None
    assert np.flatnonzero(s.fault_types == "spike").tolist() == [3, 4]
    assert np.flatnonzero(s.fault_types == ANOMALY).tolist() == [10, 11]


def test_interval_file_in_times(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame(20))
    iv = tmp_path / "iv.json"
    iv.write_text(json.dumps([
        {"start": "2024-01-01T00:00:50Z", "end": "2024-01-01T00:01:10Z", "type": "dip"},
        [T0 + 150_000, T0 + 170_000],
    ]))
    [s] = GenericFileSource(path, time_column="time", columns=("power",),
                            intervals=iv).load()
    assert s.fault_types is not None
    assert np.flatnonzero(s.fault_types == "dip").tolist() == [5, 6]
    assert np.flatnonzero(s.fault_types == ANOMALY).tolist() == [15, 16]
    # the same file read as step indices would be wrong: date-times are not steps
    with pytest.raises(SourceError, match="not a step index"):
        GenericFileSource(path, time_column="time", columns=("power",), intervals=iv,
                          interval_units="steps").load()


def test_interval_device_column_applies_to_its_device(tmp_path: Path) -> None:
    frame = pd.DataFrame({"dev": ["a", "b"] * 10, "x": np.arange(20.0)})
    path = _csv(tmp_path, frame)
    iv = tmp_path / "iv.csv"
    pd.DataFrame({"start": [2], "end": [4], "device": ["b"]}).to_csv(iv, index=False)
    a, b = GenericFileSource(path, key_column="dev", intervals=iv).load()
    assert a.labels is not None and not a.labels.any()
    assert b.labels is not None and np.flatnonzero(b.labels).tolist() == [2, 3]


@given(st.lists(st.sampled_from([0, 1, True, False, "", "0", "1", "true", "False", "normal",
                                 "fault-x", " None "]), min_size=1, max_size=30))
def test_label_parser_properties(labels: list[object]) -> None:
    out = as_fault_types(np.array([str(v) for v in labels]))
    assert out.shape == (len(labels),)
    expected_anomalous = [str(v).strip().lower() in ("1", "true", "fault-x") for v in labels]
    assert (out != "").tolist() == expected_anomalous
    assert set(out[out != ""].tolist()) <= {ANOMALY, "fault-x"}


# -- bad input -------------------------------------------------------------------------

def test_non_numeric_channels_are_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame())
    with pytest.raises(SourceError, match=r"non-numeric channel column\(s\) \['site'\]"):
        GenericFileSource(path, time_column="time").load()


def test_unknown_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame())
    with pytest.raises(SourceError, match=r"unknown column\(s\) \['nope'\]"):
        GenericFileSource(path, time_column="time", columns=("power", "nope")).load()
    with pytest.raises(SourceError, match="no time column 'when'"):
        GenericFileSource(path, time_column="when", columns=("power",)).load()
    with pytest.raises(SourceError, match=r"unknown column\(s\) \['9'\]"):
        np.save(tmp_path / "m.npy", np.ones((5, 2)))
        GenericFileSource(tmp_path / "m.npy", columns=("9",)).load()


def test_empty_values_become_gaps_but_an_empty_channel_is_refused(tmp_path: Path) -> None:
    frame = _frame(10).drop(columns=["site"])
    frame.loc[3, "power"] = np.nan
    [s] = GenericFileSource(_csv(tmp_path, frame), time_column="time").load()
    assert np.isnan(s.values[3, 0]) and np.isfinite(s.values[3, 1])
    frame["power"] = np.nan
    with pytest.raises(SourceError, match=r"channel\(s\) \['power'\] have no values"):
        GenericFileSource(_csv(tmp_path, frame), time_column="time").load()


def test_constant_channel_is_allowed_with_a_warning(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "flat": 3.0})
    with caplog.at_level(logging.WARNING, logger="ml.data.sources"):
        [s] = GenericFileSource(_csv(tmp_path, frame)).load()
    assert s.values.shape == (10, 2)
    assert "['flat'] are constant" in caplog.text and "'x'" not in caplog.text


def test_too_short_names_the_window() -> None:
    s = Series("d", np.arange(100), np.zeros((100, 1)))
    check_series_length([s], 100)
    with pytest.raises(SourceError, match="100 steps, shorter than the model window of 256"):
        check_series_length([s], 256)


def test_label_length_must_match(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, values=np.ones((10, 2)), labels=np.zeros(9))
    with pytest.raises(SourceError, match=r"labels has shape \(9,\), the data has 10 steps"):
        GenericFileSource(path).load()


def test_missing_labels_are_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(5.0), "lab": [0, 1, None, 0, 0]})
    with pytest.raises(SourceError, match=r"label column 'lab': 1 label\(s\) are missing"):
        GenericFileSource(_csv(tmp_path, frame), label_column="lab").load()
    path = tmp_path / "m.npz"
    np.savez(path, values=np.ones((3, 1)), labels=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(SourceError, match="missing"):
        GenericFileSource(path).load()


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(SourceError, match="empty"):
        GenericFileSource(tmp_path / "e.csv").load()
    (tmp_path / "h.csv").write_text("x,y\n")
    with pytest.raises(SourceError, match="no rows"):
        GenericFileSource(tmp_path / "h.csv").load()
    np.save(tmp_path / "z.npy", np.zeros((0, 2)))
    with pytest.raises(SourceError, match="empty"):
        GenericFileSource(tmp_path / "z.npy").load()


def test_unsupported_extension_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(SourceError, match="unsupported file type '.xlsx'"):
        GenericFileSource(tmp_path / "d.xlsx").load()
    with pytest.raises(SourceError, match="not both"):
        GenericFileSource(tmp_path / "d.csv", label_column="y", intervals=tmp_path / "i.csv")
    np.save(tmp_path / "m.npy", np.ones((5, 2)))
    with pytest.raises(SourceError, match="applies to CSV and Parquet"):
        GenericFileSource(tmp_path / "m.npy", time_column="t").load()


def test_bad_time_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"time": ["yesterday", "today"], "x": [1.0, 2.0]})
    with pytest.raises(SourceError, match="neither epoch-ms numbers nor date-times"):
        GenericFileSource(_csv(tmp_path, frame), time_column="time").load()


# -- downstream of the generic marker --------------------------------------------------

def test_generic_data_has_no_contract_and_round_trips(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no message contract"):
        contract_by_name(GENERIC_CONTRACT)
    path = _csv(tmp_path, _frame().drop(columns=["site"]).assign(
        lab=[0] * 30 + [1] * 10))
    desc, series = GenericFileSource(path, time_column="time", label_column="lab").read()
    out = write_series_file(series, desc, tmp_path / "back.parquet")
    back = GenericFileSource(out, time_column="ts", key_column="device_id",
                             label_column="fault_type").load()
    assert np.array_equal(back[0].values, series[0].values)
    assert np.array_equal(back[0].ts_ms, series[0].ts_ms)
    assert back[0].labels is not None and int(back[0].labels.sum()) == 10


def test_too_short_for_the_validation_tail() -> None:
    s = Series("d", np.arange(400), np.zeros((400, 1)))
    check_series_length([s], 64)
    with pytest.raises(SourceError, match=r"validation part \(15%, 60 steps\).*at least 427"):
        check_series_length([s], 64, validation_fraction=0.15)
    check_series_length([Series("d", np.arange(427), np.zeros((427, 1)))], 64,
                        validation_fraction=0.15)
