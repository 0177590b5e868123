"""Synthetic degradation: the published defaults, checked against rules recomputed here.

Expected values are derived in the tests from the documented rule (interval bounds with
exact fractions, the trapezoid elementwise, the time shifts index by index), using only
the random choices that :class:`Degraded` records.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from ml.data.degradation import (
    Applied,
    DegradationConfig,
    DegradationKind,
    Degraded,
    degrade,
)

KINDS = list(DegradationKind)
SOFT, UNIFORM, PEAK, LENGTH, NOISE = (
    DegradationKind.SOFT_REPLACE, DegradationKind.UNIFORM_REPLACE,
    DegradationKind.PEAK_NOISE, DegradationKind.LENGTH_ADJUST, DegradationKind.WHITE_NOISE)
STEPS = (33, 65, 127, 257)
PATCH = 4


def _pool(rng: np.random.Generator, length: int, channels: int) -> np.ndarray:
    """Channels with different offsets and scales, so range-relative rules matter."""
    scale = np.linspace(0.5, 40.0, channels)
    offset = np.linspace(-100.0, 7.0, channels)
    return (rng.normal(size=(length, channels)) * scale + offset).astype(np.float32)


def _bounds(steps: int) -> tuple[int, int]:
    """Published interval lengths ``[low, high)`` from exact fractions."""
    low = max(1, int(Fraction("0.015") * steps))
    high = max(low + 1, int(Fraction("0.15") * steps))
    return low, high


def _draw(kind: DegradationKind, steps: int, seed: int, channels: int = 3,
          patch: int = PATCH, pool_len: int = 600,
          cfg: DegradationConfig | None = None) -> tuple[np.ndarray, np.ndarray, int, Degraded]:
    rng = np.random.default_rng(seed)
    pool = _pool(rng, pool_len, channels)
    origin = int(rng.integers(0, pool_len - steps + 1))
    window = pool[origin:origin + steps].copy()
    out = degrade(window, rng, cfg or DegradationConfig.only(kind), pool=pool,
                  origin=origin, patch_size=patch)
    return pool, window, origin, out


def _one(out: Degraded, kind: DegradationKind) -> Applied:
    assert out.kinds == (kind,) and len(out.applied) == 1
    a = out.applied[0]
    assert out.intervals == (a.label,)
    expected = np.zeros(len(out.mask), dtype=bool)
    expected[a.label[0]:a.label[1]] = True
    assert np.array_equal(out.mask, expected)
    return a


def _weights(length: int) -> np.ndarray:
    """Published trapezoid, elementwise: ramps of length // 10 from 0 to 0.7."""
    ramp = length // 10
    w = np.full(length, 0.7)
    for k in range(ramp):
        w[k] = w[length - 1 - k] = 0.0 if ramp == 1 else 0.7 * k / (ramp - 1)
    return w


@pytest.mark.parametrize("steps", STEPS)
def test_soft_replacing_blends_a_source_with_the_published_trapezoid(steps: int) -> None:
    zero_edge_seen = 0
    for seed in range(25):
        pool, window, _, out = _draw(SOFT, steps, seed)
        a = _one(out, SOFT)
        s, e = a.start, a.stop
        low, high = _bounds(steps)
        assert (s, e) == a.label and low <= e - s < high and 0 <= s and e <= steps
        assert len(a.sources) == len(a.channels) >= 1
        lo, hi = pool.min(axis=0).astype(np.float64), pool.max(axis=0).astype(np.float64)
        w = _weights(e - s)
        expected = window.astype(np.float64)
        for c, src in zip(a.channels, a.sources, strict=True):
            seq = pool[src.start:src.start + e - s, src.channel].astype(np.float64)
            assert len(seq) == e - s
            seq = seq[::-1] if src.reversed else seq
            seq = lo[src.channel] + hi[src.channel] - seq if src.flipped else seq
            expected[s:e, c] = w * seq + (1 - w) * window[s:e, c]
        np.testing.assert_allclose(out.values, expected.astype(np.float32), rtol=1e-6,
                                   atol=1e-4)
        if w[0] == 0.0:  # labelled although this edge step keeps its value
            assert out.mask[s] and out.mask[e - 1]
            assert np.array_equal(out.values[s], window[s])
            zero_edge_seen += 1
    if steps >= 257:
        assert zero_edge_seen, "long intervals must have zero-weight edges"


def test_soft_replacing_sources_reversals_and_flips_are_independent_halves() -> None:
    n = 0
    same = rev = flip = 0
    for seed in range(400):
        _, _, _, out = _draw(SOFT, 65, seed, channels=4)
        for c, src in zip(out.applied[0].channels, out.applied[0].sources, strict=True):
            n += 1
            same += src.channel == c
            rev += src.reversed
            flip += src.flipped
    assert n > 400
    assert abs(same / n - 0.25) < 0.06  # uniform among 4 channels, itself included
    assert abs(rev / n - 0.5) < 0.06 and abs(flip / n - 0.5) < 0.06


@pytest.mark.parametrize("steps", STEPS)
def test_uniform_replacing_is_a_constant_in_the_pool_range(steps: int) -> None:
    positions = []
    for seed in range(25):
        pool, window, _, out = _draw(UNIFORM, steps, seed)
        a = _one(out, UNIFORM)
        s, e = a.start, a.stop
        low, high = _bounds(steps)
        assert low <= e - s < high
        expected = window.copy()
        lo, hi = pool.min(axis=0), pool.max(axis=0)
        for c in a.channels:
            value = out.values[s, c]
            assert lo[c] <= value <= hi[c]
            positions.append((value - lo[c]) / (hi[c] - lo[c]))
            expected[s:e, c] = value
        assert np.array_equal(out.values, expected)
    assert min(positions) < 0.2 and max(positions) > 0.8  # the whole range, not ±3


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("patch", [1, 4, 9])
def test_peak_noising_jumps_to_the_opposite_end_and_labels_a_patch_each_side(
        steps: int, patch: int) -> None:
    for seed in range(20):
        pool, window, _, out = _draw(PEAK, steps, seed, patch=patch)
        a = _one(out, PEAK)
        assert a.peak is not None and a.start <= a.peak < a.stop
        p = a.peak
        assert a.label == (max(0, p - patch), min(steps, p + patch + 1))
        lo, hi = pool.min(axis=0), pool.max(axis=0)
        expected = window.copy()
        for c in a.channels:
            new, old, width = out.values[p, c], window[p, c], hi[c] - lo[c]
            if old < (lo[c] + hi[c]) / 2:
                assert hi[c] - 0.1 * width - 1e-3 <= new <= hi[c] + 1e-3
            else:
                assert lo[c] - 1e-3 <= new <= lo[c] + 0.1 * width + 1e-3
            expected[p, c] = new
        assert np.array_equal(out.values, expected)


def test_peak_label_needs_the_patch_size() -> None:
    window = np.zeros((20, 2))
    with pytest.raises(ValueError, match="patch_size"):
        degrade(window, np.random.default_rng(0), DegradationConfig())
    out = degrade(window, np.random.default_rng(0),
                  DegradationConfig.only(PEAK, peak_label_margin=2))
    assert out.applied[0].label[1] - out.applied[0].label[0] <= 5


@pytest.mark.parametrize("steps", STEPS)
def test_length_adjusting_slows_down_or_speeds_up_with_the_documented_shifts(
        steps: int) -> None:
    longest = int(Fraction("0.15") * steps)
    seen: set[tuple[bool, int]] = set()
    for seed in range(60):
        pool, window, origin, out = _draw(LENGTH, steps, seed, pool_len=900)
        if not out.kinds:
            # Published: no slowed part (length < factor), or no room to speed up.
            assert not out.mask.any() and np.array_equal(out.values, window)
            continue
        a = _one(out, LENGTH)
        s, e, f = a.start, a.stop, a.factor
        assert f in (2, 3, 4) and a.channels == tuple(range(window.shape[1]))
        length = e - s
        expected = window.copy()
        if a.lengthened:
            assert length > longest // 2
            slow = length - length % f
            assert a.label == (s, s + slow) and slow > 0
            for k in range(slow):  # each of the first slow / f samples f times
                expected[s + k] = window[s + k // f]
            for k in range(s + slow, steps):  # continues where the slowed part ended
                expected[k] = window[k - slow + slow // f]
        else:
            assert length <= longest // 2 and origin > 1.5 * longest
            assert a.label == (s, e)
            shift = length * (f - 1)
            for k in range(s):
                expected[k] = pool[origin - shift + k]
            for k in range(length):
                expected[s + k] = pool[origin + s - shift + f * k]
        assert np.array_equal(out.values, expected)
        seen.add((bool(a.lengthened), f))
    assert {lengthened for lengthened, _ in seen} == {True, False}
    assert {f for _, f in seen} == {2, 3, 4}


def test_length_adjusting_never_speeds_up_without_data_before_the_window() -> None:
    steps, longest = 100, 15
    applied = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        pool = _pool(rng, 400, 2)
        origin = int(rng.integers(0, int(1.5 * longest) + 1))  # the published condition
        out = degrade(pool[origin:origin + steps], rng, DegradationConfig.only(LENGTH),
                      pool=pool, origin=origin, patch_size=PATCH)
        for a in out.applied:
            assert a.lengthened
        applied += len(out.applied)
        without = degrade(pool[:steps], np.random.default_rng(seed),
                          DegradationConfig.only(LENGTH), patch_size=PATCH)
        assert all(a.lengthened for a in without.applied)
    assert applied > 0


def test_origin_must_locate_the_window_in_the_pool() -> None:
    pool = _pool(np.random.default_rng(0), 200, 2)
    with pytest.raises(ValueError, match="origin"):
        degrade(pool[10:50], np.random.default_rng(0), pool=pool, origin=11, patch_size=4)
    with pytest.raises(ValueError, match="pool"):
        degrade(pool[10:50], np.random.default_rng(0), pool=pool[:, :1], patch_size=4)


@pytest.mark.parametrize("steps", STEPS)
def test_white_noise_is_small_and_clipped_to_the_range(steps: int) -> None:
    rel = []
    for seed in range(20):
        pool, window, _, out = _draw(NOISE, steps, seed)
        a = _one(out, NOISE)
        lo, hi = pool.min(axis=0), pool.max(axis=0)
        changed = np.zeros_like(window, dtype=bool)
        changed[a.start:a.stop, list(a.channels)] = True
        assert np.array_equal(out.values[~changed], window[~changed])
        for c in a.channels:
            seg = out.values[a.start:a.stop, c]
            assert (seg >= lo[c]).all() and (seg <= hi[c]).all()
            rel.extend((seg - window[a.start:a.stop, c]) / (hi[c] - lo[c]))
    assert 0.002 < float(np.std(rel)) < 0.004


@pytest.mark.parametrize("channels", [1, 2, 10])
def test_each_channel_with_probability_0_3_and_never_none(channels: int) -> None:
    n = 1500
    counts = np.zeros(channels)
    for seed in range(n):
        rng = np.random.default_rng(seed)
        out = degrade(rng.random((40, channels)), rng, DegradationConfig.only(UNIFORM))
        ch = out.applied[0].channels
        assert len(ch) >= 1 and len(set(ch)) == len(ch)
        counts[list(ch)] += 1
    # P(chosen) = 0.3 + P(no draw <= 0.3) / C, the smallest draw being then uniform.
    expected = 0.3 + 0.7 ** channels / channels
    assert np.all(np.abs(counts / n - expected) < 0.04), counts / n


def test_kind_frequencies_follow_the_published_probabilities() -> None:
    cfg = DegradationConfig()
    rng = np.random.default_rng(3)
    pool = _pool(rng, 2000, 2)
    counts = dict.fromkeys(KINDS, 0)
    none = 0
    n = 4000
    for _ in range(n):
        origin = int(rng.integers(100, 2000 - 64 + 1))  # every length adjustment applies
        out = degrade(pool[origin:origin + 64], rng, cfg, pool=pool, origin=origin,
                      patch_size=PATCH)
        none += not out.kinds
        for k in out.kinds:
            counts[k] += 1
    published = {SOFT: 0.5, UNIFORM: 0.15, PEAK: 0.15, LENGTH: 0.1, NOISE: 0.0}
    assert cfg.probabilities == published
    for kind, p in published.items():
        assert abs(counts[kind] / n - p) < 0.025, kind
    assert abs(none / n - 0.1) < 0.02


@pytest.mark.parametrize("steps", [*STEPS, 100, 200])
def test_interval_lengths_cover_exactly_the_published_bounds(steps: int) -> None:
    low, high = _bounds(steps)
    lengths: set[int] = set()
    for seed in range(600):
        rng = np.random.default_rng(seed)
        out = degrade(rng.random((steps, 1)), rng, DegradationConfig.only(UNIFORM))
        a = out.applied[0]
        assert 0 <= a.start < a.stop <= steps
        lengths.add(a.stop - a.start)
    assert lengths == set(range(low, high))


@pytest.mark.parametrize("steps", [1, 2, 3, 6])
def test_tiny_windows(steps: int) -> None:
    for kind in KINDS:
        for seed in range(10):
            rng = np.random.default_rng(seed)
            window = rng.random((steps, 2))
            out = degrade(window, rng, DegradationConfig.only(kind), patch_size=PATCH)
            assert out.mask.shape == (steps,) and out.values.shape == window.shape
            for a in out.applied:
                assert 1 <= a.stop - a.start <= steps and a.label[1] <= steps
            if kind is not LENGTH:
                assert out.mask.any()


def test_seeded_and_input_untouched() -> None:
    rng = np.random.default_rng(0)
    pool = _pool(rng, 300, 3)
    w = pool[100:190].copy()
    before = w.copy()
    for seed in range(30):
        a = degrade(w, np.random.default_rng(seed), pool=pool, origin=100, patch_size=4)
        b = degrade(w, np.random.default_rng(seed), pool=pool, origin=100, patch_size=4)
        assert np.array_equal(a.values, b.values) and np.array_equal(a.mask, b.mask)
        assert a.applied == b.applied and a.values.dtype == w.dtype
    assert np.array_equal(w, before)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DegradationConfig(soft_replace=0.9, uniform_replace=0.2)
    with pytest.raises(ValueError):
        DegradationConfig(peak_noise=-0.1)
    with pytest.raises(ValueError):
        DegradationConfig(soft_source="elsewhere")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DegradationConfig(length_factors=(1, 2))
    with pytest.raises(ValueError):
        DegradationConfig(min_fraction=0.2, max_fraction=0.1)
    with pytest.raises(ValueError):
        degrade(np.zeros((0, 2)), np.random.default_rng(0), patch_size=4)


def test_config_round_trips_and_old_metadata_loads_as_gridlake_v1() -> None:
    for cfg in (DegradationConfig(), DegradationConfig.gridlake_v1(),
                DegradationConfig(channel_fraction=0.4, length_factors=(2, 5),
                                  peak_label_margin=3)):
        assert DegradationConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    old = {"soft_replace": 0.5, "uniform_replace": 0.15, "peak_noise": 0.15,
           "length_adjust": 0.1, "white_noise": 0.0, "draws": 1, "max_fraction": 0.15,
           "channel_fraction": 0.5, "flip_prob": 0.5, "ramp_fraction": 0.2,
           "uniform_range": [-3.0, 3.0], "peak_range": [2.0, 6.0], "noise_std": 0.5}
    assert DegradationConfig.from_dict(old) == DegradationConfig.gridlake_v1()
    assert DegradationConfig.from_dict({**old, "draws": 2}).draws == 2
    newer = {k: v for k, v in DegradationConfig().to_dict().items() if k != "soft_weight_max"}
    assert DegradationConfig.from_dict({**newer, "future": 1}) == DegradationConfig()


# GridLake v1, kept as a preset for ablations: its earlier guarantees still hold.
V1 = DegradationConfig.gridlake_v1()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("steps", "channels"), [(3, 1), (7, 2), (33, 3), (101, 1), (257, 4)])
def test_v1_every_degradation_is_labelled_exactly(kind: DegradationKind, steps: int,
                                                  channels: int) -> None:
    """Outside the mask nothing changes; on every masked step some channel changed."""
    cfg = V1.always(kind)
    cfg = DegradationConfig.from_dict({**cfg.to_dict(), "max_fraction": 0.3})
    for seed in range(40):
        rng = np.random.default_rng(seed)
        window = rng.normal(size=(steps, channels)).astype(np.float32)
        pool = rng.normal(size=(500, channels)).astype(np.float32)
        out = degrade(window, rng, cfg, pool=pool if seed % 2 else None)
        assert out.values.shape == window.shape and out.values.dtype == window.dtype
        assert out.kinds == (kind,), "a degradation with probability 1 must be applied"
        a = _one(out, kind)
        assert a.label == (a.start, a.stop)
        assert np.array_equal(out.values[~out.mask], window[~out.mask])
        changed = (out.values != window).any(axis=1)
        assert changed[out.mask].all(), f"unchanged labelled step (seed {seed})"
        if kind is PEAK:
            assert out.mask.sum() == 1
        else:
            assert 1 <= a.stop - a.start <= max(1 if kind is not LENGTH else 2,
                                                 int(0.3 * steps))


def test_v1_differs_from_published_where_documented() -> None:
    assert V1.channel_fraction == 0.5 and V1.min_fraction == 0.0
    assert (V1.soft_source, V1.soft_weight_max, V1.peak_label_margin, V1.length_mode) == (
        "same", 1.0, 0, "resample")
    rng = np.random.default_rng(4)
    found = []
    for _ in range(300):
        out = degrade(rng.normal(size=(50, 1)), rng, V1.always(UNIFORM))
        found.append(out.values[out.applied[0].start, 0])
    constants = np.array(found)
    assert constants.min() < -2.5 and constants.max() > 2.5  # U(-3, 3) in scaled units


def test_v1_probabilities_are_respected() -> None:
    rng = np.random.default_rng(3)
    counts = dict.fromkeys(KINDS, 0)
    none = 0
    n = 3000
    for _ in range(n):
        out = degrade(rng.normal(size=(50, 2)), rng, V1)
        if not out.kinds:
            none += 1
            assert not out.mask.any()
        for k in out.kinds:
            counts[k] += 1
    for kind, p in V1.probabilities.items():
        assert abs(counts[kind] / n - p) < 0.03, kind
    assert abs(none / n - (1 - sum(V1.probabilities.values()))) < 0.03


def test_v1_multiple_draws_and_bounded_intervals() -> None:
    rng = np.random.default_rng(5)
    cfg = DegradationConfig.gridlake_v1(draws=3, max_fraction=0.1)
    lengths: set[int] = set()
    for _ in range(300):
        out = degrade(rng.normal(size=(200, 3)), rng, cfg)
        assert len(out.kinds) <= 3
        lengths.update(b - a for a, b in out.intervals)
        expected = np.zeros(200, dtype=bool)
        for a, b in out.intervals:
            expected[a:b] = True
        assert np.array_equal(out.mask, expected)
    assert 1 in lengths and max(lengths) == 20  # from 1 step up to 10 % inclusive
