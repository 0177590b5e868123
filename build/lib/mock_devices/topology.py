"""A seeded grid topology: region → substations → feeders → transformers → meters.

Battery banks (ESS) and PV plants sit on the medium-voltage bus of some substations.
Every device's static parameters are drawn here; the arrays are indexed by device
position and shared by the vectorised device models. Meter-to-transformer indices are
mutable: a registry "move" re-parents a meter during a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_devices import profiles
from mock_devices.config import FleetConfig

STANDARD_KVA = np.array(
    [30, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600,
     2000, 2500, 3150]
)
"""Standard distribution transformer ratings (kVA)."""

MV_KV = 10.0
"""Nominal line-to-line voltage of the medium-voltage network (kV)."""
HV_KV = 110.0
"""Nominal line-to-line voltage of the substations' high-voltage side (kV)."""
LV_V = 230.0
"""Nominal phase voltage of the low-voltage network (V); 1.0 per unit."""

TX_MANUFACTURERS = ("Voltaris", "Northgrid Electric", "Hanshan Transformer", "Meridian Power")
METER_MANUFACTURERS = ("Lumetrix", "Ampera Metering", "Keystone AMI")
ESS_MANUFACTURERS = ("Cellvolt Storage", "Ironphos Energy")
PV_MANUFACTURERS = ("Heliodyne", "Sunward Inverters")

# Meter mix of a transformer's zone: probabilities of (residential, commercial, industrial).
_ZONES = (
    (0.86, (0.93, 0.07, 0.0), 30),  # residential zone: share, meter mix, mean meters
    (0.12, (0.25, 0.75, 0.0), 8),  # commercial zone
    (0.02, (0.0, 0.0, 1.0), 2),  # industrial zone
)
_MEAN_KW = ((0.55, 0.45, 0.1, 3.0), (6.0, 0.7, 0.5, 80.0), (60.0, 0.5, 5.0, 500.0))
_POWER_FACTOR = (0.96, 0.92, 0.88)
_PV_SHARE = (0.15, 0.10, 0.0)


@dataclass
class Topology:
    """The fleet: static parameters and (mutable) topology indices as numpy arrays."""

    region_id: str
    latitude: float
    longitude: float
    substation_ids: list[str]
    sub_lat: np.ndarray
    sub_lon: np.ndarray
    feeder_ids: list[str]
    feeder_sub: np.ndarray
    feeder_length_km: np.ndarray
    feeder_r_ohm_km: np.ndarray
    feeder_x_ohm_km: np.ndarray
    feeder_bearing: np.ndarray
    tx_ids: list[str]
    tx_feeder: np.ndarray
    tx_pos_km: np.ndarray
    tx_rated_kva: np.ndarray
    tx_tap: np.ndarray
    tx_p0_kw: np.ndarray
    tx_pk_kw: np.ndarray
    tx_r_pu: np.ndarray
    tx_x_pu: np.ndarray
    tx_r_lv_ohm: np.ndarray
    tx_lat: np.ndarray
    tx_lon: np.ndarray
    tx_ambient_offset: np.ndarray
    meter_ids: list[str]
    meter_tx: np.ndarray
    meter_class: np.ndarray
    meter_phases: np.ndarray
    meter_phase: np.ndarray
    meter_mean_kw: np.ndarray
    meter_pv_kw: np.ndarray
    meter_tan_phi: np.ndarray
    meter_r_svc_ohm: np.ndarray
    meter_lv_pos: np.ndarray
    meter_shift_min: np.ndarray
    meter_imbalance: np.ndarray
    meter_lat: np.ndarray
    meter_lon: np.ndarray
    ess_ids: list[str]
    ess_sub: np.ndarray
    ess_rated_kw: np.ndarray
    ess_rated_kwh: np.ndarray
    pv_ids: list[str]
    pv_sub: np.ndarray
    pv_ac_kw: np.ndarray
    pv_dc_kw: np.ndarray
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Current registry record per device id (the latest version)."""

    @property
    def n_meters(self) -> int:
        """Number of meters."""
        return len(self.meter_ids)

    @property
    def meter_feeder(self) -> np.ndarray:
        """Feeder index of every meter (through its transformer)."""
        return self.tx_feeder[self.meter_tx]

    @property
    def meter_sub(self) -> np.ndarray:
        """Substation index of every meter."""
        return self.feeder_sub[self.tx_feeder[self.meter_tx]]

    def summary(self) -> dict[str, int]:
        """Device counts by type."""
        return {
            "substations": len(self.substation_ids),
            "feeders": len(self.feeder_ids),
            "transformers": len(self.tx_ids),
            "meters": len(self.meter_ids),
            "ess_banks": len(self.ess_ids),
            "pv_inverters": len(self.pv_ids),
        }


def size_transformer(peak_kva: float) -> float:
    """Smallest standard rating that carries ``peak_kva`` at no more than 80 % load."""
    need = peak_kva / 0.8
    idx = int(np.searchsorted(STANDARD_KVA, need))
    return float(STANDARD_KVA[min(idx, len(STANDARD_KVA) - 1)])


def _install_date(rng: np.random.Generator, first: int = 2005, last: int = 2022) -> str:
    year = int(rng.integers(first, last + 1))
    return f"{year:04d}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"


def _serial(rng: np.random.Generator, prefix: str, install_date: str) -> str:
    return f"{prefix}{install_date[:4]}{int(rng.integers(0, 10**7)):07d}"


def build_topology(config: FleetConfig) -> Topology:
    """Draw a topology from ``config`` (sizes) and its seed (everything else)."""
    rng = np.random.default_rng([config.seed, 1])
    n_meters = config.total_meters

    # Transformers and their meters: zones drawn until every meter has a transformer.
    zone_shares = np.array([z[0] for z in _ZONES])
    meter_tx_l: list[np.ndarray] = []
    meter_cls_l: list[np.ndarray] = []
    left, n_tx = n_meters, 0
    while left > 0:
        zone = int(rng.choice(len(_ZONES), p=zone_shares))
        _, mix, mean_n = _ZONES[zone]
        size = max(1, int(rng.poisson(mean_n)))
        size = min(size, left)
        meter_tx_l.append(np.full(size, n_tx))
        meter_cls_l.append(rng.choice(3, size=size, p=np.array(mix)))
        left -= size
        n_tx += 1
    meter_tx = np.concatenate(meter_tx_l)
    meter_class = np.concatenate(meter_cls_l).astype(np.int64)

    median = np.array([m[0] for m in _MEAN_KW])[meter_class]
    sigma = np.array([m[1] for m in _MEAN_KW])[meter_class]
    lo = np.array([m[2] for m in _MEAN_KW])[meter_class]
    hi = np.array([m[3] for m in _MEAN_KW])[meter_class]
    meter_mean_kw = np.clip(median * np.exp(sigma * rng.standard_normal(n_meters)), lo, hi)
    meter_phases = np.where(
        meter_class == profiles.INDUSTRIAL, 3,
        np.where((meter_class == profiles.COMMERCIAL) & (rng.random(n_meters) < 0.7), 3, 1),
    )
    meter_phase = rng.integers(0, 3, n_meters)
    has_pv = rng.random(n_meters) < np.array(_PV_SHARE)[meter_class]
    meter_pv_kw = np.where(
        has_pv, np.round(np.clip(meter_mean_kw * rng.uniform(4.0, 8.0, n_meters), 2.0, 50.0)),
        0.0,
    )
    pf = np.clip(np.array(_POWER_FACTOR)[meter_class] + rng.normal(0, 0.015, n_meters),
                 0.8, 0.995)
    meter_tan_phi = np.tan(np.arccos(pf))
    meter_lv_pos = rng.uniform(0.05, 1.0, n_meters)
    meter_shift = rng.integers(-45, 46, n_meters)
    imb = rng.normal(0.0, 0.04, (n_meters, 3))
    meter_imbalance = 1.0 + imb - imb.mean(axis=1, keepdims=True)

    # Transformer ratings from the coincident peak of their meters.
    peak_factor = np.array([profiles.peak_factor(c) for c in range(3)])
    diversity = np.array([0.75, 0.9, 1.0])
    meter_peak = meter_mean_kw * peak_factor[meter_class] * diversity[meter_class]
    meter_peak_kva = meter_peak * np.sqrt(1 + meter_tan_phi**2)
    # Coincident peak plus a margin for the load noise of transformers with few meters.
    noise_kva = meter_peak_kva / diversity[meter_class] * profiles.NOISE_SIGMA[meter_class]
    tx_peak_kva = np.bincount(meter_tx, weights=meter_peak_kva, minlength=n_tx) + 2.5 * np.sqrt(
        np.bincount(meter_tx, weights=noise_kva**2, minlength=n_tx)
    )
    # Service cable: at most 1-3 % voltage drop at the meter's own peak current.
    i_peak = meter_peak_kva / diversity[meter_class] * 1000.0 / LV_V / meter_phases
    meter_r_svc = np.minimum(rng.uniform(0.01, 0.03, n_meters) * LV_V / i_peak, 0.3)
    tx_rated = np.array([size_transformer(p) for p in tx_peak_kva])
    p0_frac = rng.uniform(0.0015, 0.0022, n_tx)
    tx_p0 = tx_rated * p0_frac
    tx_pk = tx_p0 * rng.uniform(5.0, 6.5, n_tx)
    tx_r_pu = tx_pk / tx_rated
    tx_x_pu = np.sqrt(np.maximum(rng.uniform(0.04, 0.045, n_tx) ** 2 - tx_r_pu**2, 1e-6))
    i_rated = tx_rated * 1000.0 / (3 * LV_V)
    tx_r_lv = 0.04 * LV_V / i_rated * rng.uniform(0.6, 1.1, n_tx)

    # Feeders: consecutive transformers until the feeder's peak reaches 1.5-2.5 MVA.
    tx_feeder = np.empty(n_tx, dtype=np.int64)
    n_fdr, acc, target = 0, 0.0, rng.uniform(1500.0, 2500.0)
    for i in range(n_tx):
        if acc >= target:
            n_fdr, acc, target = n_fdr + 1, 0.0, rng.uniform(1500.0, 2500.0)
        tx_feeder[i] = n_fdr
        acc += tx_peak_kva[i]
    n_fdr += 1
    feeder_length = rng.uniform(4.0, 14.0, n_fdr)
    feeder_r = rng.uniform(0.2, 0.4, n_fdr)
    feeder_x = rng.uniform(0.33, 0.38, n_fdr)
    tx_pos = feeder_length[tx_feeder] * rng.uniform(0.15, 1.0, n_tx)
    # Off-circuit taps: transformers far down a heavily loaded feeder get +2.5 % / +5 %.
    fdr_peak = np.bincount(tx_feeder, weights=tx_peak_kva, minlength=n_fdr)
    est_drop = (fdr_peak[tx_feeder] * 1000.0 / MV_KV / 1000.0 * 0.5) * (
        feeder_r[tx_feeder] * 0.95 + feeder_x[tx_feeder] * 0.31
    ) * tx_pos / (MV_KV * 1000.0)
    tx_tap = np.clip(np.round(est_drop * 0.8 / 0.025), 0, 2).astype(np.int64)

    # Substations: two to five consecutive feeders each.
    feeder_sub = np.empty(n_fdr, dtype=np.int64)
    n_sub, count, per = 0, 0, int(rng.integers(2, 6))
    for f in range(n_fdr):
        if count >= per:
            n_sub, count, per = n_sub + 1, 0, int(rng.integers(2, 6))
        feeder_sub[f] = n_sub
        count += 1
    n_sub += 1
    sub_peak = np.bincount(feeder_sub, weights=fdr_peak, minlength=n_sub)

    # Geography: substations around the centre, feeders radiate from them.
    lat0, lon0 = config.latitude, config.longitude
    sub_lat = lat0 + rng.uniform(-0.15, 0.15, n_sub)
    sub_lon = lon0 + rng.uniform(-0.15, 0.15, n_sub)
    feeder_bearing = rng.uniform(0, 2 * math.pi, n_fdr)
    km_lat = 1.0 / 111.0
    km_lon = 1.0 / (111.0 * math.cos(math.radians(lat0)))
    b = feeder_bearing[tx_feeder]
    tx_lat = sub_lat[feeder_sub[tx_feeder]] + tx_pos * km_lat * np.cos(b)
    tx_lon = sub_lon[feeder_sub[tx_feeder]] + tx_pos * km_lon * np.sin(b)
    tx_lat += rng.normal(0, 0.002, n_tx)
    tx_lon += rng.normal(0, 0.002, n_tx)
    meter_lat = tx_lat[meter_tx] + rng.normal(0, 0.0015, n_meters)
    meter_lon = tx_lon[meter_tx] + rng.normal(0, 0.0015, n_meters)

    # Storage at even substations, PV plants at odd ones (substation 0 when alone).
    ess_sites = list(range(0, n_sub, 2))
    ess_sub = np.repeat(np.array(ess_sites, dtype=np.int64), 2)
    ess_kw = np.maximum(100.0, np.round(sub_peak[ess_sub] * 0.04 / 50.0) * 50.0)
    ess_kwh = ess_kw * 2.0
    pv_sites = list(range(1, n_sub, 2)) or [0]
    pv_sub = np.array(pv_sites, dtype=np.int64)
    pv_ac = np.maximum(200.0, np.round(sub_peak[pv_sub] * 0.12 / 50.0) * 50.0)
    pv_dc = pv_ac * 1.2

    topo = Topology(
        region_id="RGN-01",
        latitude=lat0,
        longitude=lon0,
        substation_ids=[f"SUB-{i + 1:02d}" for i in range(n_sub)],
        sub_lat=sub_lat,
        sub_lon=sub_lon,
        feeder_ids=[f"FDR-{i + 1:04d}" for i in range(n_fdr)],
        feeder_sub=feeder_sub,
        feeder_length_km=feeder_length,
        feeder_r_ohm_km=feeder_r,
        feeder_x_ohm_km=feeder_x,
        feeder_bearing=feeder_bearing,
        tx_ids=[f"TX-{i + 1:05d}" for i in range(n_tx)],
        tx_feeder=tx_feeder,
        tx_pos_km=tx_pos,
        tx_rated_kva=tx_rated,
        tx_tap=tx_tap,
        tx_p0_kw=tx_p0,
        tx_pk_kw=tx_pk,
        tx_r_pu=tx_r_pu,
        tx_x_pu=tx_x_pu,
        tx_r_lv_ohm=tx_r_lv,
        tx_lat=tx_lat,
        tx_lon=tx_lon,
        tx_ambient_offset=rng.normal(0.0, 0.8, n_tx),
        meter_ids=[f"MTR-{i + 1:06d}" for i in range(n_meters)],
        meter_tx=meter_tx,
        meter_class=meter_class,
        meter_phases=meter_phases.astype(np.int64),
        meter_phase=meter_phase,
        meter_mean_kw=meter_mean_kw,
        meter_pv_kw=meter_pv_kw,
        meter_tan_phi=meter_tan_phi,
        meter_r_svc_ohm=meter_r_svc,
        meter_lv_pos=meter_lv_pos,
        meter_shift_min=meter_shift,
        meter_imbalance=meter_imbalance,
        meter_lat=meter_lat,
        meter_lon=meter_lon,
        ess_ids=[f"ESS-{i + 1:02d}" for i in range(len(ess_sub))],
        ess_sub=ess_sub,
        ess_rated_kw=ess_kw,
        ess_rated_kwh=ess_kwh,
        pv_ids=[f"PV-{i + 1:02d}" for i in range(len(pv_sub))],
        pv_sub=pv_sub,
        pv_ac_kw=pv_ac,
        pv_dc_kw=pv_dc,
    )
    _initial_registry(topo, rng)
    return topo


def _initial_registry(topo: Topology, rng: np.random.Generator) -> None:
    """Fill ``topo.registry`` with version 1 of every device (``ts`` set when published)."""
    reg = topo.registry
    base = {"version": 1, "change_type": "create", "status": "in_service",
            "region_id": topo.region_id}
    for i, sid in enumerate(topo.substation_ids):
        d = _install_date(rng, 1995, 2015)
        reg[sid] = {**base, "device_id": sid, "device_type": "substation",
                    "model": "110/10kV GIS", "manufacturer": TX_MANUFACTURERS[i % 4],
                    "serial_number": _serial(rng, "SS", d), "install_date": d,
                    "latitude": round(float(topo.sub_lat[i]), 6),
                    "longitude": round(float(topo.sub_lon[i]), 6),
                    "parent_id": topo.region_id, "rated_voltage_kv": HV_KV,
                    "rated_power_kva": 40000.0}
    for f, fid in enumerate(topo.feeder_ids):
        s = int(topo.feeder_sub[f])
        d = _install_date(rng, 1995, 2018)
        reg[fid] = {**base, "device_id": fid, "device_type": "feeder",
                    "model": f"XLPE/ACSR {int(round(30 / topo.feeder_r_ohm_km[f]))}mm2",
                    "manufacturer": "Regional Grid Co.", "serial_number": _serial(rng, "FD", d),
                    "install_date": d, "latitude": round(float(topo.sub_lat[s]), 6),
                    "longitude": round(float(topo.sub_lon[s]), 6),
                    "parent_id": topo.substation_ids[s],
                    "substation_id": topo.substation_ids[s], "rated_voltage_kv": MV_KV,
                    "length_km": round(float(topo.feeder_length_km[f]), 3)}
    for t, tid in enumerate(topo.tx_ids):
        reg[tid] = _transformer_record(topo, t, rng, _install_date(rng))
    for m, mid in enumerate(topo.meter_ids):
        d = _install_date(rng, 2012, 2023)
        phases = int(topo.meter_phases[m])
        rec = {**base, "device_id": mid, "device_type": "meter",
               "model": "DTZY-3 smart meter" if phases == 3 else "DDZY-1 smart meter",
               "manufacturer": METER_MANUFACTURERS[int(rng.integers(0, 3))],
               "serial_number": _serial(rng, "MT", d), "install_date": d,
               "phases": phases,
               "customer_class": profiles.CLASSES[int(topo.meter_class[m])]}
        if topo.meter_pv_kw[m] > 0:
            rec["pv_capacity_kw"] = float(topo.meter_pv_kw[m])
        reg[mid] = rec
        update_meter_location(topo, m)
    for e, eid in enumerate(topo.ess_ids):
        s = int(topo.ess_sub[e])
        d = _install_date(rng, 2019, 2023)
        reg[eid] = {**base, "device_id": eid, "device_type": "ess",
                    "model": f"LFP-{int(topo.ess_rated_kwh[e])}kWh",
                    "manufacturer": ESS_MANUFACTURERS[e % 2],
                    "serial_number": _serial(rng, "ES", d), "install_date": d,
                    "latitude": round(float(topo.sub_lat[s]) + 0.0005, 6),
                    "longitude": round(float(topo.sub_lon[s]) + 0.0005 * (e + 1), 6),
                    "parent_id": topo.substation_ids[s],
                    "substation_id": topo.substation_ids[s],
                    "rated_power_kva": float(topo.ess_rated_kw[e]),
                    "rated_energy_kwh": float(topo.ess_rated_kwh[e]),
                    "rated_voltage_kv": ESS_NOMINAL_V / 1000.0}
    for p, pid in enumerate(topo.pv_ids):
        s = int(topo.pv_sub[p])
        d = _install_date(rng, 2016, 2023)
        reg[pid] = {**base, "device_id": pid, "device_type": "pv_inverter",
                    "model": f"CI-{int(topo.pv_ac_kw[p])}K central inverter",
                    "manufacturer": PV_MANUFACTURERS[p % 2],
                    "serial_number": _serial(rng, "PV", d), "install_date": d,
                    "latitude": round(float(topo.sub_lat[s]) - 0.01, 6),
                    "longitude": round(float(topo.sub_lon[s]) - 0.01, 6),
                    "parent_id": topo.substation_ids[s],
                    "substation_id": topo.substation_ids[s],
                    "rated_power_kva": float(topo.pv_ac_kw[p]), "rated_voltage_kv": MV_KV}


ESS_NOMINAL_V = 768.0
"""Nominal DC voltage of a battery bank: 240 LFP cells of 3.2 V in series."""


def _transformer_record(
    topo: Topology, t: int, rng: np.random.Generator, install_date: str
) -> dict[str, Any]:
    f = int(topo.tx_feeder[t])
    s = int(topo.feeder_sub[f])
    kva = float(topo.tx_rated_kva[t])
    return {"version": 1, "change_type": "create", "status": "in_service",
            "region_id": topo.region_id, "device_id": topo.tx_ids[t],
            "device_type": "transformer", "model": f"S13-M-{int(kva)}/10",
            "manufacturer": TX_MANUFACTURERS[int(rng.integers(0, 4))],
            "serial_number": _serial(rng, "TX", install_date), "install_date": install_date,
            "latitude": round(float(topo.tx_lat[t]), 6),
            "longitude": round(float(topo.tx_lon[t]), 6),
            "parent_id": topo.feeder_ids[f], "substation_id": topo.substation_ids[s],
            "feeder_id": topo.feeder_ids[f], "rated_power_kva": kva,
            "rated_voltage_kv": MV_KV,
            "position_km": round(float(topo.tx_pos_km[t]), 3)}


def new_transformer_record(
    topo: Topology, t: int, rng: np.random.Generator, install_date: str
) -> dict[str, Any]:
    """A registry record for transformer ``t`` after new equipment was installed."""
    return _transformer_record(topo, t, rng, install_date)


def update_meter_location(topo: Topology, m: int) -> None:
    """Refresh a meter's registry record from its current transformer."""
    t = int(topo.meter_tx[m])
    f = int(topo.tx_feeder[t])
    s = int(topo.feeder_sub[f])
    rec = topo.registry[topo.meter_ids[m]]
    rec.update({
        "latitude": round(float(topo.meter_lat[m]), 6),
        "longitude": round(float(topo.meter_lon[m]), 6),
        "parent_id": topo.tx_ids[t], "transformer_id": topo.tx_ids[t],
        "feeder_id": topo.feeder_ids[f], "substation_id": topo.substation_ids[s],
        "position_km": round(float(topo.tx_pos_km[t]), 3),
    })
