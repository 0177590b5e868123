"""Image batches made here (Pillow/numpy): good files of every format and bad ones."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

FIELDS = ("file", "asset_id", "captured_ts", "camera", "inspector", "component", "label")


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small noisy picture (distinct for each seed)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_batch(folder: Path, n: int, assets: list[str], *, seed: int = 0,
                extra_rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """``n`` good images in sub-folders (every 5th a JPEG) and ``descriptions.csv``."""
    rows = []
    for i in range(n):
        fmt = "JPEG" if i % 5 == 4 else "PNG"
        name = f"{'visible' if i % 2 else 'infrared'}/img_{seed}_{i:05d}." \
               f"{'jpg' if fmt == 'JPEG' else 'png'}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(image_bytes(seed * 100_000 + i, fmt))
        rows.append({"file": name, "asset_id": assets[i % len(assets)],
                     "captured_ts": f"2026-03-0{1 + i % 3}T10:{i % 60:02d}:00Z",
                     "camera": "infrared" if i % 2 == 0 else "visible",
                     "inspector": "ann", "component": "bushing",
                     "label": "normal" if i % 3 else "crack"})
    rows += extra_rows or []
    write_descriptions(folder / "descriptions.csv", rows)
    return rows


def write_descriptions(path: Path, rows: list[dict[str, str]],
                       fields: tuple[str, ...] = FIELDS) -> None:
    """A description CSV with ``fields`` as columns."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
