"""Infrared (thermal) views: the thermal model's temperatures drawn with an ironbow map.

The spec's load factor and ambient give the steady-state top-oil and hot-spot temperatures
of the simulator's IEEE C57.91 model (:meth:`ImageSpec.oil_temperatures`). The tank wall
follows the oil's stratification (top oil at the cover, cooler towards the bottom), the
radiator fins run cooler than the tank, an oil-filled bushing is warm at its flange and
cools upwards, bare metal looks colder than it is (low emissivity), and the terminals warm
with the square of the current. A ``hot_spot`` is a bad connection: a small region much
hotter than the model's winding hot spot, at a terminal or a cover bolt.

The colour scale is a manual range, as an inspector sets it: from ``lo`` = ambient − 10 °C
(rounded) over a span of 60 to 100 K, widened in steps of 10 K where the unit's top oil
would not fit (never because of the defect), so a loaded unit looks brighter than a
lightly loaded one and a bad connection may saturate; the scale bar on the right shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mock_devices.images import scene as sc
from mock_devices.images.camera import homography, warp
from mock_devices.images.spec import ImageSpec

_STOPS = ((0.0, (0, 0, 12)), (0.12, (25, 0, 85)), (0.3, (105, 0, 150)),
          (0.45, (175, 20, 125)), (0.6, (225, 70, 35)), (0.75, (250, 140, 0)),
          (0.9, (255, 215, 60)), (1.0, (255, 255, 235)))


def _ironbow() -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    pos = [s[0] for s in _STOPS]
    return np.stack([np.interp(x, pos, [s[1][c] for s in _STOPS]) for c in range(3)],
                    axis=1).astype(np.uint8)


IRONBOW = _ironbow()
"""256-entry ironbow colour map (black → purple → red → orange → yellow → white)."""

_EMISSIVITY = np.array([0.0, 0.9, 0.35, 0.95, 0.9, 0.6, 0.9, 0.9, 0.9, 0.9], np.float32)


@dataclass(frozen=True)
class Thermogram:
    """An infrared view: colours and the temperatures behind them.

    Attributes:
        rgb: The image (H×W×3 uint8) with the colour scale bar.
        temperature_c: Apparent temperature per pixel (°C, float32, before colour mapping).
        lo_c: Temperature of the scale's bottom (black).
        hi_c: Temperature of the scale's top (white).
        top_oil_c: The thermal model's top-oil temperature.
        hot_spot_c: The thermal model's winding hot-spot temperature.

    """

    rgb: np.ndarray
    temperature_c: np.ndarray
    lo_c: float
    hi_c: float
    top_oil_c: float
    hot_spot_c: float


def _object_temperatures(spec: ImageSpec, scene: sc.Scene, top_oil: float) -> np.ndarray:
    h, w = scene.mat.shape
    amb, rise = spec.ambient_c, top_oil - spec.ambient_c
    y = np.arange(h, dtype=np.float32)[:, None]
    x0, y0, x1, y1 = scene.warm_box
    if y1 > y0:  # oil stratification of the tank wall (or the cover below the bushings)
        rel = np.clip((y - y0) / max(1.0, y1 - y0), 0, 1)
        wall = 0.98 - 0.5 * rel
    else:
        wall = np.full_like(y, 0.9)
    rise_map = np.broadcast_to(wall, (h, w)).copy()
    fins = scene.parts.get("fins", [])
    if fins:  # radiators shed the heat: cooler than the wall at the same height
        xs = np.arange(w, dtype=np.float32)[None, :]
        outside = (xs < x0) | (xs > x1)
        rise_map = np.where(outside, rise_map * 0.78, rise_map)
    # Porcelain of an oil-filled bushing: warm at the flange, cooling towards the top.
    yb = scene.parts.get("flanges", [(0, 0, 0, h)])[0][1]
    bush = 0.75 * np.clip(1.0 - (yb - y) / max(1.0, yb), 0.25, 1.0)
    rise_map = np.where(scene.mat == sc.PORCELAIN, bush, rise_map)
    joule = 2.0 + 4.0 * spec.load_factor ** 2
    temps = amb + rise * rise_map
    temps = np.where(scene.mat == sc.COPPER, amb + joule + 0.3 * rise, temps)
    temps = np.where(scene.mat == sc.DARK, amb + 0.2 * rise, temps)
    eps = _EMISSIVITY[scene.mat]
    return (amb + eps * (temps - amb)).astype(np.float32)


def _hot_spot(temps: np.ndarray, scene: sc.Scene, rng: np.random.Generator,
              hot_spot: float, amb: float) -> None:
    h, w = temps.shape
    sites = list(scene.parts.get("terminals", []))
    if "bolts" in scene.parts and rng.random() < 0.3:
        sites = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in scene.parts["bolts"]]
    sx, sy = sites[int(rng.integers(0, len(sites)))][:2]
    peak = hot_spot + rng.uniform(25.0, 70.0)
    # A connection glowing over a few pixels even when the view is shrunk to 64 px.
    sigma = max(1.5, min(w, h) * rng.uniform(0.035, 0.06))
    r = int(3 * sigma) + 1
    xa, xb, ya, yb = max(0, int(sx) - r), min(w, int(sx) + r), max(0, int(sy) - r), \
        min(h, int(sy) + r)
    yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
    g = np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * sigma * sigma))
    solid = scene.mat[ya:yb, xa:xb] > 0
    blob = amb + (peak - amb) * g
    temps[ya:yb, xa:xb] = np.where(solid, np.maximum(temps[ya:yb, xa:xb], blob),
                                   temps[ya:yb, xa:xb])


def _scale_bar(img: Image.Image, lo: float, hi: float) -> None:
    w, h = img.size
    bw = max(4, w // 28)
    x1, x0 = w - 3, w - 3 - bw
    y0, y1 = int(h * 0.12), int(h * 0.88)
    ramp = IRONBOW[np.linspace(255, 0, max(1, y1 - y0)).astype(int)]
    bar = np.repeat(ramp[:, None, :], bw, axis=1)
    img.paste(Image.fromarray(bar), (x0, y0))
    d = ImageDraw.Draw(img)
    d.rectangle((x0 - 1, y0 - 1, x1, y1), outline=(255, 255, 255))
    if h >= 96:
        font = ImageFont.load_default(size=max(8, h // 14))
        d.text((x1, y0 - 2), f"{hi:.0f}", fill=(255, 255, 255), anchor="rb", font=font)
        d.text((x1, y1 + 2), f"{lo:.0f}°C", fill=(255, 255, 255), anchor="rt", font=font)


def render_infrared(spec: ImageSpec) -> Thermogram:
    """An infrared view of the spec with its temperature field."""
    w, h = spec.width, spec.height
    rng = np.random.default_rng([spec.seed, 0])
    rng_d = np.random.default_rng([spec.seed, 1])
    top_oil, hot_spot = spec.oil_temperatures()
    amb = spec.ambient_c
    horizon = int(h * rng.uniform(0.55, 0.9))
    sky = amb - rng.uniform(8.0, 30.0)  # a clear sky radiates cold
    ground = amb + rng.uniform(-2.0, 8.0)
    bg = np.empty((h, w), np.float32)
    bg[:horizon] = sky + (amb - 3.0 - sky) * (np.arange(horizon, dtype=np.float32)
                                             / max(1, horizon))[:, None]
    bg[horizon:] = ground
    light = float(rng.uniform(-1, 1))
    scene = sc.DRAW[spec.component](w, h, rng, light, None)
    temps = _object_temperatures(spec, scene, top_oil)
    m = homography(w, h, rng)
    span = float(rng.choice([60.0, 80.0, 100.0]))
    if spec.defect == "hot_spot":
        _hot_spot(temps, scene, rng_d, hot_spot, amb)
    alpha = warp(np.where(scene.mat > 0, 255, 0).astype(np.uint8), m).astype(np.float32) / 255
    field = bg * (1 - alpha) + warp(temps, m) * alpha
    rng_n = np.random.default_rng([spec.seed, 2])
    field = field + rng_n.standard_normal((h, w), np.float32) * rng_n.uniform(0.1, 0.4)
    lo = math.floor(amb) - 10.0
    # A manual range that keeps the normal unit on the scale; a bad connection may burn out.
    hi = lo + max(span, 10.0 * math.ceil((top_oil + 12.0 - lo) / 10.0))
    idx = np.clip((field - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    img = Image.fromarray(IRONBOW[idx]).filter(ImageFilter.GaussianBlur(0.7))
    _scale_bar(img, lo, hi)
    return Thermogram(np.asarray(img), field.astype(np.float32), lo, hi, top_oil, hot_spot)
