"""Replay of a public 1-minute household series as smart-meter telemetry.

Loads the UCI "Individual household electric power consumption" format (semicolon
separated ``Date;Time;Global_active_power;Global_reactive_power;Voltage;
Global_intensity;Sub_metering_1..3``, ``?`` marks a missing value) and turns it into
``meter.readings`` messages for one or more virtual meters: each meter gets the series
scaled by its own factor with multiplicative noise, the active power is integrated into
the import energy register, and missing minutes become gaps (no message, no energy).

Timestamps in the file are taken as UTC; ``start_ms`` shifts the series to a new start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lakehouse.time import MINUTE_MS
from mock_devices.config import ConfigError, Record

if TYPE_CHECKING:  # pandas is imported by load_uci only: it costs ~2.5 s at CLI start
    import pandas as pd

UCI_COLUMNS = ("Date", "Time", "Global_active_power", "Global_reactive_power", "Voltage",
               "Global_intensity")
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "tests" / "data" / (
    "uci_household_power_consumption_2days.txt"
)
"""The two-day slice shipped with the tests."""


def load_uci(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """Load a UCI household power file.

    Returns:
        Columns ``ts_ms`` (int64, UTC), ``active_power_kw``, ``reactive_power_kvar``,
        ``voltage_v``, ``current_a``; missing values are NaN (rows are kept).

    Raises:
        ConfigError: When the file is missing or not in the expected format.

    """
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"replay file {path} does not exist")
    try:
        raw = pd.read_csv(path, sep=";", na_values=["?"], usecols=list(UCI_COLUMNS),
                          dtype={"Date": str, "Time": str}, nrows=max_rows,
                          skipinitialspace=True)
    except ValueError as e:
        raise ConfigError(f"{path} is not in the UCI household power format: {e}") from None
    try:
        ts = pd.to_datetime(raw["Date"] + " " + raw["Time"], format="%d/%m/%Y %H:%M:%S",
                            utc=True)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: bad Date/Time value: {e}") from None
    values = raw[list(UCI_COLUMNS[2:])].apply(pd.to_numeric, errors="coerce")
    out = pd.DataFrame({
        "ts_ms": ts.astype("int64") // 1_000_000,
        "active_power_kw": values["Global_active_power"].to_numpy(float),
        "reactive_power_kvar": values["Global_reactive_power"].to_numpy(float),
        "voltage_v": values["Voltage"].to_numpy(float),
        "current_a": values["Global_intensity"].to_numpy(float),
    })
    return out.sort_values("ts_ms", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ReplayConfig:
    """How a series becomes meter telemetry.

    Attributes:
        meters: Number of virtual meters fed from the series.
        seed: Seed of the scale factors and noise.
        noise: Relative standard deviation of the multiplicative noise.
        start_ms: New event time of the first row (None keeps the file's times).
        device_prefix: Prefix of the meter ids.
        registry: Whether to emit registry records for the meters first.

    """

    meters: int = 1
    seed: int = 42
    noise: float = 0.02
    start_ms: int | None = None
    device_prefix: str = "MTR-UCI-"
    registry: bool = True

    def __post_init__(self) -> None:
        if self.meters < 1:
            raise ConfigError(f"replay meters must be at least 1, got {self.meters}")
        if not 0.0 <= self.noise < 1.0:
            raise ConfigError(f"noise must be within 0..1, got {self.noise}")


def _registry(ids: list[str], ts: int) -> Iterator[Record]:
    for mid in ids:
        yield ("device.registry", mid, {
            "device_id": mid, "ts": ts, "version": 1, "change_type": "create",
            "device_type": "meter", "model": "UCI household replay",
            "manufacturer": "UCI Machine Learning Repository", "serial_number": f"UCI{mid}",
            "status": "in_service", "install_date": "2006-12-16", "region_id": "RGN-UCI",
            "latitude": 48.778, "longitude": 2.29, "parent_id": "TX-UCI-00001",
            "substation_id": "SUB-UCI-01", "feeder_id": "FDR-UCI-0001",
            "transformer_id": "TX-UCI-00001", "phases": 1, "customer_class": "residential",
        })


def replay_records(df: pd.DataFrame, config: ReplayConfig,
                   chunk_rows: int = 1440) -> Iterator[Record]:
    """Meter messages (and registry records) from a loaded series, in event-time order."""
    if df.empty:
        return
    rng = np.random.default_rng([config.seed, 17])
    n = config.meters
    ids = [f"{config.device_prefix}{k + 1:04d}" for k in range(n)]
    scale = np.ones(n) if n == 1 else np.exp(rng.normal(0.0, 0.15, n))
    register = np.round(rng.uniform(1000.0, 10000.0, n) * scale, 3)
    seq = np.zeros(n, dtype=np.int64)
    first = int(df["ts_ms"].iloc[0])
    shift = 0 if config.start_ms is None else (config.start_ms - config.start_ms % MINUTE_MS
                                               - first)
    if config.registry:
        yield from _registry(ids, first + shift)
    for lo in range(0, len(df), chunk_rows):
        part = df.iloc[lo:lo + chunk_rows]
        ok = part["active_power_kw"].notna().to_numpy()
        part = part[ok]
        rows = len(part)
        if rows == 0:
            continue
        f = scale[None, :] * np.maximum(1.0 + config.noise * rng.standard_normal((rows, n)),
                                        0.0)
        p = np.maximum(part["active_power_kw"].to_numpy()[:, None] * f, 0.0)
        q = np.nan_to_num(part["reactive_power_kvar"].to_numpy()[:, None] * f)
        v = np.nan_to_num(part["voltage_v"].to_numpy()[:, None]
                          + 0.2 * rng.standard_normal((rows, n)))
        i = np.nan_to_num(part["current_a"].to_numpy()[:, None] * f)
        s = np.hypot(p, q)
        pf = np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0)
        # Register at a reading holds the energy up to it: exclusive cumulative sum.
        inc = p / 60.0
        before = register[None, :] + np.cumsum(inc, axis=0) - inc
        register = register + inc.sum(axis=0)
        ts = (part["ts_ms"].to_numpy() + shift).tolist()
        cols: list[list[Any]] = [np.round(x, d).tolist() for x, d in
                                 ((before, 3), (v, 1), (i, 2), (p, 3), (q, 3), (pf, 3))]
        for r, t in enumerate(ts):
            e_r, v_r, i_r, p_r, q_r, pf_r = (c[r] for c in cols)
            for k, mid in enumerate(ids):
                yield ("meter.readings", mid, {
                    "device_id": mid, "ts": t, "energy_import_kwh": e_r[k],
                    "energy_export_kwh": 0.0, "voltage_v": v_r[k], "current_a": i_r[k],
                    "active_power_kw": p_r[k], "seq": int(seq[k]),
                    "reactive_power_kvar": q_r[k], "power_factor": pf_r[k], "interval_s": 60,
                })
                seq[k] += 1
