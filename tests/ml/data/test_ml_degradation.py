from __future__ import annotations

import numpy as np
import pytest

from ml.data.degradation import DegradationConfig, DegradationKind, degrade

KINDS = list(DegradationKind)


def _window(rng: np.random.Generator, steps: int, channels: int) -> np.ndarray:
    return rng.normal(size=(steps, channels)).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("steps", "channels"), [(3, 1), (7, 2), (33, 3), (101, 1), (257, 4)])
def test_every_degradation_is_labelled_exactly(kind: DegradationKind, steps: int,
                                               channels: int) -> None:
    """Outside the mask nothing changes; on every masked step some channel changed."""
    cfg = DegradationConfig.only(kind, max_fraction=0.3)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        window = _window(rng, steps, channels)
        pool = _window(rng, 500, channels)
        out = degrade(window, rng, cfg, pool=pool if seed % 2 else None)
        assert out.values.shape == window.shape and out.values.dtype == window.dtype
        assert out.mask.shape == (steps,) and out.mask.dtype == bool
        assert out.kinds == (kind,), "a degradation with probability 1 must be applied"
        assert out.mask.any()
        expected = np.zeros(steps, dtype=bool)
        for a, b in out.intervals:
            expected[a:b] = True
        assert np.array_equal(out.mask, expected)
        assert np.array_equal(out.values[~out.mask], window[~out.mask])
        changed = (out.values != window).any(axis=1)
        assert changed[out.mask].all(), f"unchanged labelled step (seed {seed})"
        if kind is DegradationKind.PEAK_NOISE:
            assert out.mask.sum() == 1


def test_soft_replacement_is_labelled_without_categorical_columns() -> None:
    """The published variant left soft-replaced windows of all-numeric data unlabelled."""
    rng = np.random.default_rng(1)
    cfg = DegradationConfig.only(DegradationKind.SOFT_REPLACE)
    for _ in range(200):
        out = degrade(_window(rng, 64, 5), rng, cfg, pool=_window(rng, 300, 5))
        assert out.mask.any() and out.kinds == (DegradationKind.SOFT_REPLACE,)


@pytest.mark.parametrize("steps", [1, 2])
def test_tiny_windows(steps: int) -> None:
    rng = np.random.default_rng(0)
    for kind in KINDS:
        out = degrade(_window(rng, steps, 2), rng, DegradationConfig.only(kind))
        assert out.mask.shape == (steps,)
        if kind is DegradationKind.LENGTH_ADJUST:
            assert not out.mask.any() and out.kinds == ()  # nothing to stretch
        else:
            assert out.mask.any()


def test_probabilities_are_respected() -> None:
    cfg = DegradationConfig()
    rng = np.random.default_rng(3)
    counts = dict.fromkeys(KINDS, 0)
    none = 0
    n = 3000
    for _ in range(n):
        out = degrade(_window(rng, 50, 2), rng, cfg)
        if not out.kinds:
            none += 1
            assert not out.mask.any()
        for k in out.kinds:
            counts[k] += 1
    for kind, p in cfg.probabilities.items():
        assert abs(counts[kind] / n - p) < 0.03, kind
    assert abs(none / n - (1 - sum(cfg.probabilities.values()))) < 0.03


def test_interval_lengths_bounded_and_multiple_draws() -> None:
    rng = np.random.default_rng(5)
    cfg = DegradationConfig(draws=3, max_fraction=0.1)
    for _ in range(200):
        out = degrade(_window(rng, 200, 3), rng, cfg)
        assert len(out.kinds) <= 3
        assert all(b - a <= 20 for a, b in out.intervals)


def test_seeded_and_input_untouched() -> None:
    w = _window(np.random.default_rng(0), 90, 3)
    before = w.copy()
    a = degrade(w, np.random.default_rng(42))
    b = degrade(w, np.random.default_rng(42))
    assert np.array_equal(a.values, b.values) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(w, before)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DegradationConfig(soft_replace=0.9, uniform_replace=0.2)
    with pytest.raises(ValueError):
        DegradationConfig(peak_noise=-0.1)
    with pytest.raises(ValueError):
        degrade(np.zeros((0, 2)), np.random.default_rng(0))
