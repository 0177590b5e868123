from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.data.labels import ANOMALY, LabelError, as_fault_types, fault_types_from_intervals


def test_label_forms() -> None:
    assert as_fault_types(np.array([True, False])).tolist() == [ANOMALY, ""]
    assert as_fault_types([0, 2, 1]).tolist() == ["", ANOMALY, ANOMALY]
    words = np.array([" ", "Normal", "FALSE", "1", "True", "arc", "none", "0"], dtype=object)
    assert as_fault_types(words).tolist() == ["", "", "", ANOMALY, ANOMALY, "arc", "", ""]
    assert as_fault_types(np.array([], dtype=float)).tolist() == []


def test_missing_and_malformed_labels_are_refused() -> None:
    with pytest.raises(LabelError, match="first at step 1"):
        as_fault_types([0.0, np.nan])
    with pytest.raises(LabelError, match="missing"):
        as_fault_types(np.array(["a", None], dtype=object))
    with pytest.raises(LabelError, match="one value per step"):
        as_fault_types(np.zeros((2, 2)))


@given(st.lists(st.sampled_from([0, 1]), max_size=50))
def test_numeric_labels_round_trip(bits: list[int]) -> None:
    ft = as_fault_types(np.array(bits, dtype=np.int64))
    assert [x != "" for x in ft.tolist()] == [b == 1 for b in bits]


def test_intervals_in_steps_and_times() -> None:
    ft = fault_types_from_intervals(6, [(1, 3), (4, 5, "arc")])
    assert ft.tolist() == ["", ANOMALY, ANOMALY, "", "arc", ""]
    ts = np.arange(6) * 1000 + 10_000
    ft = fault_types_from_intervals(6, [(11_000, 12_500)], ts=ts)
    assert ft.tolist() == ["", ANOMALY, ANOMALY, "", "", ""]
    with pytest.raises(LabelError, match="before start"):
        fault_types_from_intervals(6, [(3, 1)])
    with pytest.raises(LabelError, match="expected"):
        fault_types_from_intervals(6, [(1,)])
