"""Image sets for the image models: a folder with its description file, or the lake.

Both sources end in the same decode path (:func:`decode_image`): Pillow opens the bytes,
converts to RGB and resizes *plainly* (no aspect-preserving padding: inspection photos
are framed on the equipment and padding bars would be structure the unsupervised model
has to learn) to ``size × size`` with bilinear filtering. Arrays are ``uint8`` of shape
``(N, size, size, 3)``; the models take them as floats in ``[0, 1]`` (:func:`to_tensor`).

Labels: ``normal`` → 0, any defect kind → 1, empty → unknown (-1; unknown images are
left out of the classifier's training and of evaluations; the autoencoder presumes them
normal). A file that cannot be read or decoded is reported (:class:`SkippedItem`) and
skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from jobs.common.ddl import sql_string
from lakehouse.contracts.images import DEFECT_KINDS, DESCRIPTION_FIELDS, NORMAL
from lakehouse.contracts.tables import ODS_EQUIPMENT_IMAGE
from ml.data.lake_source import LakeReadError, load_table

logger = logging.getLogger(__name__)

UNKNOWN = -1
RESIZE = "plain-bilinear"
"""How images are resized (stored with every model: inference must do the same)."""

#: index columns carried along with every lake image (copied into ads_image_anomaly)
INDEX_COLUMNS: tuple[str, ...] = ("image_id", "path", "asset_id", "asset_type", "region_id",
                                  "substation_id", "captured_ts", "camera", "label",
                                  "import_batch")


class ImageDataError(ValueError):
    """An image set cannot be read at all (no description file, missing columns, empty)."""


class ImageDecodeError(ValueError):
    """One image cannot be used; the message says why (not an image, truncated, too large)."""


@dataclass(frozen=True)
class SkippedItem:
    """An image left out of a set, and why."""

    item: str
    reason: str


@dataclass
class ImageSet:
    """Decoded images with their labels and lineage.

    Attributes:
        images: ``(N, size, size, 3)`` uint8.
        labels: ``(N,)`` int: 0 normal, 1 defect, -1 unknown.
        keys: Item names (relative file path or lake image id).
        rows: Per-item description (asset, camera, label text, ... as read).
        lineage: Where the set came from (stored with trained models).
        skipped: Items that could not be used.

    """

    images: np.ndarray
    labels: np.ndarray
    keys: list[str]
    rows: list[dict[str, Any]]
    lineage: dict[str, Any]
    skipped: list[SkippedItem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray) -> ImageSet:
        """The items at ``index`` (lineage shared, skipped list not carried)."""
        idx = [int(i) for i in index]
        return ImageSet(self.images[idx], self.labels[idx], [self.keys[i] for i in idx],
                        [self.rows[i] for i in idx], self.lineage)


def label_of(text: Any) -> int:
    """0 for ``normal``, 1 for a defect kind, -1 for empty/unknown text."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return UNKNOWN
    t = str(text).strip().lower()
    if t == NORMAL:
        return 0
    if t in DEFECT_KINDS or (t and t not in ("", "unknown", "none", "nan")):
        return 1  # a defect kind this release does not list is still a defect
    return UNKNOWN


def decode_image(data: bytes, size: int, max_pixels: int | None = None) -> np.ndarray:
    """Bytes of an image file to a ``(size, size, 3)`` uint8 RGB array.

    Raises:
        ImageDecodeError: Not an image, truncated, or more than ``max_pixels`` pixels.

    """
    if not data:
        raise ImageDecodeError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageDecodeError(f"too large: {w}×{h} pixels (limit {max_pixels})")
                img.load()
                rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8).copy()
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image (unknown format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageDecodeError(f"too large: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        # Pillow reports a cut-off file as OSError("image file is truncated ...")
        raise ImageDecodeError(f"truncated or corrupt image ({err})") from None


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 to ``(N, 3, S, S)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def read_descriptions(path: Path) -> pd.DataFrame:
    """A description file (CSV or Parquet) with the columns of ``DESCRIPTION_FIELDS``.

    Raises:
        ImageDataError: Unreadable file or required columns missing.

    """
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise ImageDataError(f"{path}: cannot read the description file ({err})") from err
    missing = [f.name for f in DESCRIPTION_FIELDS if f.required and f.name not in frame]
    if missing:
        raise ImageDataError(f"{path}: description file lacks column(s) {', '.join(missing)}")
    return frame


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _decode_all(items: Sequence[tuple[str, Callable[[], bytes]]], size: int,
                max_pixels: int | None, workers: int,
                advance: Callable[[str], None]) -> tuple[list[int], list[np.ndarray],
                                                         list[SkippedItem]]:
    """Read and decode every item (threads: file and HDFS reads wait on I/O)."""

    def one(item: tuple[str, Callable[[], bytes]]) -> np.ndarray | SkippedItem:
        name, read = item
        try:
            return decode_image(read(), size, max_pixels)
        except ImageDecodeError as err:
            return SkippedItem(name, str(err))
        except Exception as err:  # an unreadable file is one bad item, not a failed run
            return SkippedItem(name, f"cannot read: {err}")

    ok: list[int] = []
    arrays: list[np.ndarray] = []
    skipped: list[SkippedItem] = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, res in enumerate(pool.map(one, items)):
            if isinstance(res, SkippedItem):
                skipped.append(res)
                logger.warning("skipping %s: %s", res.item, res.reason)
            else:
                ok.append(i)
                arrays.append(res)
            advance(items[i][0])
    return ok, arrays, skipped


def _finish(rows: list[dict[str, Any]], keys: list[str], ok: list[int],
            arrays: list[np.ndarray], skipped: list[SkippedItem], size: int,
            lineage: dict[str, Any], allow_empty: bool = False) -> ImageSet:
    if not ok and not allow_empty:
        reasons = "; ".join(f"{s.item}: {s.reason}" for s in skipped[:3])
        raise ImageDataError(f"no usable image in {lineage.get('path') or 'the selection'}"
                             + (f" ({reasons})" if reasons else ""))
    images = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)
    kept = [rows[i] for i in ok]
    labels = np.array([label_of(r.get("label")) for r in kept], dtype=np.int64)
    lineage = {**lineage, "images": len(ok), "skipped": len(skipped),
               "normal": int((labels == 0).sum()), "defect": int((labels == 1).sum()),
               "unlabelled": int((labels == UNKNOWN).sum())}
    return ImageSet(images, labels, [keys[i] for i in ok], kept, lineage, skipped)


def load_folder(path: Path, size: int, max_pixels: int | None = None, workers: int = 4,
                advance: Callable[[str], None] = lambda _m: None) -> ImageSet:
    """The images of a description file (or of a folder with ``descriptions.csv``/``.parquet``).

    Raises:
        ImageDataError: No description file, missing columns, or no usable image.

    """
    if path.is_dir():
        found = [path / n for n in ("descriptions.csv", "descriptions.parquet")
                 if (path / n).is_file()]
        if not found:
            raise ImageDataError(f"{path}: no descriptions.csv or descriptions.parquet")
        desc = found[0]
    else:
        desc = path
    frame = read_descriptions(desc)
    root = desc.parent.resolve()
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    keys = [str(r["file"]) for r in rows]

    def reader(rel: str) -> Callable[[], bytes]:
        def read() -> bytes:
            target = (root / rel).resolve()
            if not target.is_relative_to(root):
                raise OSError("path leaves the folder")
            return target.read_bytes()
        return read

    items = [(k, reader(k)) for k in keys]
    ok, arrays, skipped = _decode_all(items, size, max_pixels, workers, advance)
    lineage = {"source": "folder", "path": str(desc), "sha256": _sha256_file(desc)}
    return _finish(rows, keys, ok, arrays, skipped, size, lineage)


def lake_index(spark: Any, settings: GridLakeSettings, batches: Iterable[str] = (),
               since_ms: int | None = None, image_ids: Iterable[str] = ()) -> pd.DataFrame:
    """Rows of ``ods_equipment_image`` (``INDEX_COLUMNS``; ``captured_ts`` as epoch ms).

    Args:
        spark: Spark session.
        settings: Lake settings.
        batches: Only these import batches (empty: all).
        since_ms: Only images imported at or after this time (epoch ms).
        image_ids: Only these images (empty: all).

    Raises:
        ml.data.lake_source.LakeReadError: The table cannot be read.

    """
    df = load_table(spark, settings, ODS_EQUIPMENT_IMAGE)
    batches, ids = list(batches), list(image_ids)
    if batches:
        df = df.where(f"`import_batch` IN ({', '.join(sql_string(b) for b in batches)})")
    if ids:
        df = df.where(f"`image_id` IN ({', '.join(sql_string(i) for i in ids)})")
    if since_ms is not None:
        df = df.where(f"`imported_ts` >= timestamp_millis(CAST({int(since_ms)} AS BIGINT))")
    df = df.selectExpr(*[f"CAST(unix_millis(`{c}`) AS BIGINT) AS `{c}`"
                         if c == "captured_ts" else f"`{c}`" for c in INDEX_COLUMNS])
    try:
        frame = df.toPandas()
    except Exception as err:  # py4j wraps the JVM's exception
        raise LakeReadError(f"cannot read {ODS_EQUIPMENT_IMAGE.name}: "
                            f"{str(err).strip().splitlines()[0] if str(err) else err}") from err
    return frame.sort_values("image_id", kind="stable").reset_index(drop=True)


def load_lake_rows(settings: GridLakeSettings, index: pd.DataFrame, size: int,
                   advance: Callable[[str], None] = lambda _m: None,
                   lineage: dict[str, Any] | None = None) -> ImageSet:
    """Decode the images of index rows (files read from HDFS at their ``path``).

    Unreadable files are in the result's ``skipped`` (the set may be empty).
    """
    rows = [{str(k): v for k, v in r.items()}
            for r in index.astype(object).where(index.notna(), None).to_dict("records")]
    keys = [str(r["image_id"]) for r in rows]
    ids_sha = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    with WebHdfs.from_settings(settings, timeout=60.0) as fs:
        items = [(str(r["image_id"]), (lambda p=str(r["path"]): fs.read(p))) for r in rows]
        ok, arrays, skipped = _decode_all(items, size, settings.images.max_pixels,
                                          settings.images.upload_workers, advance)
    base = {"source": "lake", "table": ODS_EQUIPMENT_IMAGE.name, "image_ids_sha256": ids_sha}
    return _finish(rows, keys, ok, arrays, skipped, size, {**base, **(lineage or {})},
                   allow_empty=True)


def split_indices(labels: np.ndarray, seed: int,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded train/validation/test indices (8:1:1 by default).

    Every class is shuffled and cut at the same fractions, so each split keeps the set's
    class ratio (a class of fewer than 10 items still gets at least one item into
    validation and test when it has 3 or more).
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        n_val = int(round(n * fractions[1]))
        n_test = int(round(n * fractions[2]))
        if n >= 3:
            n_val, n_test = max(1, n_val), max(1, n_test)
        n_train = n - n_val - n_test
        parts[0] += idx[:n_train].tolist()
        parts[1] += idx[n_train:n_train + n_val].tolist()
        parts[2] += idx[n_train + n_val:].tolist()
    return tuple(np.sort(np.array(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]


def augment(batch: torch.Tensor, generator: torch.Generator,
            brightness: float = 0.1) -> torch.Tensor:
    """Random horizontal flips and brightness jitter (±``brightness``) of ``(B, 3, S, S)``."""
    b = batch.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    gain = 1.0 + (torch.rand(b, generator=generator) * 2 - 1) * brightness
    return (out * gain[:, None, None, None]).clamp(0.0, 1.0)
