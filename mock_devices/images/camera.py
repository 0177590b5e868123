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
    inv = np.linalg.inv(m)
    inv /= inv[2, 2]
    return tuple(float(v) for v in inv.flatten()[:8])


def warp(arr: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Warp an image array (uint8 L/RGB/RGBA or float32 single channel) by ``m``."""
    h, w = arr.shape[:2]
    im = Image.fromarray(arr)
    out = im.transform((w, h), Image.Transform.PERSPECTIVE, _coeffs(m),
                       Image.Resampling.BILINEAR)
    return np.asarray(out)
