"""The fleet simulation: every device model stepped together, yielding messages.

:class:`Fleet` advances in one-minute steps. At each step it computes the weather, the
PV plants, a block of battery-bank seconds, the grid power flow and the transformer
thermal state, emits the messages due at that instant, then integrates the energy
registers over the minute (power held over the step, so registers reported at ``t``
contain the energy up to ``t``). Messages come out in non-decreasing event time; the
run is a pure function of the configuration, the time range and the faults.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lakehouse.time import DAY_MS, MINUTE_MS, dt_of
from mock_devices import faults as fault_mod
from mock_devices.config import ConfigError, FleetConfig, Record
from mock_devices.ess import Ess, EssFaults
from mock_devices.faults import FaultRequest, FaultSpec
from mock_devices.grid import Grid, GridFaults, GridState
from mock_devices.pv import pv_output
from mock_devices.topology import (
    STANDARD_KVA,
    Topology,
    build_topology,
    new_transformer_record,
    update_meter_location,
)
from mock_devices.transformers import DGA_PATTERNS, GASES, Dga, Thermal, aging_factor
from mock_devices.weather import Weather

T_METER = "meter.readings"
T_FEEDER = "scada.feeder"
T_SUB = "scada.substation"
T_TX = "transformer.telemetry"
T_DGA = "transformer.dga"
T_ESS = "ess.bms"
T_PV = "pv.inverter"
T_REGISTRY = "device.registry"
T_LABELS = "sim.labels"

REGISTRY_ORDER = ("substation", "feeder", "transformer", "meter", "ess", "pv_inverter")


class Fleet:
    """A deterministic simulation of the whole fleet over a time range.

    Args:
        config: Fleet size, cadence and seed.
        start_ms: First event time (rounded down to the minute).
        end_ms: End of the run (exclusive); None runs forever.
        faults: Fault requests (or already scheduled faults) to inject.

    """

    def __init__(
        self,
        config: FleetConfig,
        start_ms: int,
        end_ms: int | None = None,
        faults: Sequence[FaultRequest | FaultSpec] = (),
    ) -> None:
        self.config = config
        self.start_ms = start_ms - start_ms % MINUTE_MS
        if end_ms is not None and end_ms <= self.start_ms:
            raise ConfigError("the end of the run must be after its start")
        self.end_ms = end_ms
        self.seed = config.seed
        seeds = np.random.SeedSequence([config.seed, 20240601]).spawn(6)
        rngs = [np.random.default_rng(s) for s in seeds]
        self.topology: Topology = build_topology(config)
        t = self.topology
        self.weather = Weather(rngs[0], len(t.substation_ids), config.latitude,
                               config.longitude, config.utc_offset_h)
        self.grid = Grid(t, rngs[1], config.utc_offset_h)
        self.thermal = Thermal(t.tx_pk_kw / t.tx_p0_kw)
        self.dga = Dga(rngs[2], len(t.tx_ids))
        self.ess = Ess(rngs[3], t.ess_rated_kw, t.ess_rated_kwh, config.utc_offset_h)
        init = rngs[4]
        requests = [f for f in faults if isinstance(f, FaultRequest)]
        given = [f for f in faults if isinstance(f, FaultSpec)]
        self.faults: list[FaultSpec] = given + fault_mod.schedule_faults(
            requests, t, self.start_ms, end_ms, config.seed
        )

        n_m, n_f, n_s = t.n_meters, len(t.feeder_ids), len(t.substation_ids)
        self.meter_import = t.meter_mean_kw * init.uniform(2000.0, 20000.0, n_m)
        self.meter_export = np.where(t.meter_pv_kw > 0,
                                     t.meter_pv_kw * init.uniform(50.0, 1500.0, n_m), 0.0)
        self.meter_import = np.round(self.meter_import, 3)
        self.meter_export = np.round(self.meter_export, 3)
        self.rep_import = self.meter_import.copy()
        self.rep_export = self.meter_export.copy()
        self.feeder_import = np.round(init.uniform(1e6, 2e7, n_f), 3)
        self.feeder_export = np.round(init.uniform(0.0, 1e4, n_f), 3)
        self.feeder_loss_kwh = np.zeros(n_f)
        """Ground truth: technical losses integrated per feeder since the start (kWh)."""
        self.sub_import = np.round(init.uniform(5e6, 1e8, n_s), 3)
        self.sub_export = np.round(init.uniform(0.0, 1e5, n_s), 3)
        self.pv_energy = np.round(t.pv_ac_kw * init.uniform(500.0, 3000.0, len(t.pv_ids)), 3)
        self.meter_seq = np.zeros(n_m, dtype=np.int64)
        self.tx_seq = np.zeros(len(t.tx_ids), dtype=np.int64)
        self.dga_seq = np.zeros(len(t.tx_ids), dtype=np.int64)
        self.feeder_seq = 0
        self.sub_seq = 0
        self.pv_seq = 0
        self.ess_seq = 0
        self._last: dict[str, np.ndarray] | None = None
        self._ids = {k: np.array(getattr(t, k), dtype=object)
                     for k in ("meter_ids", "tx_ids", "feeder_ids", "substation_ids")}
        self._changes: list[tuple[int, str, dict[str, Any]]] = []
        self._change_day = -1

    # ------------------------------------------------------------------------ labels
    def fault_labels(self) -> list[dict[str, Any]]:
        """Label messages of the scheduled faults."""
        return fault_mod.fault_labels(self.faults, self.seed)

    # ----------------------------------------------------------------------- records
    def records(self) -> Iterator[Record]:
        """Every message of the run in event-time order (infinite when no end)."""
        dev = self.config.devices
        ts = self.start_ms
        labels = {lab["label_id"]: lab for lab in self.fault_labels()}
        if "registry" in dev:
            yield from self._initial_registry()
        while self.end_ms is None or ts < self.end_ms:
            for spec in self.faults:
                if ts <= spec.start_ms < ts + MINUTE_MS:
                    yield (T_LABELS, spec.id, labels[spec.id])
            changes = self._registry_changes(ts)
            if "registry" in dev:
                yield from changes
            yield from self.step(ts)
            ts += MINUTE_MS

    def _initial_registry(self) -> Iterator[Record]:
        reg = self.topology.registry
        recs = sorted(reg.values(), key=lambda r: (REGISTRY_ORDER.index(r["device_type"]),
                                                   r["device_id"]))
        for r in recs:
            yield (T_REGISTRY, r["device_id"], {**r, "ts": self.start_ms})

    # ------------------------------------------------------------------- one minute
    def step(self, ts: int) -> list[Record]:
        """Simulate the minute starting at ``ts``; return its messages."""
        t = self.topology
        cfg = self.config
        dev = cfg.devices
        active = [f for f in self.faults if f.active(ts)]
        wx = self.weather.step(ts)
        pv = pv_output(wx.site_ghi[t.pv_sub], wx.ambient_c, t.pv_dc_kw, t.pv_ac_kw)
        steps = 60 // cfg.ess_interval_s
        block = self.ess.block(ts, steps, float(cfg.ess_interval_s), wx.ambient_c,
                               self._ess_faults(ts, steps, cfg.ess_interval_s))
        g = self.grid.step(ts, wx, self._grid_faults(active), block.mean_ac_kw, pv.ac_kw)

        cooling = np.ones(len(t.tx_ids))
        dga_rates = np.zeros((len(t.tx_ids), len(GASES)))
        tamper = np.ones(t.n_meters)
        stuck = np.zeros(t.n_meters, dtype=bool)
        for f in active:
            i = f.device_index
            if f.type == "transformer_overheating":
                cooling[i] = f.params["cooling_factor"]
            elif f.type in DGA_PATTERNS:
                frac = (ts - f.start_ms) / max(f.end_ms - f.start_ms, 1)
                dga_rates[i] += (DGA_PATTERNS[f.type] / 60.0 * f.params["rate_scale"]
                                 * (0.3 + 0.7 * frac))
            elif f.type == "meter_tampering":
                tamper[i] = f.params["recorded_fraction"]
            elif f.type == "meter_stuck":
                stuck[i] = True

        ambient = wx.ambient_c + t.tx_ambient_offset
        k = g.tx_load_pu
        top_oil, hot_spot = self.thermal.temperatures(k, ambient, cooling)
        f_aa = aging_factor(hot_spot)

        out: list[Record] = []
        if "substation" in dev:
            out += self._substation_msgs(ts, g)
        if "feeder" in dev:
            out += self._feeder_msgs(ts, g)
        if "transformer" in dev:
            out += self._tx_msgs(ts, g, ambient, top_oil, hot_spot, f_aa)
        dga_due = ts % (cfg.dga_interval_s * 1000) == 0
        if dga_due:
            sample = self.dga.sample()
            if "dga" in dev:
                out += self._dga_msgs(ts, g, sample)
        if "pv" in dev:
            out += self._pv_msgs(ts, pv)
        if ts % (cfg.meter_interval_s * 1000) == 0 and "meter" in dev:
            out += self._meter_msgs(ts, g, tamper, stuck)

        # Integrate registers and states over [ts, ts + 1 min).
        h = 1.0 / 60.0
        imp_inc = np.maximum(g.meter_p, 0.0) * h
        exp_inc = np.maximum(-g.meter_p, 0.0) * h
        self.meter_import += imp_inc
        self.meter_export += exp_inc
        recorded = np.where(stuck, 0.0, tamper)
        self.rep_import += imp_inc * recorded
        self.rep_export += exp_inc * recorded
        self.feeder_import += np.maximum(g.feeder_p, 0.0) * h
        self.feeder_export += np.maximum(-g.feeder_p, 0.0) * h
        self.feeder_loss_kwh += g.feeder_loss_kw * h
        self.sub_import += np.maximum(g.sub_p, 0.0) * h
        self.sub_export += np.maximum(-g.sub_p, 0.0) * h
        self.pv_energy += pv.ac_kw * h
        self.thermal.advance(k, cooling, 1.0)
        self.dga.advance(f_aa, dga_rates, 1.0)

        if "ess" in dev:
            out += self._ess_msgs(block)
        return out

    # ---------------------------------------------------------------------- faults
    def _grid_faults(self, active: list[FaultSpec]) -> GridFaults:
        t = self.topology
        gf = GridFaults(
            tx_overload_pu=np.full(len(t.tx_ids), np.nan),
            sub_sag=np.ones(len(t.substation_ids)),
            feeder_open=np.zeros(len(t.feeder_ids), dtype=bool),
        )
        for f in active:
            if f.type == "transformer_overload":
                gf.tx_overload_pu[f.device_index] = f.params["target_pu"]
            elif f.type == "voltage_sag":
                gf.sub_sag[f.device_index] = f.params["retained_pu"]
            elif f.type == "feeder_outage":
                gf.feeder_open[f.device_index] = True
        return gf

    def _ess_faults(self, t0: int, steps: int, dt_s: int) -> EssFaults:
        n = len(self.topology.ess_ids)
        gap = np.zeros((steps, n))
        run = np.zeros((steps, n))
        ts = t0 + np.arange(steps) * dt_s * 1000
        for f in self.faults:
            if f.type == "ess_cell_imbalance":
                inside = (ts >= f.start_ms) & (ts < f.end_ms)
                frac = (ts - f.start_ms) / max(f.end_ms - f.start_ms, 1)
                gap[:, f.device_index] += np.where(inside, f.params["extra_gap_mv"] * frac, 0.0)
            elif f.type == "ess_thermal_runaway":
                tau = f.params["tau_min"] * 60_000.0

                def onset(x: np.ndarray, f: FaultSpec = f, tau: float = tau) -> np.ndarray:
                    return np.minimum(f.params["onset_k"] * np.expm1(x / tau), 150.0)

                inside = (ts >= f.start_ms) & (ts < f.end_ms)
                after = ts >= f.end_ms
                at_end = onset(np.array(float(f.end_ms - f.start_ms)))
                run[:, f.device_index] += np.where(
                    inside, onset(np.maximum(ts - f.start_ms, 0).astype(float)),
                    np.where(after, at_end * np.exp(-(ts - f.end_ms) / 900_000.0), 0.0),
                )
        return EssFaults(extra_gap_mv=gap, runaway_c=run)

    # --------------------------------------------------------------------- registry
    def _registry_changes(self, ts: int) -> list[Record]:
        day = ts // DAY_MS
        if day != self._change_day:
            self._change_day = day
            self._changes = self._draw_changes(day)
        out: list[Record] = []
        while self._changes and self._changes[0][0] <= ts:
            when, kind, p = self._changes.pop(0)
            if when <= self.start_ms:
                continue
            rec = self._apply_change(when, kind, p)
            out.append((T_REGISTRY, rec["device_id"], {**rec, "ts": when}))
        return out

    def _draw_changes(self, day: int) -> list[tuple[int, str, dict[str, Any]]]:
        rng = np.random.default_rng([self.seed, 3, int(day)])
        t = self.topology
        n = int(rng.poisson(self.config.registry_changes_per_day))
        out: list[tuple[int, str, dict[str, Any]]] = []
        for _ in range(n):
            when = int(day * DAY_MS + int(rng.integers(0, 1440)) * MINUTE_MS)
            if rng.random() < 0.5:
                out.append((when, "replace", {
                    "tx": int(rng.integers(0, len(t.tx_ids))),
                    "upsize": bool(rng.random() < 0.3),
                    "rng": int(rng.integers(0, 2**31)),
                }))
            else:
                out.append((when, "move", {
                    "meter": int(rng.integers(0, t.n_meters)),
                    "pick": float(rng.random()),
                    "same_feeder": bool(rng.random() < 0.7),
                    "jitter": rng.normal(0.0, 0.0015, 2).tolist(),
                }))
        out.sort(key=lambda c: c[0])
        return out

    def _apply_change(self, when: int, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        t = self.topology
        if kind == "replace":
            i = p["tx"]
            old = t.registry[t.tx_ids[i]]
            if p["upsize"]:
                idx = int(np.searchsorted(STANDARD_KVA, t.tx_rated_kva[i], side="right"))
                new_kva = float(STANDARD_KVA[min(idx, len(STANDARD_KVA) - 1)])
                ratio = new_kva / t.tx_rated_kva[i]
                t.tx_rated_kva[i] = new_kva
                t.tx_p0_kw[i] *= ratio
                t.tx_pk_kw[i] *= ratio
                t.tx_r_lv_ohm[i] /= ratio
            self.thermal.reset(i)
            self.dga.reset(i)
            rec = new_transformer_record(t, i, np.random.default_rng(p["rng"]), dt_of(when))
            rec.update({"version": old["version"] + 1, "change_type": "replace"})
            t.registry[t.tx_ids[i]] = rec
            return rec
        m = p["meter"]
        cur = int(t.meter_tx[m])
        if p["same_feeder"]:
            pool = np.flatnonzero(t.tx_feeder == t.tx_feeder[cur])
        else:
            pool = np.arange(len(t.tx_ids))
        pool = pool[pool != cur]
        if len(pool) == 0:
            pool = np.array([cur])
        new = int(pool[min(int(p["pick"] * len(pool)), len(pool) - 1)])
        t.meter_tx[m] = new
        t.meter_lat[m] = t.tx_lat[new] + p["jitter"][0]
        t.meter_lon[m] = t.tx_lon[new] + p["jitter"][1]
        self.grid.topology_changed()
        rec = t.registry[t.meter_ids[m]]
        rec.update({"version": rec["version"] + 1, "change_type": "move"})
        update_meter_location(t, m)
        return dict(rec)

    # --------------------------------------------------------------------- messages
    def _substation_msgs(self, ts: int, g: GridState) -> list[Record]:
        seq = self.sub_seq
        self.sub_seq += 1
        f = round(g.frequency_hz, 3)
        return [
            (T_SUB, sid, {
                "substation_id": sid, "ts": ts, "hv_voltage_kv": hv, "bus_voltage_kv": bus,
                "frequency_hz": f, "active_power_kw": p, "reactive_power_kvar": q,
                "energy_import_kwh": ei, "energy_export_kwh": ee, "oltc_tap_position": tap,
                "seq": seq,
            })
            for sid, hv, bus, p, q, ei, ee, tap in zip(
                self.topology.substation_ids,
                np.round(g.sub_hv_kv, 3).tolist(), np.round(g.sub_bus_kv, 4).tolist(),
                np.round(g.sub_p, 2).tolist(), np.round(g.sub_q, 2).tolist(),
                np.round(self.sub_import, 3).tolist(), np.round(self.sub_export, 3).tolist(),
                g.sub_tap.tolist(), strict=True,
            )
        ]

    def _feeder_msgs(self, ts: int, g: GridState) -> list[Record]:
        t = self.topology
        seq = self.feeder_seq
        self.feeder_seq += 1
        sub_names = [t.substation_ids[s] for s in t.feeder_sub.tolist()]
        bus = np.round(g.sub_bus_kv[t.feeder_sub], 4).tolist()
        cur = np.round(g.feeder_i, 2)
        return [
            (T_FEEDER, fid, {
                "feeder_id": fid, "substation_id": sid, "ts": ts, "energy_import_kwh": ei,
                "energy_export_kwh": ee, "active_power_kw": p, "reactive_power_kvar": q,
                "current_a": ia, "current_b_a": ib, "current_c_a": ic, "bus_voltage_kv": v,
                "breaker_closed": on, "seq": seq,
            })
            for fid, sid, ei, ee, p, q, ia, ib, ic, v, on in zip(
                t.feeder_ids, sub_names, np.round(self.feeder_import, 3).tolist(),
                np.round(self.feeder_export, 3).tolist(), np.round(g.feeder_p, 2).tolist(),
                np.round(g.feeder_q, 2).tolist(), cur[:, 0].tolist(), cur[:, 1].tolist(),
                cur[:, 2].tolist(), bus, g.feeder_closed.tolist(), strict=True,
            )
        ]

    def _tx_msgs(self, ts: int, g: GridState, ambient: np.ndarray, top: np.ndarray,
                 hot: np.ndarray, f_aa: np.ndarray) -> list[Record]:
        t = self.topology
        em = np.flatnonzero(g.tx_energised)
        seq = self.tx_seq[em]
        self.tx_seq[em] += 1
        return [
            (T_TX, tid, {
                "transformer_id": tid, "ts": ts, "load_kva": s, "load_pu": k,
                "active_power_kw": p, "lv_voltage_v": v, "ambient_temp_c": a,
                "top_oil_temp_c": to, "hot_spot_temp_c": hs, "aging_factor": fa,
                "tap_position": tap, "seq": sq,
            })
            for tid, s, k, p, v, a, to, hs, fa, tap, sq in zip(
                self._ids["tx_ids"][em].tolist(), np.round(g.tx_s[em], 2).tolist(),
                np.round(g.tx_load_pu[em], 4).tolist(), np.round(g.tx_p[em], 2).tolist(),
                np.round(g.tx_v_lv[em], 1).tolist(), np.round(ambient[em], 2).tolist(),
                np.round(top[em], 2).tolist(), np.round(hot[em], 2).tolist(),
                [float(f"{x:.4g}") for x in f_aa[em].tolist()], t.tx_tap[em].tolist(),
                seq.tolist(), strict=True,
            )
        ]

    def _dga_msgs(self, ts: int, g: GridState, sample: np.ndarray) -> list[Record]:
        em = np.flatnonzero(g.tx_energised)
        seq = self.dga_seq[em]
        self.dga_seq[em] += 1
        cols = [sample[em, j].tolist() for j in range(len(GASES))]
        return [
            (T_DGA, tid, {
                "transformer_id": tid, "ts": ts, "h2_ppm": h2, "ch4_ppm": ch4,
                "c2h2_ppm": c2h2, "c2h4_ppm": c2h4, "c2h6_ppm": c2h6, "co_ppm": co, "seq": sq,
            })
            for tid, h2, ch4, c2h2, c2h4, c2h6, co, sq in zip(
                self._ids["tx_ids"][em].tolist(), *cols, seq.tolist(), strict=True,
            )
        ]

    def _pv_msgs(self, ts: int, pv: Any) -> list[Record]:
        seq = self.pv_seq
        self.pv_seq += 1
        return [
            (T_PV, pid, {
                "inverter_id": pid, "ts": ts, "irradiance_w_m2": g, "module_temp_c": tm,
                "dc_power_kw": dc, "ac_power_kw": ac, "dc_voltage_v": v, "energy_kwh": e,
                "state": "running" if run else "standby", "seq": seq,
            })
            for pid, g, tm, dc, ac, v, e, run in zip(
                self.topology.pv_ids, np.round(pv.irradiance, 1).tolist(),
                np.round(pv.module_temp, 2).tolist(), np.round(pv.dc_kw, 2).tolist(),
                np.round(pv.ac_kw, 2).tolist(), np.round(pv.dc_v, 1).tolist(),
                np.round(self.pv_energy, 3).tolist(), pv.running.tolist(), strict=True,
            )
        ]

    def _meter_msgs(self, ts: int, g: GridState, tamper: np.ndarray,
                    stuck: np.ndarray) -> list[Record]:
        t = self.topology
        p = g.meter_p * tamper
        q = g.meter_q * tamper
        v = g.meter_v
        i = g.meter_i * tamper[:, None]
        if self._last is None:
            self._last = {"p": p.copy(), "q": q.copy(), "v": v.copy(), "i": i.copy()}
        last = self._last
        if stuck.any():
            p = np.where(stuck, last["p"], p)
            q = np.where(stuck, last["q"], q)
            v = np.where(stuck[:, None], last["v"], v)
            i = np.where(stuck[:, None], last["i"], i)
        em = np.flatnonzero(g.meter_energised)
        upd = em[~stuck[em]]
        for key, arr in (("p", p), ("q", q), ("v", v), ("i", i)):
            last[key][upd] = arr[upd]
        s = np.hypot(p, q)
        pf = np.where(s > 1e-9, np.abs(p) / np.maximum(s, 1e-9), 1.0)
        # Single-phase meters report the phase they are connected to as "phase A".
        ph = t.meter_phase[em]
        one = t.meter_phases[em] == 1
        va = np.where(one, v[em, ph], v[em, 0])
        ia = np.where(one, i[em, ph], i[em, 0])
        seq = self.meter_seq[em]
        self.meter_seq[em] += 1
        interval = self.config.meter_interval_s
        recs: list[Record] = [
            (T_METER, mid, {
                "device_id": mid, "ts": ts, "energy_import_kwh": ei, "energy_export_kwh": ee,
                "voltage_v": vv, "current_a": ii, "active_power_kw": pp, "seq": sq,
                "reactive_power_kvar": qq, "power_factor": f, "interval_s": interval,
            })
            for mid, ei, ee, vv, ii, pp, sq, qq, f in zip(
                self._ids["meter_ids"][em].tolist(), np.round(self.rep_import[em], 3).tolist(),
                np.round(self.rep_export[em], 3).tolist(), np.round(va, 1).tolist(),
                np.round(ia, 2).tolist(), np.round(p[em], 3).tolist(), seq.tolist(),
                np.round(q[em], 3).tolist(), np.round(pf[em], 3).tolist(), strict=True,
            )
        ]
        three = np.flatnonzero(~one)
        if len(three):
            sel = em[three]
            for j, vb, vc, ib, ic in zip(
                three.tolist(), np.round(v[sel, 1], 1).tolist(), np.round(v[sel, 2], 1).tolist(),
                np.round(i[sel, 1], 2).tolist(), np.round(i[sel, 2], 2).tolist(), strict=True,
            ):
                msg = recs[j][2]
                assert isinstance(msg, dict)
                msg["voltage_b_v"] = vb
                msg["voltage_c_v"] = vc
                msg["current_b_a"] = ib
                msg["current_c_a"] = ic
        return recs

    def _ess_msgs(self, b: Any) -> list[Record]:
        ids = self.topology.ess_ids
        steps = len(b.ts)
        base = self.ess_seq
        self.ess_seq += steps
        cols = [np.round(b.dc_voltage, 2).tolist(), b.dc_current.tolist(),
                np.round(b.power_kw, 2).tolist(), np.round(b.soc, 4).tolist(),
                np.round(b.max_temp, 2).tolist(), np.round(b.min_temp, 2).tolist(),
                np.round(b.max_cell_v, 4).tolist(), np.round(b.min_cell_v, 4).tolist(),
                np.round(b.gap_mv, 1).tolist()]
        out: list[Record] = []
        for k, ts in enumerate(b.ts.tolist()):
            if self.end_ms is not None and ts >= self.end_ms:
                break
            vs, cs, ps, ss, xt, nt, xv, nv, gp = (c[k] for c in cols)
            st = b.state[k]
            out.extend(
                (T_ESS, eid, {
                    "ess_id": eid, "ts": ts, "dc_voltage_v": vs[j], "dc_current_a": cs[j],
                    "power_kw": ps[j], "soc_pct": ss[j], "max_cell_temp_c": xt[j],
                    "min_cell_temp_c": nt[j], "max_cell_voltage_v": xv[j],
                    "min_cell_voltage_v": nv[j], "cell_voltage_gap_mv": gp[j],
                    "state": st[j], "seq": base + k,
                })
                for j, eid in enumerate(ids)
            )
        return out


def loss_rate(feeder_delta_kwh: float, meters_delta_kwh: float) -> float:
    """Technical line-loss rate of a feeder over an interval."""
    if feeder_delta_kwh <= 0:
        return math.nan
    return (feeder_delta_kwh - meters_delta_kwh) / feeder_delta_kwh
