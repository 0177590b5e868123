"""Small synthetic image sets for the image-model tests (until real generated batches).

Normal images: a smooth colour gradient with horizontal stripes (equipment-like
structure) and sensor noise. Defect images: the same with a dark blotch or a bright
crack-like line drawn on it. Written as PNG files plus a ``descriptions.csv`` with the
columns of ``DESCRIPTION_FIELDS`` (the layout of ``gridlake simulate images``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lakehouse.contracts.images import DESCRIPTION_FIELDS


def synthetic_image(rng: np.random.Generator, defect: bool, size: int = 48) -> Image.Image:
    """One RGB image, with a drawn defect when ``defect``."""
    base = rng.uniform(0.3, 0.7, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    tilt = rng.uniform(-0.15, 0.15, 3)
    img = base[None, None, :] + tilt[None, None, :] * (yy + xx)[..., None]
    period = rng.uniform(6, 10)
    img += 0.08 * np.sin(2 * np.pi * (yy * size) / period)[..., None]
    img += rng.normal(0, 0.02, img.shape)
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    if defect:
        draw = ImageDraw.Draw(pil)
        r = int(rng.integers(size // 8, size // 4))
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        if rng.random() < 0.5:
            draw.ellipse((cx - r, cy - r // 2, cx + r, cy + r // 2), fill=(40, 25, 15))
        else:
            draw.line((cx - r, cy - r, cx + r, cy + r), fill=(245, 245, 230), width=3)
    return pil


def write_set(folder: Path, n: int, defect_ratio: float = 0.5, seed: int = 0,
              size: int = 48) -> Path:
    """``n`` images (``defect_ratio`` of them defective) and ``descriptions.csv``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    rows = []
    n_def = int(round(n * defect_ratio))
    for i in range(n):
        defect = i < n_def
        name = f"img/{i:04d}.png"
        synthetic_image(rng, defect, size).save(folder / name)
        rows.append({"file": name, "asset_id": "TX-00001",
                     "captured_ts": f"2024-06-01T{i % 24:02d}:00:00Z", "camera": "visible",
                     "inspector": "tester", "component": "bushing",
                     "label": "crack" if defect else "normal"})
    desc = folder / "descriptions.csv"
    with desc.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fd.name for fd in DESCRIPTION_FIELDS])
        w.writeheader()
        w.writerows(rows)
    return desc
