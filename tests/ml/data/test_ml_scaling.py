from __future__ import annotations

import numpy as np
import pytest

from ml.data.scaling import GapPolicy, Scaler, fill_gaps


def test_scaler_fits_training_data_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal([5.0, -2.0, 7.0], [2.0, 0.5, 0.0], size=(5000, 3))
    test = rng.normal([50.0, -2.0, 7.0], [2.0, 0.5, 0.0], size=(100, 3))
    sc = Scaler.fit([train[:2500], train[2500:]])
    z = sc.transform(train)
    assert np.allclose(z[:, :2].mean(axis=0), 0, atol=1e-6)
    assert np.allclose(z[:, :2].std(axis=0), 1, atol=1e-4)
    assert sc.scale[2] == 1.0  # constant in training: unit scale
    assert np.all(sc.transform(test)[:, 0] == sc.clip)  # far outside training: clipped
    assert z.dtype == np.float32


def test_scaler_ignores_nan_and_round_trips() -> None:
    x = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
    sc = Scaler.fit([x], clip=None)
    assert np.allclose(sc.mean, [2.0, 6.0]) and np.allclose(sc.scale, [1.0, 2.0])
    assert np.isnan(sc.transform(x)[0, 1])
    again = Scaler.from_dict(sc.to_dict())
    assert np.array_equal(again.mean, sc.mean) and again.clip is None
    assert np.allclose(sc.inverse(sc.transform(x[1:2])), x[1:2])
    with pytest.raises(ValueError, match="channels"):
        sc.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        Scaler.fit([np.array([[1.0, np.nan]])])
    with pytest.raises(ValueError):
        Scaler.fit([])


def _series(n: int = 20) -> np.ndarray:
    t = np.arange(n, dtype=float)
    return np.column_stack([t, 2 * t + 1])


def test_short_gaps_are_interpolated_and_flagged() -> None:
    x = _series()
    x[5:8] = np.nan  # 3 missing steps
    x[12, 1] = np.nan  # a partial reading
    (seg,) = fill_gaps(x, GapPolicy.INTERPOLATE, max_gap=3)
    assert (seg.start, seg.stop) == (0, 20)
    assert np.allclose(seg.values, _series())  # linear signal restored exactly
    assert np.flatnonzero(seg.imputed).tolist() == [5, 6, 7, 12]


def test_long_gaps_split_and_edges_fill() -> None:
    x = _series(30)
    x[0] = np.nan  # edge gap: nearest reading
    x[10:20] = np.nan  # too long
    segs = fill_gaps(x, GapPolicy.INTERPOLATE, max_gap=3)
    assert [(s.start, s.stop) for s in segs] == [(0, 10), (20, 30)]
    assert np.allclose(segs[0].values[0], x[1]) and segs[0].imputed[0]
    assert not segs[1].imputed.any()


def test_split_policy_and_min_length() -> None:
    x = _series(30)
    x[[5, 6, 20]] = np.nan
    segs = fill_gaps(x, GapPolicy.SPLIT)
    assert [(s.start, s.stop) for s in segs] == [(0, 5), (7, 20), (21, 30)]
    assert not any(s.imputed.any() for s in segs)
    assert [(s.start, s.stop) for s in fill_gaps(x, GapPolicy.SPLIT, min_length=10)] == [(7, 20)]
    assert fill_gaps(np.full((5, 2), np.nan)) == []
    with pytest.raises(ValueError):
        fill_gaps(np.zeros(5))
