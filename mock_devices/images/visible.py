"""Visible-light rendering: substation yard background, coloured component, defect, camera.

The random streams of one image: ``[seed, 0]`` draws the scene (background, geometry,
colours, camera, lighting), ``[seed, 1]`` the defect and ``[seed, 2]`` the sensor noise, so
the defect changes nothing but its own pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mock_devices.images import scene as sc
from mock_devices.images.camera import homography, warp_image
from mock_devices.images.defects import PAINTERS, weathering
from mock_devices.images.spec import ImageSpec

_PORCELAIN = np.array([[0.45, 0.23, 0.12], [0.8, 0.8, 0.78], [0.3, 0.5, 0.46],
                       [0.55, 0.32, 0.18]], np.float32)
_PAINT = np.array([[0.6, 0.63, 0.62], [0.42, 0.5, 0.43], [0.72, 0.68, 0.58],
                   [0.78, 0.79, 0.8], [0.5, 0.55, 0.6]], np.float32)
_SKIES = (((0.35, 0.55, 0.85), (0.75, 0.85, 0.95)),  # clear
          ((0.62, 0.64, 0.67), (0.8, 0.81, 0.82)),  # overcast
          ((0.7, 0.66, 0.6), (0.9, 0.82, 0.7)))  # hazy evening


def _palette(rng: np.random.Generator) -> np.ndarray:
    pal = np.zeros((10, 3), np.float32)
    pal[sc.PORCELAIN] = _PORCELAIN[rng.integers(0, len(_PORCELAIN))]
    pal[sc.METAL] = (0.58, 0.6, 0.62)
    pal[sc.PAINT] = _PAINT[rng.integers(0, len(_PAINT))]
    pal[sc.DARK] = (0.1, 0.1, 0.11)
    pal[sc.COPPER] = (0.72, 0.45, 0.25)
    pal[sc.GLASS] = (0.14, 0.19, 0.24)
    pal[sc.PLATE] = (0.86, 0.86, 0.8) if rng.random() < 0.6 else (0.9, 0.75, 0.15)
    pal[sc.LAMP_RED] = (0.9, 0.15, 0.1)
    pal[sc.LAMP_GREEN] = (0.15, 0.8, 0.25)
    pal *= rng.uniform(0.92, 1.08, (10, 1)).astype(np.float32)
    return pal


def background(w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """Sky, gravel yard and distant gantries/wires (an RGBA image)."""
    top, low = (np.array(c, np.float32) for c in _SKIES[int(rng.integers(0, len(_SKIES)))])
    horizon = int(h * rng.uniform(0.55, 0.9))
    t = (np.arange(h, dtype=np.float32) / max(1, horizon))[:, None, None]
    img = np.broadcast_to(top + (low - top) * np.clip(t, 0, 1), (h, w, 3)).copy()
    ground = np.array([0.47, 0.45, 0.41], np.float32) * rng.uniform(0.75, 1.1)
    tex = np.asarray(Image.fromarray((rng.random((h // 4 + 1, w // 4 + 1)) * 255).astype(
        np.uint8)).resize((w, h), Image.Resampling.BILINEAR), np.float32)[..., None] / 255.0
    depth = np.clip((np.arange(h, dtype=np.float32) - horizon) / max(1, h - horizon),
                    0, 1)[:, None, None]
    img[horizon:] = (ground * (0.85 + 0.3 * tex) * (1.05 - 0.25 * depth))[horizon:]
    pil = Image.fromarray((img * 255).astype(np.uint8)).convert("RGBA")
    d = ImageDraw.Draw(pil)
    grey = tuple(int(v) for v in rng.integers(70, 120, 3))
    for _ in range(int(rng.integers(0, 4))):  # gantries on the horizon
        gx, gw = rng.uniform(0, w), rng.uniform(0.1, 0.3) * w
        gh = horizon * rng.uniform(0.2, 0.6)
        d.line([(gx, horizon), (gx, horizon - gh)], fill=grey, width=1)
        d.line([(gx + gw, horizon), (gx + gw, horizon - gh)], fill=grey, width=1)
        d.line([(gx - gw * 0.1, horizon - gh), (gx + gw * 1.1, horizon - gh)], fill=grey)
    for _ in range(int(rng.integers(0, 4))):  # overhead wires
        y0, y1 = rng.uniform(0, horizon * 0.7, 2)
        d.line([(0, y0), (w / 2, (y0 + y1) / 2 + h * 0.03), (w, y1)], fill=(40, 40, 45))
    return pil


_NOISE_SIDE = 512


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed tile of unit Gaussian noise; images take crops at random offsets."""
    return np.random.default_rng(20261207).standard_normal(
        (_NOISE_SIDE, _NOISE_SIDE, 3), np.float32)


def sensor_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian noise (H×W×3 float32): a crop of a fixed tile, fresh if larger."""
    if h > _NOISE_SIDE or w > _NOISE_SIDE:
        return rng.standard_normal((h, w, 3), np.float32)
    oy, ox = int(rng.integers(0, _NOISE_SIDE - h + 1)), int(rng.integers(0, _NOISE_SIDE - w + 1))
    flip = bool(rng.random() < 0.5)
    tile = _noise_bank()[oy:oy + h, ox:ox + w]
    return tile[::-1] if flip else tile


def _lighting_lut(contrast: float, bright: float, warm: float) -> list[int]:
    """Per-channel 256-entry table: contrast about mid-grey, brightness, colour temperature."""
    v = np.arange(256, dtype=np.float32) / 255.0
    out = []
    for gain in (1 + 0.08 * warm, 1.0, 1 - 0.1 * warm):
        out.extend(np.clip((((v - 0.5) * contrast + 0.5) * bright * gain) * 255, 0, 255)
                   .astype(np.uint8).tolist())
    return out


def render_visible(spec: ImageSpec) -> np.ndarray:
    """A visible-light photo of the spec (H×W×3 uint8)."""
    w, h = spec.width, spec.height
    rng = np.random.default_rng([spec.seed, 0])
    rng_d = np.random.default_rng([spec.seed, 1])
    bg = background(w, h, rng)
    light = float(rng.uniform(-1, 1))
    # Only parts an inspection photo shows are left out (a disc, a shed, a fin, a bushing,
    # a handle): missing[1] < 0.75 never picks a single bolt, a few pixels at 64 px.
    missing = ((float(rng_d.random()), 0.75 * float(rng_d.random()))
               if spec.defect == "missing_part" else None)
    # A third of the insulator strings are strain strings, drawn upright and turned.
    turned = spec.component == "insulator" and rng.random() < 0.33
    fw, fh = (h, w) if turned else (w, h)
    scene = sc.DRAW[spec.component](fw, fh, rng, light, missing)
    pal = _palette(rng)
    mottle = np.asarray(Image.fromarray((rng.random((fh // 6 + 1, fw // 6 + 1)) * 255).astype(
        np.uint8)).resize((fw, fh), Image.Resampling.BILINEAR), np.float32) / 255.0
    shade = scene.shade * (0.94 + 0.12 * mottle)
    obj = pal[scene.mat] * shade[..., None]
    glaze = (scene.mat == sc.PORCELAIN) | (scene.mat == sc.METAL)
    obj += (np.clip(shade - 1.18, 0, None) * 1.6 * glaze)[..., None]  # specular glint
    m = homography(w, h, rng)
    contrast, bright = rng.uniform(0.75, 1.2), rng.uniform(0.7, 1.2)
    warm = rng.uniform(-1, 1)
    blur = rng.uniform(0.3, 1.3) if rng.random() < 0.5 else 0.0
    weathering(obj, scene, rng)
    if spec.defect in PAINTERS:
        PAINTERS[spec.defect](obj, scene, rng_d, float(rng_d.uniform(0.3, 1.0)))
    mat = scene.mat
    if turned:
        obj, mat = obj.transpose(1, 0, 2), mat.T
    rgba = np.empty((h, w, 4), np.uint8)
    np.clip(obj * 255, 0, 255, out=obj)
    rgba[..., :3] = obj
    rgba[..., 3] = np.where(mat > 0, 255, 0)
    bg.alpha_composite(warp_image(Image.fromarray(rgba), m))
    out = bg.convert("RGB").point(_lighting_lut(contrast, bright, warm))
    if blur:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    rng_n = np.random.default_rng([spec.seed, 2])
    sigma = rng_n.uniform(1.0, 6.0)
    noisy = np.asarray(out, np.float32) + sensor_noise(h, w, rng_n) * np.float32(sigma)
    np.clip(noisy, 0, 255, out=noisy)
    return noisy.astype(np.uint8)
