"""Meters and the electrical network: loads, a radial power flow, losses and voltages.

One :meth:`Grid.step` computes, for one minute and vectorised over every device:

* meter loads from class profiles, seasonal factors and AR(1) log-normal noise, minus
  rooftop PV; reactive power from the meter's power factor;
* per-phase transformer loads, LV service and LV main losses (``I²R``), transformer
  no-load and load losses (``P0 + Pk·K²``);
* the medium-voltage feeder as a radial line with the transformers as taps: segment
  currents from the downstream power, line losses ``3·I²·R'·ℓ`` and the voltage drop
  ``ΔV ≈ (R'ℓ·P + X'ℓ·Q) / V`` accumulated along the feeder;
* substation MV bus voltage behind an on-load tap changer (OLTC) with dead band.

By construction a feeder's head power is the sum of its meters' (true) power plus every
technical loss on it, so the integrated feeder energy equals the meters' energy plus
losses exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS
from mock_devices import profiles
from mock_devices.topology import LV_V, MV_KV, Topology
from mock_devices.weather import WeatherSample, day_of_year

SQRT3 = math.sqrt(3.0)
PV_DERATE = 0.82
"""Rooftop PV: AC output per kW of capacity at 1000 W/m² (temperature, inverter, soiling)."""
SECONDARY_RATIO = 1.02
"""No-load LV voltage of a distribution transformer at nominal MV and tap 0 (per unit)."""
TAP_STEP = 0.025
"""Voltage change per off-circuit tap step of a distribution transformer."""
OLTC_STEP = 0.0125
"""Voltage change per OLTC step of a substation transformer."""
BUS_TARGET_PU = 1.03
"""MV bus voltage the substation OLTC regulates to."""
OLTC_DEADBAND_PU = 0.009
OLTC_DELAY_MIN = 2
MAIN_TX_MVA = 20.0
MAIN_TX_Z = 0.10


@dataclass
class GridFaults:
    """Fault inputs of one grid step (neutral values mean no fault)."""

    tx_overload_pu: np.ndarray
    """Per transformer: target load (pu) of an overload, NaN when none."""
    sub_sag: np.ndarray
    """Per substation: retained voltage fraction during a sag (1.0 when none)."""
    feeder_open: np.ndarray
    """Per feeder: breaker open (outage)."""


@dataclass
class GridState:
    """Result of one grid step (instantaneous values, all arrays)."""

    meter_p: np.ndarray
    meter_q: np.ndarray
    meter_v: np.ndarray
    meter_i: np.ndarray
    meter_energised: np.ndarray
    tx_p: np.ndarray
    tx_q: np.ndarray
    tx_s: np.ndarray
    tx_load_pu: np.ndarray
    tx_v_lv: np.ndarray
    tx_energised: np.ndarray
    feeder_p: np.ndarray
    feeder_q: np.ndarray
    feeder_i: np.ndarray
    feeder_loss_kw: np.ndarray
    feeder_closed: np.ndarray
    sub_p: np.ndarray
    sub_q: np.ndarray
    sub_bus_kv: np.ndarray
    sub_hv_kv: np.ndarray
    sub_tap: np.ndarray
    frequency_hz: float


class Grid:
    """Stateful vectorised model of every meter, transformer, feeder and substation bus."""

    def __init__(self, topo: Topology, rng: np.random.Generator, utc_offset_h: float) -> None:
        self.topo = topo
        self._rng = rng
        self._tz_ms = int(round(utc_offset_h * HOUR_MS))
        n = topo.n_meters
        self._sigma = profiles.NOISE_SIGMA[topo.meter_class]
        self._noise = rng.standard_normal(n)  # stationary N(0, 1) start
        n_sub = len(topo.substation_ids)
        self._hv_dev = rng.normal(0.0, 0.008, n_sub)
        self.sub_tap = np.zeros(n_sub, dtype=np.int64)
        self._oltc_timer = np.zeros(n_sub, dtype=np.int64)
        self._freq_dev = 0.0
        self._first = True
        self._prepare_feeders()
        self._cache_meter_weights()

    # ----------------------------------------------------------------- topology caches
    def _prepare_feeders(self) -> None:
        t = self.topo
        order = np.lexsort((t.tx_pos_km, t.tx_feeder))
        self._order = order
        fdr = t.tx_feeder[order]
        pos = t.tx_pos_km[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = fdr[1:] != fdr[:-1]
        prev = np.where(first, 0.0, np.concatenate(([0.0], pos[:-1])))
        seg = pos - prev
        self._seg_r = seg * t.feeder_r_ohm_km[fdr]
        self._seg_x = seg * t.feeder_x_ohm_km[fdr]
        self._fdr_sorted = fdr
        n_f = len(t.feeder_ids)
        counts = np.bincount(fdr, minlength=n_f)
        ends = np.cumsum(counts)
        self._fdr_start = ends - counts
        self._fdr_end = ends

    def _cache_meter_weights(self) -> None:
        """Per-phase share of every meter's power (n, 3): single-phase one-hot."""
        t = self.topo
        one_hot = np.zeros((t.n_meters, 3))
        one_hot[np.arange(t.n_meters), t.meter_phase] = 1.0
        three = t.meter_imbalance / 3.0
        self._w = np.where((t.meter_phases == 3)[:, None], three, one_hot)
        self._flat_idx = (t.meter_tx[:, None] * 3 + np.arange(3)[None, :]).ravel()

    def topology_changed(self) -> None:
        """Refresh caches after a meter moved (meter → transformer index changed)."""
        self._cache_meter_weights()

    # --------------------------------------------------------------------------- step
    def natural_load(self, ts_ms: int) -> np.ndarray:
        """Advance the load noise one minute; return each meter's load (kW) at ``ts_ms``."""
        t = self.topo
        local = ts_ms + self._tz_ms
        minute = int((local % DAY_MS) // MINUTE_MS)
        weekday = int((local // DAY_MS + 3) % 7)  # 1970-01-01 was a Thursday (3)
        weekend = 1 if weekday >= 5 else 0
        season = profiles.seasonal_factor(day_of_year(local))
        idx = (minute + t.meter_shift_min) % 1440
        shape = profiles.SHAPES[t.meter_class, weekend, idx]
        phi = profiles.NOISE_PHI
        self._noise = phi * self._noise + math.sqrt(1 - phi * phi) * self._rng.standard_normal(
            t.n_meters
        )
        sig = self._sigma
        noise = np.exp(sig * self._noise - 0.5 * sig * sig)
        return t.meter_mean_kw * shape * season[t.meter_class] * noise

    def step(
        self,
        ts_ms: int,
        weather: WeatherSample,
        faults: GridFaults,
        ess_ac_kw: np.ndarray,
        pv_ac_kw: np.ndarray,
    ) -> GridState:
        """Compute the grid at ``ts_ms`` (loads, flows, losses, voltages).

        Args:
            ts_ms: Event time of the step.
            weather: Weather at the step.
            faults: Fault inputs.
            ess_ac_kw: AC power drawn by each battery bank (charging positive).
            pv_ac_kw: AC power injected by each PV plant.

        """
        t = self.topo
        rng = self._rng
        n_tx, n_f, n_s = len(t.tx_ids), len(t.feeder_ids), len(t.substation_ids)
        hv_e = rng.standard_normal(n_s)
        freq_e = float(rng.standard_normal())
        load = self.natural_load(ts_ms)

        q_load = load * t.meter_tan_phi
        if np.isfinite(faults.tx_overload_pu).any():
            # Extra customer load under the overloaded transformer, up to the target load.
            p_nat = np.bincount(t.meter_tx, weights=load, minlength=n_tx)
            q_nat = np.bincount(t.meter_tx, weights=q_load, minlength=n_tx)
            s_nat = np.maximum(np.hypot(p_nat, q_nat), 1e-6)
            target = faults.tx_overload_pu * t.tx_rated_kva
            factor = np.where(np.isfinite(target), np.maximum(1.0, target / s_nat), 1.0)
            load = load * factor[t.meter_tx]
            q_load = q_load * factor[t.meter_tx]

        pv = t.meter_pv_kw * weather.site_ghi[t.meter_sub] / 1000.0 * PV_DERATE
        feeder_on = ~faults.feeder_open
        m_on = feeder_on[t.tx_feeder[t.meter_tx]]
        p = np.where(m_on, load - pv, 0.0)
        q = np.where(m_on, q_load, 0.0)

        # Per-phase powers of meters and transformers (kW, kvar).
        w = self._w
        p_ph, q_ph = p[:, None] * w, q[:, None] * w
        s_ph = np.hypot(p_ph, q_ph)
        i_ph_nom = s_ph * 1000.0 / LV_V
        svc_loss_w = (i_ph_nom**2).sum(axis=1) * t.meter_r_svc_ohm
        tx_p_ph = np.bincount(self._flat_idx, weights=p_ph.ravel(), minlength=3 * n_tx)
        tx_q_ph = np.bincount(self._flat_idx, weights=q_ph.ravel(), minlength=3 * n_tx)
        tx_p_ph, tx_q_ph = tx_p_ph.reshape(n_tx, 3), tx_q_ph.reshape(n_tx, 3)
        tx_i_ph = np.hypot(tx_p_ph, tx_q_ph) * 1000.0 / LV_V
        main_loss_w = (tx_i_ph**2).sum(axis=1) * t.tx_r_lv_ohm / 3.0
        lv_loss_kw = (np.bincount(t.meter_tx, weights=svc_loss_w, minlength=n_tx)
                      + main_loss_w) / 1000.0

        tx_on = feeder_on[t.tx_feeder]
        tx_p_lv = tx_p_ph.sum(axis=1) + lv_loss_kw
        tx_q_lv = tx_q_ph.sum(axis=1)
        tx_s = np.hypot(tx_p_lv, tx_q_lv)
        k = tx_s / t.tx_rated_kva
        tx_loss = np.where(tx_on, t.tx_p0_kw + t.tx_pk_kw * k * k, 0.0)
        tx_qloss = np.where(tx_on, t.tx_rated_kva * (0.008 + t.tx_x_pu * k * k), 0.0)
        tx_p_mv = tx_p_lv + tx_loss
        tx_q_mv = tx_q_lv + tx_qloss

        # Radial MV feeder: downstream sums along transformers sorted by position.
        o = self._order
        ps, qs = tx_p_mv[o], tx_q_mv[o]
        rp = np.concatenate((np.cumsum(ps[::-1])[::-1], [0.0]))
        rq = np.concatenate((np.cumsum(qs[::-1])[::-1], [0.0]))
        end = self._fdr_end[self._fdr_sorted]
        down_p = rp[:-1] - rp[end]
        down_q = rq[:-1] - rq[end]
        v_ll = MV_KV * 1000.0
        i_seg = np.hypot(down_p, down_q) * 1000.0 / (SQRT3 * v_ll)
        seg_loss_kw = 3.0 * i_seg**2 * self._seg_r / 1000.0
        seg_qloss = 3.0 * i_seg**2 * self._seg_x / 1000.0
        drop_v = (self._seg_r * down_p + self._seg_x * down_q) * 1000.0 / v_ll
        cum = np.cumsum(drop_v)
        start = self._fdr_start[self._fdr_sorted]
        cum_before = np.concatenate(([0.0], cum))[start]
        drop_sorted = cum - cum_before
        drop_pu = np.empty(n_tx)
        drop_pu[o] = drop_sorted / v_ll

        line_loss = np.bincount(self._fdr_sorted, weights=seg_loss_kw, minlength=n_f)
        line_qloss = np.bincount(self._fdr_sorted, weights=seg_qloss, minlength=n_f)
        feeder_p = np.bincount(t.tx_feeder, weights=tx_p_mv, minlength=n_f) + line_loss
        feeder_q = np.bincount(t.tx_feeder, weights=tx_q_mv, minlength=n_f) + line_qloss
        feeder_loss = (
            np.bincount(t.tx_feeder, weights=lv_loss_kw + tx_loss, minlength=n_f) + line_loss
        )

        # Substation: feeders + storage charging − PV; MV bus behind the OLTC.
        sub_p = (np.bincount(t.feeder_sub, weights=feeder_p, minlength=n_s)
                 + np.bincount(t.ess_sub, weights=ess_ac_kw, minlength=n_s)
                 - np.bincount(t.pv_sub, weights=pv_ac_kw, minlength=n_s))
        sub_q = np.bincount(t.feeder_sub, weights=feeder_q, minlength=n_s)
        phi_hv = math.exp(-1.0 / 120.0)
        self._hv_dev = phi_hv * self._hv_dev + 0.008 * math.sqrt(1 - phi_hv**2) * hv_e
        hv_pu = 1.0 + self._hv_dev
        load_pu = np.hypot(sub_p, sub_q) / (MAIN_TX_MVA * 1000.0)
        if self._first:  # the OLTC has settled before the run starts
            self._first = False
            untapped = hv_pu - MAIN_TX_Z * 0.3 * load_pu
            self.sub_tap = np.clip(np.round((BUS_TARGET_PU - untapped) / OLTC_STEP), -8, 8
                                   ).astype(np.int64)
        bus_pu = hv_pu * (1.0 + OLTC_STEP * self.sub_tap) - MAIN_TX_Z * 0.3 * load_pu
        self._regulate(bus_pu)
        bus_pu = bus_pu * faults.sub_sag
        self._freq_dev = 0.9 * self._freq_dev + 0.01 * freq_e

        # Voltages: MV at each transformer, LV terminals per phase, then each meter.
        v_mv = bus_pu[t.feeder_sub[t.tx_feeder]] - drop_pu
        ph_rated = t.tx_rated_kva[:, None] / 3.0
        z_drop = (t.tx_r_pu[:, None] * tx_p_ph + t.tx_x_pu[:, None] * tx_q_ph) / ph_rated
        v_lv_pu = (v_mv * SECONDARY_RATIO * (1.0 + TAP_STEP * t.tx_tap))[:, None] - z_drop
        v_lv = np.where(tx_on[:, None], v_lv_pu * LV_V, 0.0)
        mt = t.meter_tx
        v_meter = (v_lv[mt]
                   - tx_i_ph[mt] * t.tx_r_lv_ohm[mt, None] * t.meter_lv_pos[:, None]
                   - i_ph_nom * t.meter_r_svc_ohm[:, None])
        v_meter = np.where(m_on[:, None], np.maximum(v_meter, 0.0), 0.0)
        i_meter = np.where(v_meter > 1.0, s_ph * 1000.0 / np.maximum(v_meter, 1.0), 0.0)

        # Feeder phase currents: apparent power shared by the phases' loading.
        fdr_ph = np.zeros((n_f, 3))
        s_tx_ph = np.hypot(tx_p_ph, tx_q_ph)
        for ph in range(3):
            fdr_ph[:, ph] = np.bincount(t.tx_feeder, weights=s_tx_ph[:, ph], minlength=n_f)
        share = fdr_ph / np.maximum(fdr_ph.mean(axis=1, keepdims=True), 1e-9)
        share = np.where(fdr_ph.sum(axis=1, keepdims=True) > 0, share, 1.0)
        bus_kv = bus_pu * MV_KV
        i_avg = np.hypot(feeder_p, feeder_q) / (SQRT3 * bus_kv[t.feeder_sub])
        feeder_i = np.where(feeder_on[:, None], i_avg[:, None] * share, 0.0)
        feeder_p = np.where(feeder_on, feeder_p, 0.0)
        feeder_q = np.where(feeder_on, feeder_q, 0.0)

        return GridState(
            meter_p=p, meter_q=q, meter_v=v_meter, meter_i=i_meter, meter_energised=m_on,
            tx_p=tx_p_lv, tx_q=tx_q_lv, tx_s=tx_s, tx_load_pu=k,
            tx_v_lv=v_lv.mean(axis=1), tx_energised=tx_on,
            feeder_p=feeder_p, feeder_q=feeder_q, feeder_i=feeder_i,
            feeder_loss_kw=feeder_loss, feeder_closed=feeder_on, sub_p=sub_p, sub_q=sub_q,
            sub_bus_kv=bus_kv,
            sub_hv_kv=hv_pu * 110.0, sub_tap=self.sub_tap.copy(),
            frequency_hz=50.0 + self._freq_dev,
        )

    def _regulate(self, bus_pu: np.ndarray) -> None:
        """OLTC: step the tap after the bus is outside the dead band for a while."""
        err = bus_pu - BUS_TARGET_PU
        outside = np.abs(err) > OLTC_DEADBAND_PU
        self._oltc_timer = np.where(outside, self._oltc_timer + 1, 0)
        move = self._oltc_timer >= OLTC_DELAY_MIN
        self.sub_tap = np.clip(self.sub_tap - np.where(move, np.sign(err), 0).astype(np.int64),
                               -8, 8)
        self._oltc_timer = np.where(move, 0, self._oltc_timer)
