import math

import numpy as np
import pytest

from mock_devices import transformers as tr


def test_rated_load_gives_rated_rises() -> None:
    top, hot = tr.ultimate_rises(np.array([1.0]), np.array([5.0]))
    assert top[0] == pytest.approx(tr.TOP_OIL_RISE_RATED)
    assert hot[0] == pytest.approx(tr.HOT_SPOT_RISE_RATED)
    assert tr.aging_factor(np.array([110.0]))[0] == pytest.approx(1.0)
    assert tr.aging_factor(np.array([120.0]))[0] > 2.0


def test_top_oil_follows_its_time_constant() -> None:
    th = tr.Thermal(np.array([5.0]))
    k0, k1 = np.array([0.0]), np.array([1.0])
    amb, cool = np.array([30.0]), np.array([1.0])
    top, hot = th.temperatures(k0, amb, cool)
    assert top[0] == pytest.approx(30.0 + tr.TOP_OIL_RISE_RATED * (1 / 6) ** 0.8)
    start = th.d_to[0]
    for _ in range(int(tr.TAU_TO_MIN)):
        th.advance(k1, cool, 1.0)
    # After one time constant 63.2 % of the step is done.
    done = (th.d_to[0] - start) / (tr.TOP_OIL_RISE_RATED - start)
    assert done == pytest.approx(1 - math.exp(-1), abs=1e-6)
    top, hot = th.temperatures(k1, amb, cool)
    assert hot[0] > top[0] > amb[0]
    assert hot[0] - top[0] == pytest.approx(tr.HOT_SPOT_RISE_RATED, rel=1e-3)


def test_dga_grows_with_fault_rates_only() -> None:
    dga = tr.Dga(np.random.default_rng(1), 2)
    before = dga.ppm.copy()
    rates = np.zeros((2, 6))
    rates[1] = tr.DGA_PATTERNS["dga_arcing"] / 60.0
    dga.advance(np.zeros(2), rates, 600.0)
    assert np.allclose(dga.ppm[0], before[0])
    assert dga.ppm[1, tr.GASES.index("c2h2")] - before[1, 2] == pytest.approx(20.0)
