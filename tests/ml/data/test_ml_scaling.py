from __future__ import annotations

import numpy as np
import pytest

from ml.data.scaling import GapPolicy, Scaler, ScalerKind, fill_gaps


def test_scaler_fits_training_data_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal([5.0, -2.0, 7.0], [2.0, 0.5, 0.0], size=(5000, 3))
    test = rng.normal([50.0, -2.0, 7.0], [2.0, 0.5, 0.0], size=(100, 3))
    sc = Scaler.fit([train[:2500], train[2500:]], kind="zscore")
    z = sc.transform(train)
    assert np.allclose(z[:, :2].mean(axis=0), 0, atol=1e-6)
    assert np.allclose(z[:, :2].std(axis=0), 1, atol=1e-4)
    assert sc.scale[2] == pytest.approx(7e-3)  # constant in training: 0.1 % of its level
    assert sc.near_constant == (2,)
    assert np.all(sc.transform(test)[:, 0] == sc.clip)  # far outside training: clipped
    assert z.dtype == np.float32


def test_scaler_ignores_nan_and_round_trips() -> None:
    x = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
    sc = Scaler.fit([x], clip=None, kind="zscore")
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


@pytest.mark.parametrize("kind", list(ScalerKind))
def test_each_scaler_kind_fits_training_data(kind: ScalerKind) -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(100.0, 5.0, 4000), rng.uniform(-2.0, 6.0, 4000)])
    sc = Scaler.fit([x], clip=None, kind=kind)
    z = sc.transform(x).astype(np.float64)
    if kind is ScalerKind.NONE:
        assert np.allclose(z, x, rtol=1e-6)
    elif kind is ScalerKind.MINMAX:
        assert np.allclose(z.min(axis=0), 0.0, atol=1e-6)
        assert np.allclose(z.max(axis=0), 1.0, atol=1e-6)
    elif kind is ScalerKind.ZSCORE:
        assert np.allclose(z.mean(axis=0), 0.0, atol=1e-4)
        assert np.allclose(z.std(axis=0), 1.0, atol=1e-4)
    else:
        assert np.allclose(np.median(z, axis=0), 0.0, atol=1e-3)
        q25, q75 = np.percentile(z, [25, 75], axis=0)
        assert np.allclose(q75 - q25, 1.349, atol=1e-3)
    again = Scaler.from_dict(sc.to_dict())
    assert again.kind is kind
    assert np.array_equal(again.transform(x), sc.transform(x))


def test_near_constant_channels_do_not_explode() -> None:
    # a channel that barely moves in training (800 V +- 1 µV) and one exactly 0:
    # a plain z-score would put a 1 V step at ~10^6 scaled units
    rng = np.random.default_rng(2)
    train = np.column_stack([800.0 + 1e-6 * rng.standard_normal(1000), np.zeros(1000),
                             rng.normal(0.0, 1.0, 1000)])
    for kind in (ScalerKind.MINMAX, ScalerKind.ZSCORE, ScalerKind.ROBUST):
        sc = Scaler.fit([train], clip=None, kind=kind)
        assert sc.near_constant == (0, 1), kind
        step = sc.transform(np.array([[801.0, 1.0, 0.0]]))[0]
        assert abs(step[0] - sc.transform(train[:1])[0, 0]) == pytest.approx(1.0 / 0.8, rel=1e-3)
        assert abs(step[1]) == pytest.approx(1.0)  # level 0: unit scale
    assert Scaler.fit([train], kind="zscore").near_constant == (0, 1)


def test_older_zscore_metadata_still_loads() -> None:
    old = {"kind": "standard", "mean": [1.0, 2.0], "scale": [2.0, 4.0], "clip": 10.0}
    sc = Scaler.from_dict(old)
    assert sc.kind is ScalerKind.ZSCORE and sc.near_constant == ()
    assert sc.transform(np.array([[3.0, 6.0]])).tolist() == [[1.0, 1.0]]


def test_scaler_refuses_bad_training_data() -> None:
    with pytest.raises(ValueError, match="infinite"):
        Scaler.fit([np.array([[1.0], [np.inf]])])
    with pytest.raises(ValueError, match="one C"):
        Scaler.fit([np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError):
        Scaler.fit([np.zeros((3, 1))], kind="nosuch")


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


def test_floor_zero_is_the_scaler_before_the_guard() -> None:
    # kept for the ablation: a set point at 50 +- 1e-4 gets its own tiny std as scale
    rng = np.random.default_rng(4)
    train = np.column_stack([50.0 + 1e-4 * rng.standard_normal(1000), np.full(1000, 3.0)])
    old = Scaler.fit([train], clip=None, kind="zscore", floor=0.0)
    assert old.scale[0] == pytest.approx(np.std(train[:, 0]))
    assert old.scale[1] == 1.0 and old.near_constant == (1,)
    guarded = Scaler.fit([train], clip=None, kind="zscore")
    moved = np.array([[50.05, 3.0]])
    assert abs(old.transform(moved)[0, 0]) > 100 > abs(guarded.transform(moved)[0, 0])
    with pytest.raises(ValueError, match="floor"):
        Scaler.fit([train], floor=-1.0)
