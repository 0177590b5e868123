"""Dissolved-gas analysis: IEC 60599 ratios, the Duval triangle 1, C57.104-style alarms.

Pure functions on gas concentrations in ppm (docs/health.md has the sources and tables):

* :func:`duval_zone`: Duval triangle 1 (CH4, C2H4, C2H2 shares) → PD, T1, T2, T3, D1, D2
  or DT;
* :func:`iec_ratios`, :func:`ratio_codes`, :func:`iec_diagnosis`: the three basic gas
  ratios of IEC 60599, their code (0/1/2, the IEC 599 code table) and the fault of
  IEC 60599 Table 1;
* :func:`gas_conditions`, :func:`tdcg_rate`: per-gas and total dissolved combustible gas
  (TDCG) conditions 1–4 and the rate of increase, as IEEE C57.104-2008 Tables 1 and 3;
* :func:`dga_factors`: the three DGA factors of the health index from an asset's samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from jobs.health.factors import Factor, Severity, finite, invalid, judged, no_data
from lakehouse.contracts.messages import TRANSFORMER_DGA
from lakehouse.time import DAY_MS, HOUR_MS, format_time_ms

GASES: tuple[str, ...] = ("h2", "ch4", "c2h2", "c2h4", "c2h6", "co")
"""Gases the DGA monitors report (columns ``<gas>_ppm`` of ``dwd_transformer_dga``)."""

MAX_PPM: dict[str, float] = {
    g: float(TRANSFORMER_DGA.field(f"{g}_ppm").maximum or float("inf")) for g in GASES}
"""Largest concentration a monitor can report (the message contract's range): above it a
value is a sensor fault, not a gas level."""

CONDITION_LIMITS: dict[str, tuple[float, float, float]] = {
    # upper limit of condition 1, 2, 3 (ppm); above the third: condition 4
    "h2": (100.0, 700.0, 1800.0),
    "ch4": (120.0, 400.0, 1000.0),
    "c2h2": (1.0, 9.0, 35.0),
    "c2h4": (50.0, 100.0, 200.0),
    "c2h6": (65.0, 100.0, 150.0),
    "co": (350.0, 570.0, 1400.0),
    "tdcg": (720.0, 1920.0, 4630.0),
}
"""IEEE C57.104-2008 Table 1: dissolved gas concentration limits of conditions 1–3."""

RATE_LIMITS_PPM_DAY: tuple[float, float, float] = (10.0, 30.0, 100.0)
"""TDCG rate (ppm/day) above which the rate factor is fair, poor, critical. 10 and 30 are
C57.104-2008 Table 3's steps; 100 is GridLake's (docs/health.md)."""

LEVEL_LOOKBACK_MS = 30 * DAY_MS
"""The newest sample within this of the day's end is judged; none: no evidence."""
RATE_WINDOW_MS = 3 * DAY_MS
"""Samples of this window before the day's end give the rate (least-squares slope)."""
RATE_MIN_SAMPLES = 4
RATE_MIN_SPAN_MS = 12 * HOUR_MS

ZONES: tuple[str, ...] = ("PD", "T1", "T2", "T3", "D1", "D2", "DT")
"""Duval triangle 1 zones."""
FAULT_NAMES: dict[str, str] = {
    "N": "normal (no gas above its typical level)",
    "PD": "partial discharges",
    "D1": "discharges of low energy",
    "D2": "discharges of high energy",
    "T1": "thermal fault below 300 °C",
    "T2": "thermal fault 300–700 °C",
    "T3": "thermal fault above 700 °C",
    "DT": "mixture of electrical and thermal faults",
}


@dataclass(frozen=True)
class GasSample:
    """One DGA sample.

    Attributes:
        ts_ms: Sample time, epoch ms.
        ppm: Gas → concentration; a gas may be missing (None/NaN) or wrong (negative).

    """

    ts_ms: int
    ppm: Mapping[str, float | None]

    def usable(self) -> dict[str, float]:
        """The gases with a finite concentration within the monitor's range."""
        out: dict[str, float] = {}
        for g in GASES:
            v = self.ppm.get(g)
            if v is not None and finite(v) and 0.0 <= float(v) <= MAX_PPM[g]:
                out[g] = float(v)
        return out

    def problems(self) -> tuple[list[str], list[str]]:
        """(missing gases, gases with a negative or out-of-range concentration)."""
        missing = [g for g in GASES if not finite(self.ppm.get(g))]
        bad = [g for g in GASES if g not in missing
               and not 0.0 <= float(self.ppm[g] or 0.0) <= MAX_PPM[g]]
        return missing, bad

    @property
    def complete(self) -> bool:
        """Every gas usable (TDCG can be summed)."""
        return len(self.usable()) == len(GASES)


# ------------------------------------------------------------------------- Duval 1
def duval_shares(ch4: float, c2h4: float, c2h2: float) -> tuple[float, float, float]:
    """Relative shares (%) of CH4, C2H4 and C2H2 in their sum.

    Raises:
        ValueError: A negative concentration, or all three zero (no point in the triangle).

    """
    if min(ch4, c2h4, c2h2) < 0:
        raise ValueError("Duval triangle: negative concentration")
    total = ch4 + c2h4 + c2h2
    if total <= 0:
        raise ValueError("Duval triangle: CH4 + C2H4 + C2H2 is 0")
    return 100.0 * ch4 / total, 100.0 * c2h4 / total, 100.0 * c2h2 / total


def duval_zone(ch4: float, c2h4: float, c2h2: float) -> str:
    """Zone of Duval triangle 1 for the three gases (any unit, only shares matter).

    Zone boundaries (shares in %, Duval 2002; IEC 60599:2015 Annex B):
    PD: CH4 ≥ 98; T1: C2H2 < 4, C2H4 < 20; T2: C2H2 < 4, 20 ≤ C2H4 < 50;
    T3: C2H2 < 15, C2H4 ≥ 50; D1: C2H2 ≥ 13, C2H4 < 23;
    D2: C2H2 ≥ 13, C2H4 ≥ 23 and (C2H4 < 40 or C2H2 ≥ 29); DT: everything else.
    """
    p_ch4, p_c2h4, p_c2h2 = duval_shares(ch4, c2h4, c2h2)
    if p_ch4 >= 98.0:
        return "PD"
    if p_c2h2 < 4.0:
        if p_c2h4 < 20.0:
            return "T1"
        if p_c2h4 < 50.0:
            return "T2"
        return "T3"
    if p_c2h2 < 15.0 and p_c2h4 >= 50.0:
        return "T3"
    if p_c2h2 >= 13.0:
        if p_c2h4 < 23.0:
            return "D1"
        if p_c2h4 < 40.0 or p_c2h2 >= 29.0:
            return "D2"
    return "DT"


# ------------------------------------------------------------------------ IEC 60599
def iec_ratios(ppm: Mapping[str, float]) -> tuple[float, float, float]:
    """The basic gas ratios (C2H2/C2H4, CH4/H2, C2H4/C2H6).

    Over a zero denominator a ratio is ``inf`` (positive numerator) or 0 (both zero).
    """
    def ratio(a: float, b: float) -> float:
        if b > 0:
            return a / b
        return float("inf") if a > 0 else 0.0

    return (ratio(ppm["c2h2"], ppm["c2h4"]), ratio(ppm["ch4"], ppm["h2"]),
            ratio(ppm["c2h4"], ppm["c2h6"]))


def ratio_codes(r1: float, r2: float, r3: float) -> tuple[int, int, int]:
    """The code of each ratio (IEC 599:1978 / IEC 60599:1999 Annex code table).

    ====================  ==========  ======  ==========
    ratio range           C2H2/C2H4   CH4/H2  C2H4/C2H6
    ====================  ==========  ======  ==========
    < 0.1                 0           1       0
    0.1 – 1               1           0       0
    1 – 3                 1           2       1
    > 3                   2           2       2
    ====================  ==========  ======  ==========
    """
    def band(r: float) -> int:
        return 0 if r < 0.1 else 1 if r < 1.0 else 2 if r <= 3.0 else 3

    c1 = (0, 1, 1, 2)[band(r1)]
    c2 = (1, 0, 2, 2)[band(r2)]
    c3 = (0, 0, 1, 2)[band(r3)]
    return c1, c2, c3


CODE_FAULTS: dict[tuple[int, int, int], str] = {
    (0, 0, 0): "N", (0, 1, 0): "PD", (1, 1, 0): "PD",
    (1, 0, 1): "D1", (1, 0, 2): "D2", (2, 0, 1): "D1", (2, 0, 2): "D1",
    (0, 0, 1): "T1", (0, 2, 0): "T1", (0, 2, 1): "T2", (0, 2, 2): "T3",
}
"""Fault of each code triple of the IEC 599 table (the rest: not classified)."""


def iec_diagnosis(r1: float, r2: float, r3: float) -> str | None:
    """Fault of IEC 60599:2015 Table 1 for the ratios, or None when no row matches.

    ====  ==========  ==============  ==========
    case  C2H2/C2H4   CH4/H2          C2H4/C2H6
    ====  ==========  ==============  ==========
    PD    NS          < 0.1           < 0.2
    D1    > 1         0.1 – 0.5       > 1
    D2    0.6 – 2.5   0.1 – 1         > 2
    T1    NS          > 1 (NS)        < 1
    T2    < 0.1       > 1             1 – 4
    T3    < 0.2       > 1             > 4
    ====  ==========  ==============  ==========

    NS: not significant. Where D1 and D2 overlap the more severe D2 is returned; T1 is
    checked last, since its NS columns would swallow PD.
    """
    if r2 < 0.1 and r3 < 0.2:
        return "PD"
    if 0.6 <= r1 <= 2.5 and 0.1 <= r2 <= 1.0 and r3 > 2.0:
        return "D2"
    if r1 > 1.0 and 0.1 <= r2 <= 0.5 and r3 > 1.0:
        return "D1"
    if r1 < 0.2 and r2 > 1.0 and r3 > 4.0:
        return "T3"
    if r1 < 0.1 and r2 > 1.0 and 1.0 <= r3 <= 4.0:
        return "T2"
    if r3 < 1.0 and r2 > 0.1:
        return "T1"
    return None


# ---------------------------------------------------------------- C57.104 alarms
def gas_condition(gas: str, ppm: float) -> int:
    """Condition 1–4 of one gas (or ``tdcg``) per C57.104-2008 Table 1."""
    c1, c2, c3 = CONDITION_LIMITS[gas]
    return 1 if ppm <= c1 else 2 if ppm <= c2 else 3 if ppm <= c3 else 4


def gas_conditions(ppm: Mapping[str, float]) -> dict[str, int]:
    """Condition of every gas given, and of the TDCG when every gas is given."""
    out = {g: gas_condition(g, ppm[g]) for g in GASES if g in ppm}
    if all(g in ppm for g in GASES):
        out["tdcg"] = gas_condition("tdcg", sum(ppm[g] for g in GASES))
    return out


def tdcg_rate(samples: Sequence[GasSample]) -> float:
    """Least-squares slope of the TDCG of complete samples, ppm per day.

    Raises:
        ValueError: Fewer than two complete samples at distinct times.

    """
    pts = [(s.ts_ms, sum(s.usable().values())) for s in samples if s.complete]
    ts = np.array([p[0] for p in pts], dtype=float)
    if len(pts) < 2 or np.ptp(ts) == 0:
        raise ValueError("TDCG rate needs two complete samples at distinct times")
    days = (ts - ts.mean()) / DAY_MS
    tdcg = np.array([p[1] for p in pts])
    return float(np.sum(days * (tdcg - tdcg.mean())) / np.sum(days * days))


# --------------------------------------------------------------------- factors
def _sample_note(missing: list[str], negative: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if negative:
        parts.append(f"negative or out-of-range concentration of {', '.join(negative)} "
                     "(ignored)")
    return "; ".join(parts)


def level_factor(latest: GasSample | None) -> Factor:
    """Gas level alarm: the worst C57.104 condition of the newest sample."""
    name = "dga_level"
    if latest is None:
        return no_data(name, f"no DGA reading in {LEVEL_LOOKBACK_MS // DAY_MS} days")
    missing, negative = latest.problems()
    usable = latest.usable()
    note = _sample_note(missing, negative)
    when = format_time_ms(latest.ts_ms)
    if not usable:
        return invalid(name, f"DGA sample of {when} has no usable gas: {note}",
                       sample_ts=when, missing=missing, negative=negative)
    cond = gas_conditions(usable)
    worst = max(cond.values())
    over = sorted(g for g, c in cond.items() if c == worst and c > 1)
    reason = (f"condition {worst} (C57.104 Table 1) for {', '.join(over)}" if over
              else "every gas in condition 1")
    if note:
        reason += f"; {note}"
    return judged(name, Severity(worst - 1), worst, "condition", reason, sample_ts=when,
                  ppm={g: round(v, 2) for g, v in usable.items()}, conditions=cond,
                  missing=missing, negative=negative)


def rate_factor(window: Sequence[GasSample]) -> Factor:
    """Gas rate alarm: TDCG slope over the rate window's complete samples."""
    name = "dga_rate"
    complete = [s for s in window if s.complete]
    days = RATE_WINDOW_MS // DAY_MS
    if not window:
        return no_data(name, f"no DGA reading in the last {days} days")
    span = (max(s.ts_ms for s in complete) - min(s.ts_ms for s in complete)) if complete else 0
    if len(complete) < RATE_MIN_SAMPLES or span < RATE_MIN_SPAN_MS:
        return no_data(name, f"{len(complete)} complete DGA sample(s) spanning "
                       f"{span / HOUR_MS:.1f} h in {days} days: a rate needs "
                       f"{RATE_MIN_SAMPLES} over {RATE_MIN_SPAN_MS // HOUR_MS} h",
                       samples=len(window), complete=len(complete))
    rate = tdcg_rate(complete)
    sev = _rate_severity(rate)
    skipped = len(window) - len(complete)
    reason = f"TDCG rising {rate:.1f} ppm/day over {len(complete)} samples"
    if skipped:
        reason += f" ({skipped} incomplete sample(s) left out)"
    return judged(name, sev, round(rate, 2), "ppm/day", reason, samples=len(complete),
                  skipped=skipped, span_h=round(span / HOUR_MS, 1))


def _rate_severity(rate: float) -> Severity:
    fair, poor, critical = RATE_LIMITS_PPM_DAY
    if rate > critical:
        return Severity.CRITICAL
    if rate > poor:
        return Severity.POOR
    if rate > fair:
        return Severity.FAIR
    return Severity.GOOD


def diagnosis(ppm: Mapping[str, float]) -> dict[str, object]:
    """Duval zone and IEC ratios/codes/fault of one sample (all six gases needed for IEC)."""
    out: dict[str, object] = {}
    try:
        out["duval"] = duval_zone(ppm["ch4"], ppm["c2h4"], ppm["c2h2"])
        out["duval_pct"] = [round(p, 1) for p in duval_shares(ppm["ch4"], ppm["c2h4"],
                                                                ppm["c2h2"])]
    except (KeyError, ValueError) as err:
        out["duval"] = None
        out["duval_why"] = str(err) if isinstance(err, ValueError) else f"missing {err}"
    if all(g in ppm for g in ("h2", "ch4", "c2h2", "c2h4", "c2h6")):
        r = iec_ratios(ppm)
        out["iec_ratios"] = [round(x, 3) if np.isfinite(x) else None for x in r]
        out["iec_codes"] = list(ratio_codes(*r))
        out["iec"] = iec_diagnosis(*r)
        out["iec_code_fault"] = CODE_FAULTS.get(ratio_codes(*r))
    return out


_ZONE_SEVERITY = {"PD": Severity.FAIR, "T1": Severity.FAIR, "T2": Severity.FAIR,
                  "D1": Severity.FAIR, "T3": Severity.POOR, "D2": Severity.POOR,
                  "DT": Severity.POOR}


def diagnosis_factor(latest: GasSample | None, abnormal: bool) -> Factor:
    """Fault type of the newest sample (Duval 1, IEC 60599 beside it).

    Gas ratios mean something only once gases are above their typical levels
    (IEC 60599 §6): with every alarm quiet the diagnosis is ``N`` (normal).
    """
    name = "dga_diagnosis"
    if latest is None:
        return no_data(name, f"no DGA reading in {LEVEL_LOOKBACK_MS // DAY_MS} days")
    usable = latest.usable()
    found = diagnosis(usable)
    if not abnormal:
        return judged(name, Severity.GOOD, "N", "", "gas levels and rate normal: no fault "
                      "diagnosed", **found)
    zone = found.get("duval")
    if not isinstance(zone, str):
        return invalid(name, f"gases abnormal but no Duval point: {found.get('duval_why')}",
                       **found)
    return judged(name, _ZONE_SEVERITY[zone], zone, "",
                  f"Duval triangle 1 zone {zone}: {FAULT_NAMES[zone]}; IEC 60599 ratios: "
                  f"{found.get('iec') or 'no table row'}", **found)


def dga_factors(samples: Sequence[GasSample], day_end_ms: int) -> list[Factor]:
    """The DGA factors of one transformer for the day ending at ``day_end_ms``.

    Args:
        samples: The transformer's samples (any order; those after the day are ignored).
        day_end_ms: End of the judged day (exclusive).

    """
    seen = sorted((s for s in samples if day_end_ms - LEVEL_LOOKBACK_MS <= s.ts_ms
                   < day_end_ms), key=lambda s: s.ts_ms)
    with_gas = [s for s in seen if s.usable()]
    latest = with_gas[-1] if with_gas else (seen[-1] if seen else None)
    level = level_factor(latest)
    rate = rate_factor([s for s in seen if s.ts_ms >= day_end_ms - RATE_WINDOW_MS])
    abnormal = any(f.severity is not None and f.severity >= Severity.POOR
                   for f in (level, rate)) or (
        level.severity is not None and level.severity >= Severity.FAIR
        and rate.severity is not None and rate.severity >= Severity.FAIR)
    return [level, rate, diagnosis_factor(latest if with_gas else None, abnormal)]
