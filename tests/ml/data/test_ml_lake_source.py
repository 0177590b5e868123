"""LakeSource against a DWD slice written with Spark into Hudi on HDFS (real stack)."""

from __future__ import annotations

import numpy as np
import pytest

from lakehouse.contracts.messages import DEVICE_REGISTRY, ESS_BMS, TRANSFORMER_TELEMETRY
from lakehouse.time import parse_time_ms
from ml.data.lake_source import LakeReadError, LakeSource, NoDataError
from ml.data.sources import Series, SeriesSource, SourceError
from tests.ml.lake_helpers import END, ESS_STEP_MS, START, TOPOLOGY, TX_CHANNELS, LakeSlice

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0, T1 = parse_time_ms(START), parse_time_ms(END)


def _same(got: list[Series], want: list[Series]) -> None:
    assert [s.device_id for s in got] == [s.device_id for s in want]
    for g, w in zip(got, want, strict=True):
        # the grid starts at the first row written: trim what the lake cannot know
        present = np.flatnonzero(~np.isnan(w.values).all(axis=1))
        w = w.slice(int(present[0]), int(present[-1]) + 1)
        np.testing.assert_array_equal(g.ts_ms, w.ts_ms, err_msg=g.device_id)
        np.testing.assert_allclose(g.values, w.values, rtol=0, atol=1e-9, equal_nan=True,
                                   err_msg=g.device_id)


def test_reads_back_exactly_the_series_written(ml_lake: LakeSlice) -> None:
    src = LakeSource(ml_lake.settings, T0, T1, spark=ml_lake.spark)
    assert isinstance(src, SeriesSource)
    got = src.load()
    _same(got, ml_lake.ess_usable())
    desc = src.description()
    assert (desc.source, desc.contract, desc.step_ms) == ("lake", "ess_bms", ESS_STEP_MS)
    assert desc.channels == ml_lake.ess_description.channels
    assert desc.units == ml_lake.ess_description.units
    assert desc.details["table"] == "dwd_ess_bms" and desc.details["devices"] == "ESS-01,ESS-02"
    assert src.topology() == {d: TOPOLOGY[d] for d in ("ESS-01", "ESS-02")}
    # the gaps are explicit NaN rows: 3 dropped + 2 unusable on one bank, 40 on the other
    missing = {s.device_id: int(np.isnan(s.values).all(axis=1).sum()) for s in got}
    assert missing == {"ESS-01": 5, "ESS-02": 40}
    assert all(s.fault_types is None for s in got)


def test_unusable_rows_and_labels_on_request(ml_lake: LakeSlice) -> None:
    src = LakeSource(ml_lake.settings, T0, T1, usable_only=False, labels=True,
                     spark=ml_lake.spark)
    got = src.load()
    _same(got, ml_lake.ess)
    for g, w in zip(got, ml_lake.ess, strict=True):
        assert g.fault_types is not None and w.fault_types is not None
        written = ~np.isnan(w.values).all(axis=1)
        # labels of every step with a row equal the simulator's ground truth
        want = np.where(written, w.fault_types, "")
        present = np.flatnonzero(written)
        np.testing.assert_array_equal(g.fault_types, want[present[0]:present[-1] + 1])
        assert set(g.fault_types) - {""}, f"{g.device_id}: no fault labelled"


def test_range_device_and_site_filters(ml_lake: LakeSlice) -> None:
    a, b = parse_time_ms("2024-06-01T23:50"), parse_time_ms("2024-06-02T00:10")
    [one] = LakeSource(ml_lake.settings, a, b, devices=("ESS-02",), spark=ml_lake.spark).load()
    assert one.device_id == "ESS-02"
    # start inclusive, end exclusive, across the dt partition boundary
    assert (int(one.ts_ms[0]), int(one.ts_ms[-1])) == (a, b - ESS_STEP_MS)
    assert len(one) == 120
    [site] = LakeSource(ml_lake.settings, a, b, site="SUB-1", spark=ml_lake.spark).load()
    assert site.device_id == "ESS-01"


def test_transformer_series_with_a_channel_subset(ml_lake: LakeSlice) -> None:
    src = LakeSource(ml_lake.settings, T0, T1, TRANSFORMER_TELEMETRY, channels=TX_CHANNELS,
                     spark=ml_lake.spark)
    _same(src.load(), ml_lake.tx)
    assert src.description().step_ms == 60_000
    assert src.description().units == ("kVA", "°C", "°C")


def test_bad_requests_get_clear_errors(ml_lake: LakeSlice) -> None:
    s, spark = ml_lake.settings, ml_lake.spark
    with pytest.raises(NoDataError, match="ESS-99"):
        LakeSource(s, T0, T1, devices=("ESS-01", "ESS-99"), spark=spark).load()
    with pytest.raises(NoDataError, match="any device"):
        LakeSource(s, parse_time_ms("2023-01-01"), parse_time_ms("2023-01-02"),
                   spark=spark).load()
    with pytest.raises(NoDataError, match="SUB-9"):
        LakeSource(s, T0, T1, site="SUB-9", spark=spark).load()
    with pytest.raises(SourceError, match="empty range"):
        LakeSource(s, T1, T0, spark=spark).load()
    with pytest.raises(SourceError, match="no_such"):
        LakeSource(s, T0, T1, channels=("no_such",), spark=spark).load()
    with pytest.raises(SourceError, match="no DWD table"):
        LakeSource(s, T0, T1, DEVICE_REGISTRY, spark=spark).load()
    elsewhere = s.model_copy(update={"hdfs": s.hdfs.model_copy(
        update={"lake_root": s.hdfs.lake_root + "-missing"})})
    with pytest.raises(LakeReadError, match="dwd_ess_bms"):
        LakeSource(elsewhere, T0, T1, ESS_BMS, spark=spark).load()
