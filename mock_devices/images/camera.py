"""The camera: a random homography (angle, scale, shear, perspective, position) and warps."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def homography(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Object frame → image frame: rotation, scale, shear, perspective tilt and offset."""
    theta = math.radians(float(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0)))
    scale = rng.uniform(0.72, 1.0)
    shear = rng.uniform(-0.08, 0.08)
    tilt = rng.uniform(-1.0, 1.0, 2) * 0.35 / max(w, h)
    shift = rng.uniform(-0.07, 0.07, 2) * (w, h)
    c, s = math.cos(theta), math.sin(theta)
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    linear = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array(
        [[scale, shear * scale, 0], [0, scale, 0], [0, 0, 1]])
    persp = np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1]])
    back = np.array([[1, 0, w / 2 + shift[0]], [0, 1, h / 2 + shift[1]], [0, 0, 1]])
    return back @ persp @ linear @ centre


def _coeffs(m: np.ndarray) -> tuple[float, ...]:
    # The adjugate of a 3×3 matrix: LAPACK's inv costs milliseconds of thread start-up.
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    inv = (e * i - f * h, c * h - b * i, b * f - c * e,
           f * g - d * i, a * i - c * g, c * d - a * f,
           d * h - e * g, b * g - a * h, a * e - b * d)
    return tuple(v / inv[8] for v in inv[:8])


def warp_image(im: Image.Image, m: np.ndarray) -> Image.Image:
    """Warp a Pillow image by ``m`` (bilinear; outside the source: zero)."""
    return im.transform(im.size, Image.Transform.PERSPECTIVE, _coeffs(m),
                        Image.Resampling.BILINEAR)


def warp(arr: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Warp an image array (uint8 L/RGB/RGBA or float32 single channel) by ``m``."""
    return np.asarray(warp_image(Image.fromarray(arr), m))
