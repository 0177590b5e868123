"""Regional weather: ambient temperature, clear-sky irradiance and clouds.

Irradiance uses the solar zenith angle and the Haurwitz clear-sky model,
``GHI_clear = 1098 · cos z · exp(−0.057 / cos z)`` W/m², multiplied by a clearness index
that follows a three-regime Markov chain (clear, broken clouds, overcast) with
minute-scale AR(1) fluctuations, per substation site around the regional value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lakehouse.time import DAY_MS, HOUR_MS

# Clearness index mean, AR(1) coefficient and noise per regime.
_REGIME_MEAN = np.array([0.92, 0.62, 0.28])
_REGIME_SIGMA = np.array([0.02, 0.18, 0.06])
_REGIME_PHI = 0.85
_REGIME_SWITCH_PER_MIN = 1.0 / 240.0  # mean regime duration four hours
_REGIME_WEIGHTS = np.array([0.5, 0.3, 0.2])
_ANOMALY_PHI = math.exp(-1.0 / 720.0)  # 12-hour correlation time, per minute
_ANOMALY_SIGMA = 2.5  # K, stationary standard deviation


def day_of_year(ts_ms: int) -> int:
    """Day of the year 1..366 (UTC) of an epoch-milliseconds instant (approximate)."""
    days = ts_ms // DAY_MS
    # 1970-01-01 is day 1; use the civil calendar through numpy.
    d = np.datetime64(int(days), "D")
    return int((d - d.astype("datetime64[Y]")).astype(int)) + 1


def cos_zenith(ts_ms: int, latitude: float, longitude: float) -> float:
    """Cosine of the solar zenith angle (negative at night)."""
    doy = day_of_year(ts_ms)
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
    utc_h = (ts_ms % DAY_MS) / HOUR_MS
    hour_angle = math.radians(15.0 * (utc_h + longitude / 15.0 - 12.0))
    lat = math.radians(latitude)
    return math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(
        hour_angle
    )


def clear_sky_ghi(ts_ms: int, latitude: float, longitude: float) -> float:
    """Haurwitz clear-sky global horizontal irradiance in W/m²."""
    cz = cos_zenith(ts_ms, latitude, longitude)
    if cz <= 0.01:
        return 0.0
    return 1098.0 * cz * math.exp(-0.057 / cz)


@dataclass
class WeatherSample:
    """Weather at one minute.

    Attributes:
        ambient_c: Regional ambient air temperature.
        clear_ghi: Clear-sky irradiance (W/m²).
        site_ghi: Irradiance per substation site (W/m²).

    """

    ambient_c: float
    clear_ghi: float
    site_ghi: np.ndarray


class Weather:
    """Stateful regional weather, advanced one minute per :meth:`step`."""

    def __init__(
        self,
        rng: np.random.Generator,
        n_sites: int,
        latitude: float,
        longitude: float,
        utc_offset_h: float,
    ) -> None:
        self._rng = rng
        self._lat, self._lon, self._tz = latitude, longitude, utc_offset_h
        self._regime = int(rng.choice(3, p=_REGIME_WEIGHTS))
        self._k = float(_REGIME_MEAN[self._regime])
        self._site_dev = np.zeros(n_sites)
        self._anomaly = float(rng.normal(0.0, _ANOMALY_SIGMA))

    def ambient_mean(self, ts_ms: int) -> float:
        """Seasonal and diurnal ambient temperature without the weather anomaly."""
        doy = day_of_year(ts_ms)
        local_h = ((ts_ms % DAY_MS) / HOUR_MS + self._tz) % 24.0
        seasonal = 15.0 - 12.0 * math.cos(2 * math.pi * (doy - 20) / 365.0)
        diurnal = 5.0 * math.sin(2 * math.pi * (local_h - 9.0) / 24.0)
        return seasonal + diurnal

    def step(self, ts_ms: int) -> WeatherSample:
        """Advance the weather by one minute and return its state at ``ts_ms``."""
        rng = self._rng
        u, e1 = rng.random(), rng.standard_normal()
        e_sites = rng.standard_normal(self._site_dev.shape[0])
        if u < _REGIME_SWITCH_PER_MIN:
            self._regime = int((self._regime + 1 + (u < _REGIME_SWITCH_PER_MIN / 2)) % 3)
        mean, sigma = _REGIME_MEAN[self._regime], _REGIME_SIGMA[self._regime]
        self._k = mean + _REGIME_PHI * (self._k - mean) + sigma * math.sqrt(
            1 - _REGIME_PHI**2
        ) * e1
        self._site_dev = _REGIME_PHI * self._site_dev + 0.5 * sigma * math.sqrt(
            1 - _REGIME_PHI**2
        ) * e_sites
        self._anomaly = _ANOMALY_PHI * self._anomaly + _ANOMALY_SIGMA * math.sqrt(
            1 - _ANOMALY_PHI**2
        ) * float(rng.standard_normal())
        clear = clear_sky_ghi(ts_ms, self._lat, self._lon)
        k_sites = np.clip(self._k + self._site_dev, 0.05, 1.05)
        return WeatherSample(
            ambient_c=self.ambient_mean(ts_ms) + self._anomaly,
            clear_ghi=clear,
            site_ghi=clear * k_sites,
        )
