"""Sets of generated images: labels, cameras, assets and times; the folder an import reads.

A batch is a folder of image files in sub-folders (``{camera}/{date}/{asset}_{n}.png``,
some JPEG) and ``descriptions.csv`` at the top with exactly the columns of
:data:`~lakehouse.contracts.images.DESCRIPTION_FIELDS`. Label and camera counts are exact
quotas (rounded), shuffled with the seed: the ``balanced`` set is half normal, the
``imbalanced`` one has 9 % defects like the reference's imbalanced set, and a fifth of the
images are infrared. Visible defects are spread evenly over their kinds.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path

import numpy as np
from PIL import Image

from lakehouse.contracts.images import DESCRIPTION_FIELDS, NORMAL
from lakehouse.time import DAY_MS, format_time_ms, to_ms
from mock_devices.config import FleetConfig
from mock_devices.images.infrared import render_infrared
from mock_devices.images.spec import INFRARED_COMPONENTS, VISIBLE_DEFECTS, ImageSpec
from mock_devices.images.visible import render_visible
from mock_devices.topology import build_topology

logger = logging.getLogger(__name__)

SETS: dict[str, float] = {"balanced": 0.5, "imbalanced": 0.09}
"""Share of defective images of each set."""

INSPECTORS: tuple[str, ...] = ("L. Chen", "M. Okafor", "S. Novak", "R. Patel", "A. Moreau",
                               "drone-UAV-03")
"""Who takes the photos."""

COLUMNS: tuple[str, ...] = tuple(f.name for f in DESCRIPTION_FIELDS)
"""Columns of ``descriptions.csv``, in order."""

DESCRIPTIONS = "descriptions.csv"
"""Name of the description file at the top of a batch folder."""

ARCHIVES: dict[str, str] = {"zip": "zip", "tar.gz": "gztar"}
"""Archive formats (``--archive``) and their :func:`shutil.make_archive` names."""

_ASSET_TYPE = {"insulator": "substation", "switchgear": "substation",
               "bushing": "transformer", "transformer_tank": "transformer"}
_VIS_COMPONENTS = tuple(VISIBLE_DEFECTS)


def _defect_component_mix() -> np.ndarray:
    """Share of each component among defective visible images (kinds even, fits uniform)."""
    kinds = {d for ds in VISIBLE_DEFECTS.values() for d in ds}
    mix = np.zeros(len(_VIS_COMPONENTS))
    for d in kinds:
        fits = [i for i, c in enumerate(_VIS_COMPONENTS) if d in VISIBLE_DEFECTS[c]]
        mix[fits] += 1.0 / len(fits)
    return mix / mix.sum()


_NORMAL_MIX = _defect_component_mix()


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch: what to draw and its description row."""

    spec: ImageSpec
    row: dict[str, str]
    fmt: str


def render(spec: ImageSpec) -> np.ndarray:
    """The image of a spec (H×W×3 uint8): a visible photo or an infrared thermogram."""
    if spec.camera == "infrared":
        return render_infrared(spec).rgb
    return render_visible(spec)


def _size(rng: np.random.Generator, camera: str, lo: int, hi: int) -> tuple[int, int]:
    long = int(rng.integers(lo, hi + 1))
    if camera == "infrared":  # thermal cameras have 4:3 sensors
        return (long, long * 3 // 4) if rng.random() < 0.8 else (long * 3 // 4, long)
    aspect = float(rng.choice([1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3, 1.0]))
    return (long, max(lo * 3 // 4, int(long / aspect))) if aspect >= 1 else (
        max(lo * 3 // 4, int(long * aspect)), long)


def plan(count: int, *, kind: str = "balanced", seed: int = 0,
         config: FleetConfig | None = None, until: datetime | None = None, days: int = 14,
         infrared_share: float = 0.2, jpeg_share: float = 0.15,
         size: tuple[int, int] = (96, 320)) -> list[BatchItem]:
    """Decide every image of a batch (nothing is drawn yet).

    Args:
        count: Number of images.
        kind: ``balanced`` (half defective) or ``imbalanced`` (9 % defective).
        seed: Seed of every choice; the same arguments give the same batch.
        config: Fleet whose device registry gives the asset ids (default: the default
            fleet, the one ``gridlake simulate run`` publishes).
        until: End of the capture period (default: the start of today, UTC).
        days: Length of the capture period.
        infrared_share: Share of infrared views.
        jpeg_share: Share of images written as JPEG (the rest PNG).
        size: Smallest and largest long side in pixels.

    Raises:
        ValueError: On an unknown set, a count below 1 or shares outside 0..1.

    """
    if kind not in SETS:
        raise ValueError(f"unknown set {kind!r}; choose from {', '.join(SETS)}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not (0 <= infrared_share <= 1 and 0 <= jpeg_share <= 1):
        raise ValueError("infrared_share and jpeg_share must be within 0..1")
    if not 16 <= size[0] <= size[1] <= 4096:
        raise ValueError(f"size range {size} must be increasing within 16..4096")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    topo = build_topology(config or FleetConfig())
    tx_ids, subs = topo.tx_ids, topo.substation_ids
    loss_ratio = topo.tx_pk_kw / topo.tx_p0_kw
    end = until or datetime.now(UTC).replace(hour=0, minute=0, second=0,
                                                      microsecond=0)
    end_ms = to_ms(end)
    rng = np.random.default_rng([seed, 7])
    n_ir = round(count * infrared_share)
    cameras = np.array(["infrared"] * n_ir + ["visible"] * (count - n_ir))
    labels = np.empty(count, dtype=object)
    share = SETS[kind]
    vis_kinds = sorted({d for ds in VISIBLE_DEFECTS.values() for d in ds})
    for cam in ("visible", "infrared"):
        idx = np.flatnonzero(cameras == cam)
        n_def = round(len(idx) * share)
        kinds = (["hot_spot"] * n_def if cam == "infrared"
                 else [vis_kinds[i % len(vis_kinds)] for i in range(n_def)])
        lab = np.array(kinds + [NORMAL] * (len(idx) - n_def), dtype=object)
        labels[idx] = lab[rng.permutation(len(idx))]
    order = rng.permutation(count)
    items: list[BatchItem] = []
    for n, i in enumerate(order):
        cam, label = str(cameras[i]), str(labels[i])
        defect = None if label == NORMAL else label
        if cam == "infrared":
            comp = str(rng.choice(INFRARED_COMPONENTS))
        elif defect is None:  # the defective images' mix: the component tells nothing
            comp = str(rng.choice(_VIS_COMPONENTS, p=_NORMAL_MIX))
        else:
            comp = str(rng.choice([c for c in _VIS_COMPONENTS if defect in VISIBLE_DEFECTS[c]]))
        w, h = _size(rng, cam, *size)
        if _ASSET_TYPE[comp] == "transformer":
            t = int(rng.integers(0, len(tx_ids)))
            asset, r = tx_ids[t], float(loss_ratio[t])
        else:
            asset, r = subs[int(rng.integers(0, len(subs)))], 5.0
        spec = ImageSpec(seed=int(rng.integers(0, 2**62)), camera=cam, component=comp,
                         defect=defect, width=w, height=h,
                         load_factor=round(float(rng.uniform(0.15, 1.3)), 3),
                         ambient_c=round(float(rng.uniform(-5.0, 38.0)), 1), loss_ratio=r)
        ts = end_ms - int(rng.integers(1, days * DAY_MS // 1000)) * 1000
        fmt = "JPEG" if rng.random() < jpeg_share else "PNG"
        stamp = format_time_ms(ts)
        name = f"{cam}/{stamp[:10]}/{asset}_{n:06d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        row = {"file": name, "asset_id": asset, "captured_ts": stamp, "camera": cam,
               "inspector": INSPECTORS[int(rng.integers(0, len(INSPECTORS)))],
               "component": comp, "label": label}
        items.append(BatchItem(spec, row, fmt))
    return items


def iter_batch(count: int, **kwargs: object) -> Iterator[tuple[dict[str, str], np.ndarray]]:
    """Yield ``(description row, image)`` of every image of :func:`plan` (in memory)."""
    for item in plan(count, **kwargs):  # type: ignore[arg-type]
        yield item.row, render(item.spec)


def _write(item: BatchItem, out: Path) -> None:
    path = out / item.row["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(render(item.spec))
    if item.fmt == "JPEG":
        im.save(path, "JPEG", quality=90)
    else:  # fast compression: the noise makes PNGs big whatever the level
        im.save(path, "PNG", compress_level=1)


def generate_batch(out_dir: Path | str, count: int, *, kind: str = "balanced", seed: int = 0,
                   workers: int = 1, on_progress: Callable[[int, int], None] | None = None,
                   **kwargs: object) -> Path:
    """Write a batch folder (images and ``descriptions.csv``); return the description path.

    Args:
        out_dir: Folder to write (created; existing files of the same names are replaced).
        count: Number of images.
        kind: ``balanced`` or ``imbalanced``.
        seed: Seed; the same arguments write the same files.
        workers: Processes drawing in parallel (each image is pure in its spec, so the files
            are the same for any number).
        on_progress: Called with (images written, total) after every image.
        **kwargs: More :func:`plan` arguments (config, until, days, shares, size).

    Raises:
        ValueError: On bad :func:`plan` arguments or ``workers`` below 1.

    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    items = plan(count, kind=kind, seed=seed, **kwargs)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    if workers == 1:
        for n, item in enumerate(items, 1):
            _write(item, out)
            if on_progress:
                on_progress(n, count)
    else:
        with ProcessPoolExecutor(workers) as pool:
            chunk = max(1, min(64, count // (workers * 8)))
            for n, _ in enumerate(pool.map(_write, items, repeat(out), chunksize=chunk), 1):
                if on_progress:
                    on_progress(n, count)
    desc = out / DESCRIPTIONS
    with desc.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(item.row for item in items)
    logger.info("wrote %d images (%s, seed %d) to %s", count, kind, seed, out)
    return desc


def archive_batch(folder: Path | str, fmt: str = "zip") -> Path:
    """Pack a batch folder into ``<folder>.zip`` or ``<folder>.tar.gz`` beside it.

    The archive's entries are relative to the folder (``descriptions.csv`` at the top).
    """
    if fmt not in ARCHIVES:
        raise ValueError(f"unknown archive format {fmt!r}; choose from {', '.join(ARCHIVES)}")
    folder = Path(folder)
    return Path(shutil.make_archive(str(folder), ARCHIVES[fmt], root_dir=folder))
