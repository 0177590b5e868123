"""Battery energy storage (LFP banks) as seen by their BMS, one block of seconds at a time.

* dispatch: a daily schedule (charge at night and at solar noon, discharge in the morning
  and evening peaks) with a first-order power ramp and a small regulation signal;
* current ``I = P / V`` (discharge positive), pack voltage
  ``V = N_s · OCV(SOC) − I · R_pack``;
* coulomb counting: ``SOC_{k+1} = SOC_k − I_k · Δt / (3600 · Q) · 100 %`` with
  ``Q = E_rated / V_nominal`` (Ah), so SOC integrates the reported current exactly;
* cell temperature: first-order rise ``ΔT → 10 K · (I / I_rated)²`` (τ = 20 min) above a
  climate-controlled container; cell voltage gap grows with current and at SOC extremes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lakehouse.time import DAY_MS, HOUR_MS
from mock_devices.topology import ESS_NOMINAL_V

N_SERIES = 240
CELL_R_OHM = 0.00025
CELL_AH = 280.0
_OCV_SOC = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], dtype=float)
_OCV_V = np.array([2.90, 3.12, 3.20, 3.25, 3.27, 3.29, 3.30, 3.31, 3.32, 3.33, 3.35, 3.38, 3.48])
# Dispatch schedule: (start hour local, fraction of rated power, discharge positive).
_SCHEDULE = ((0, -0.45), (5, 0.0), (7, 0.4), (10, -0.3), (15, 0.0), (17, 0.55), (21, 0.0))
SOC_MAX, SOC_MIN = 95.0, 10.0
TRIP_TEMP_C = 60.0
RESET_TEMP_C = 40.0
RAMP_TAU_S = 20.0
HEAT_TAU_S = 1200.0
ETA_CONV = 0.97


@lru_cache(maxsize=32)
def _filter(steps: int, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """Matrices of the recursion ``x_{k+1} = decay·x_k + u_k`` over a block.

    Returns ``(a, low)`` with ``a[k] = decay^(k+1)`` and ``low[k, j] = decay^(k−j)`` for
    ``j ≤ k`` so that ``x_{k+1} = a[k]·x_0 + (low @ u)[k]``.
    """
    k = np.arange(steps)
    a = np.power(decay, k + 1)[:, None]
    diff = np.subtract.outer(k, k)
    low = np.where(diff >= 0, np.power(decay, diff.clip(min=0)), 0.0)
    return a, low


def ocv(soc_pct: np.ndarray) -> np.ndarray:
    """Open-circuit voltage of an LFP cell (V) at a state of charge (%)."""
    return np.interp(soc_pct, _OCV_SOC, _OCV_V)


def schedule_fraction(local_hour: float) -> float:
    """Scheduled power as a fraction of rating at a local hour (discharge positive)."""
    frac = 0.0
    for start, value in _SCHEDULE:
        if local_hour >= start:
            frac = value
    return frac


@dataclass
class EssFaults:
    """Fault inputs of a block: arrays over banks, each per second of the block."""

    extra_gap_mv: np.ndarray
    """(steps, banks) extra cell voltage gap from an imbalance."""
    runaway_c: np.ndarray
    """(steps, banks) extra hot-spot cell temperature of a thermal runaway onset."""


@dataclass
class EssBlock:
    """BMS readings of a block: arrays shaped (steps, banks)."""

    ts: np.ndarray
    dc_voltage: np.ndarray
    dc_current: np.ndarray
    power_kw: np.ndarray
    soc: np.ndarray
    max_temp: np.ndarray
    min_temp: np.ndarray
    max_cell_v: np.ndarray
    min_cell_v: np.ndarray
    gap_mv: np.ndarray
    state: list[list[str]]
    mean_ac_kw: np.ndarray
    """Mean AC power drawn from the bus over the block (charging positive)."""


class Ess:
    """Every battery bank's state; :meth:`block` advances one minute (or less)."""

    def __init__(
        self, rng: np.random.Generator, rated_kw: np.ndarray, rated_kwh: np.ndarray,
        utc_offset_h: float,
    ) -> None:
        n = len(rated_kw)
        self._rng = rng
        self.rated_kw = rated_kw
        self.capacity_ah = rated_kwh * 1000.0 / ESS_NOMINAL_V
        n_par = np.maximum(1.0, np.round(self.capacity_ah / CELL_AH))
        self.r_pack = N_SERIES * CELL_R_OHM / n_par
        self.i_rated = rated_kw * 1000.0 / ESS_NOMINAL_V
        self.soc = rng.uniform(35.0, 65.0, n)
        self.power = np.zeros(n)
        self.heat = np.zeros(n)
        self.reg = np.zeros(n)
        self.scale = rng.uniform(0.8, 1.0, n)
        self.gap_base = rng.uniform(12.0, 30.0, n)
        self.tripped = np.zeros(n, dtype=bool)
        self._tz_ms = int(round(utc_offset_h * HOUR_MS))

    def block(self, t0_ms: int, steps: int, dt_s: float, ambient_c: float,
              faults: EssFaults) -> EssBlock:
        """Simulate ``steps`` BMS readings from ``t0_ms``, ``dt_s`` seconds apart."""
        n = len(self.soc)
        rng = self._rng
        eps = rng.standard_normal((steps, n))
        local_h = ((t0_ms + self._tz_ms) % DAY_MS) / HOUR_MS
        frac = schedule_fraction(local_h)
        # Block-level EMS limits with a taper near the SOC bounds.
        room = np.where(frac < 0, np.clip((SOC_MAX - self.soc) / 3.0, 0.0, 1.0),
                        np.clip((self.soc - SOC_MIN) / 3.0, 0.0, 1.0))
        setpoint = frac * self.rated_kw * self.scale * room
        # Regulation signal: AR(1) per second around the setpoint when active.
        phi = 0.98
        a, low = _filter(steps, phi)
        reg = a * self.reg + low @ (0.02 * math.sqrt(1 - phi * phi) * eps)
        self.reg = reg[-1]
        active = (np.abs(setpoint) > 0)[None, :]
        target = setpoint[None, :] + np.where(active, reg * self.rated_kw, 0.0)
        # First-order ramp towards the target: p_{k+1} = b·p_k + (1 − b)·target_k.
        b = math.exp(-dt_s / RAMP_TAU_S)
        a, low = _filter(steps, b)
        nxt = a * self.power + low @ ((1 - b) * target)
        power = np.concatenate((self.power[None, :], nxt[:-1]))
        self.power = nxt[-1]

        # Temperatures (the runaway onset is independent of the current).
        room_c = 24.0 + 0.1 * (ambient_c - 20.0)
        hb = math.exp(-dt_s / HEAT_TAU_S)
        e_open = N_SERIES * ocv(self.soc)
        heat_u = 10.0 * (power * 1000.0 / e_open / self.i_rated) ** 2
        a, low = _filter(steps, hb)
        heat = np.concatenate((self.heat[None, :], (a * self.heat + low @ ((1 - hb) * heat_u))
                               [:-1]))
        max_t = room_c + 1.5 + 1.3 * heat + faults.runaway_c
        min_t = room_c - 0.5 + 0.7 * heat

        # BMS trip on over-temperature, reset below the reset threshold.
        tripped = np.empty((steps, n), dtype=bool)
        state = self.tripped.copy()
        for k in range(steps):
            state = np.where(max_t[k] >= TRIP_TEMP_C, True,
                             np.where(max_t[k] < RESET_TEMP_C, False, state))
            tripped[k] = state
        self.tripped = state
        power = np.where(tripped, 0.0, power)
        self.power = np.where(state, 0.0, self.power)

        # Current, coulomb counting, pack voltage.
        current = power * 1000.0 / e_open
        current = np.round(current, 1)
        d_soc = current * dt_s / (3600.0 * self.capacity_ah) * 100.0
        soc = self.soc - np.concatenate((np.zeros((1, n)), np.cumsum(d_soc, axis=0)[:-1]))
        self.soc = self.soc - d_soc.sum(axis=0)
        v = N_SERIES * ocv(soc) - current * self.r_pack
        self.heat = heat[-1] * hb + (1 - hb) * 10.0 * (current[-1] / self.i_rated) ** 2

        edge = 25.0 * np.clip((soc - 90.0) / 10.0, 0, None) + 25.0 * np.clip(
            (15.0 - soc) / 15.0, 0, None)
        gap = (self.gap_base + 8.0 * np.abs(current) / self.i_rated + edge
               + faults.extra_gap_mv + 2.0 * faults.runaway_c)
        mean_cell = v / N_SERIES
        max_cv = mean_cell + 0.4 * gap / 1000.0
        min_cv = mean_cell - 0.6 * gap / 1000.0
        p_dc = v * current / 1000.0
        states = np.where(tripped, "fault", np.where(current > 1.0, "discharging",
                                                     np.where(current < -1.0, "charging",
                                                              "idle")))
        ac = np.where(p_dc > 0, -p_dc * ETA_CONV, -p_dc / ETA_CONV)
        ts = t0_ms + (np.arange(steps) * dt_s * 1000).astype(np.int64)
        return EssBlock(
            ts=ts, dc_voltage=v, dc_current=current, power_kw=p_dc, soc=soc,
            max_temp=max_t, min_temp=min_t, max_cell_v=max_cv, min_cell_v=min_cv, gap_mv=gap,
            state=states.tolist(), mean_ac_kw=ac.mean(axis=0),
        )
