"""Utility PV plants: irradiance-driven DC power, temperature derating, inverter clipping.

* module temperature ``T_mod = T_amb + G · (NOCT − 20) / 800`` with NOCT = 45 °C;
* DC power ``P_dc = P_dc,rated · G / 1000 · (1 + γ (T_mod − 25))`` with γ = −0.004 /K;
* AC power ``P_ac = min(η · P_dc, P_ac,rated)`` with η = 0.975, zero below 0.5 % of rating
  (the inverter is in standby).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOCT = 45.0
GAMMA = -0.004
ETA_INV = 0.975


@dataclass
class PvState:
    """Instantaneous PV plant values (arrays over plants)."""

    irradiance: np.ndarray
    module_temp: np.ndarray
    dc_kw: np.ndarray
    ac_kw: np.ndarray
    dc_v: np.ndarray
    running: np.ndarray


def pv_output(
    irradiance: np.ndarray, ambient_c: float, dc_rated: np.ndarray, ac_rated: np.ndarray
) -> PvState:
    """PV plant output for the plane-of-array irradiance (W/m²) of each plant."""
    g = np.maximum(irradiance, 0.0)
    t_mod = ambient_c + g * (NOCT - 20.0) / 800.0
    dc = dc_rated * g / 1000.0 * (1.0 + GAMMA * (t_mod - 25.0))
    running = dc > 0.005 * ac_rated
    ac = np.where(running, np.minimum(ETA_INV * dc, ac_rated), 0.0)
    dc = np.where(running, dc, 0.0)
    # MPP voltage falls with temperature; open-circuit voltage in daylight standby.
    v_mpp = 620.0 * (1.0 + 0.0035 * (25.0 - t_mod))
    dc_v = np.where(running, v_mpp, np.where(g > 0, v_mpp * 1.22, 0.0))
    return PvState(g, t_mod, dc, ac, dc_v, running)
