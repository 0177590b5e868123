"""Distribution transformer thermal model (IEEE C57.91 Clause 7) and dissolved gases.

Thermal model, per minute with the load factor ``K`` held over the step ``Δt``:

* ultimate top-oil rise ``Δθ_TO,U = Δθ_TO,R · ((K²R + 1) / (R + 1))ⁿ``;
* top-oil rise ``Δθ_TO ← Δθ_TO,U + (Δθ_TO − Δθ_TO,U) · exp(−Δt / τ_TO)``;
* ultimate hot-spot rise over top oil ``Δθ_H,U = Δθ_H,R · K^(2m)``;
* hot-spot rise ``Δθ_H ← Δθ_H,U + (Δθ_H − Δθ_H,U) · exp(−Δt / τ_W)``;
* ``θ_TO = θ_A + Δθ_TO``, ``θ_H = θ_TO + Δθ_H``;
* aging acceleration ``F_AA = exp(15000/383 − 15000/(θ_H + 273))``.

Dissolved gases grow slowly with insulation aging and quickly under the fault patterns
(thermal fault, partial discharge, arcing); the monitor reports them with noise.
"""

from __future__ import annotations

import math

import numpy as np

# ONAN distribution transformer constants (IEEE C57.91 typical values).
TOP_OIL_RISE_RATED = 55.0
"""Δθ_TO,R: top-oil rise over ambient at rated load (K)."""
HOT_SPOT_RISE_RATED = 25.0
"""Δθ_H,R: hot-spot rise over top oil at rated load (K)."""
EXP_N = 0.8
"""n: oil exponent (ONAN)."""
EXP_M = 0.8
"""m: winding exponent (ONAN)."""
TAU_TO_MIN = 180.0
"""τ_TO: top-oil time constant (minutes)."""
TAU_W_MIN = 5.0
"""τ_W: winding hot-spot time constant (minutes)."""

GASES: tuple[str, ...] = ("h2", "ch4", "c2h2", "c2h4", "c2h6", "co")
_GAS_MEDIAN = np.array([30.0, 12.0, 0.3, 6.0, 9.0, 250.0])
_GAS_SIGMA = np.array([0.4, 0.4, 0.6, 0.5, 0.4, 0.3])
_AGING_RATE = np.array([0.02, 0.01, 0.0, 0.005, 0.008, 0.5]) / 60.0  # ppm/min at F_AA=1
DGA_PATTERNS: dict[str, np.ndarray] = {
    # ppm per hour at full development (h2, ch4, c2h2, c2h4, c2h6, co)
    "dga_thermal": np.array([1.0, 3.0, 0.05, 6.0, 1.5, 2.0]),
    "dga_partial_discharge": np.array([8.0, 1.0, 0.02, 0.1, 0.4, 0.5]),
    "dga_arcing": np.array([6.0, 1.2, 2.0, 1.5, 0.3, 0.5]),
}


def ultimate_rises(k: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ultimate top-oil and hot-spot rises (K) at load factor ``k``, loss ratio ``r``."""
    top = TOP_OIL_RISE_RATED * ((k * k * r + 1.0) / (r + 1.0)) ** EXP_N
    hot = HOT_SPOT_RISE_RATED * k ** (2.0 * EXP_M)
    return top, hot


def aging_factor(hot_spot_c: np.ndarray) -> np.ndarray:
    """IEEE C57.91 aging acceleration factor (1.0 at 110 °C)."""
    return np.exp(15000.0 / 383.0 - 15000.0 / (hot_spot_c + 273.0))


class Thermal:
    """Top-oil and hot-spot state of every transformer."""

    def __init__(self, loss_ratio: np.ndarray) -> None:
        self.r = loss_ratio
        self.d_to = np.zeros_like(loss_ratio)
        self.d_h = np.zeros_like(loss_ratio)
        self._started = False

    def temperatures(
        self, k: np.ndarray, ambient: np.ndarray, cooling: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-oil and hot-spot temperatures now (°C); the first call starts at steady state."""
        if not self._started:
            top, hot = ultimate_rises(k, self.r)
            self.d_to, self.d_h = top * cooling, hot
            self._started = True
        top_oil = ambient + self.d_to
        return top_oil, top_oil + self.d_h

    def advance(self, k: np.ndarray, cooling: np.ndarray, dt_min: float) -> None:
        """Advance by ``dt_min`` minutes at load factor ``k`` (cooling multiplies the rise)."""
        top_u, hot_u = ultimate_rises(k, self.r)
        top_u = top_u * cooling
        self.d_to = top_u + (self.d_to - top_u) * math.exp(-dt_min / TAU_TO_MIN)
        self.d_h = hot_u + (self.d_h - hot_u) * math.exp(-dt_min / TAU_W_MIN)

    def reset(self, idx: int) -> None:
        """A new transformer: oil at ambient."""
        self.d_to[idx] = 0.0
        self.d_h[idx] = 0.0


class Dga:
    """Dissolved-gas concentrations (ppm) of every transformer's oil."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self._rng = rng
        self.ppm = _GAS_MEDIAN * np.exp(_GAS_SIGMA * rng.standard_normal((n, len(GASES))))

    def advance(self, f_aa: np.ndarray, fault_rates: np.ndarray, dt_min: float) -> None:
        """Grow the gases over ``dt_min`` minutes (aging plus fault rates in ppm/min)."""
        self.ppm += (f_aa[:, None] * _AGING_RATE + fault_rates) * dt_min

    def sample(self) -> np.ndarray:
        """A noisy monitor reading of every transformer (ppm, 0.1 ppm resolution)."""
        rng = self._rng
        noisy = self.ppm * (1.0 + 0.02 * rng.standard_normal(self.ppm.shape))
        noisy += 0.05 * rng.standard_normal(self.ppm.shape)
        return np.round(np.maximum(noisy, 0.0), 1)

    def reset(self, idx: int) -> None:
        """New oil: low gas content."""
        self.ppm[idx] = _GAS_MEDIAN * 0.2
