from __future__ import annotations

import numpy as np
import pytest

from ml.data.synthetic import ANOMALY_KINDS, SyntheticSource, inject_anomalies
from ml.evaluation import runs


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_injected_anomalies_are_labelled_exactly(kind: str) -> None:
    rng = np.random.default_rng(5)
    t = np.arange(4000, dtype=float)
    clean = np.column_stack([np.sin(t / 9.0), np.cos(t / 31.0) * 3 + 10, t % 17])
    x, labels = inject_anomalies(clean, rng, n_events=8, kinds=[kind])
    events = runs(labels != "")
    assert 1 <= len(events) <= 8 and set(labels.tolist()) == {"", kind}
    changed = np.any(~np.isclose(x, clean), axis=1)
    assert not changed[labels == ""].any()  # nothing outside the labels moves
    for a, b in events:
        assert changed[a:b].any()
    starts = [a for a, _ in events]
    assert starts == sorted(starts)
    assert all(events[i + 1][0] - events[i][1] >= 20 for i in range(len(events) - 1))


def test_injection_refuses_unknown_kinds_and_shapes() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        inject_anomalies(np.zeros((100, 2)), rng, 1, kinds=["meteor"])
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        inject_anomalies(np.zeros(100), rng, 1)


def test_synthetic_source_is_seeded_and_labelled() -> None:
    src = SyntheticSource(seed=3, train_steps=2000, test_steps=3000, anomaly_events=6)
    a, b = src.load(), src.load()
    assert np.array_equal(a[0].values, b[0].values) and a[0].fault_types is None
    test = src.load_test()[0]
    assert test.labels is not None and 0.02 < test.labels.mean() < 0.4
    assert test.ts_ms[0] == 2000 * src.step_ms  # the test period follows training
    assert src.description().channels == tuple(f"c{i}" for i in range(6))
    # the set point barely moves: the scaler guard has something to guard
    assert np.std(a[0].values[:, -2]) < 1e-3 * 50.0
    assert not np.array_equal(SyntheticSource(seed=4, train_steps=2000).load()[0].values,
                              a[0].values)
