"""Pure checks of an image import: the description file, each description row, each file.

Nothing here touches HDFS or Spark. A refused item gets one :class:`Refusal` with a reason
code from :data:`REASONS` and a sentence; a defect of the whole batch (a description file
without a required column, an unreadable one, an unsafe archive) raises
:class:`ImportBatchError` before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, UnidentifiedImageError

from lakehouse.contracts.images import (
    CAMERAS,
    DESCRIPTION_FIELDS,
    IMAGE_ASSET_TYPES,
    IMAGE_FORMATS,
    LABELS,
)
from lakehouse.time import parse_time_ms

REASONS: tuple[str, ...] = (
    "not_an_image", "truncated", "too_large", "too_many_pixels", "unsupported_format",
    "unknown_asset", "bad_camera", "bad_label", "bad_time", "missing_file", "no_description",
    "duplicate_in_batch", "upload_failed",
)
"""Reason codes of a refused file or description row (``upload_failed``: HDFS refused the
file; it is not in the index and the next import retries it)."""

EXTENSIONS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "TIFF": "tif", "BMP": "bmp",
                              "WEBP": "webp"}
"""File extension on HDFS of each accepted format (:data:`IMAGE_FORMATS`)."""

DESCRIPTION_NAMES: tuple[str, ...] = ("descriptions.csv", "descriptions.parquet")
"""Default description files at the top of an imported folder or archive."""

REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in DESCRIPTION_FIELDS if f.required)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in DESCRIPTION_FIELDS if not f.required)


class ImportBatchError(ValueError):
    """The batch as a whole cannot be imported (nothing is written)."""


@dataclass(frozen=True)
class Refusal:
    """Why an item was refused.

    Attributes:
        reason: A code of :data:`REASONS`.
        detail: One sentence for a person.

    """

    reason: str
    detail: str


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted file is.

    Attributes:
        image_id: SHA-256 of its bytes (hex).
        bytes: Size.
        format: Pillow's format name (one of :data:`IMAGE_FORMATS`).
        width: Width in pixels.
        height: Height in pixels.

    """

    image_id: str
    bytes: int
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        """Extension of its file on HDFS."""
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class Device:
    """What the device registry says of an asset (current version)."""

    device_type: str
    region_id: str | None
    substation_id: str | None


@dataclass(frozen=True)
class Description:
    """A checked description row.

    Attributes:
        asset_id: Device id.
        captured_ts: Capture time, epoch ms.
        camera: ``visible`` or ``infrared``.
        inspector: Who took it, or None.
        component: Part shown, or None.
        label: ``normal``, a defect kind, or None (unknown).

    """

    asset_id: str
    captured_ts: int
    camera: str
    inspector: str | None
    component: str | None
    label: str | None


def image_path(root: str, info: ImageInfo) -> str:
    """Content-addressed HDFS path: ``{root}/{sha[0:2]}/{sha}.{ext}``."""
    return f"{root.rstrip('/')}/{info.image_id[:2]}/{info.image_id}.{info.extension}"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (the image id)."""
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ description file
def read_descriptions(path: Path) -> pd.DataFrame:
    """The description table (CSV or Parquet), every value a string ("" when empty).

    Raises:
        ImportBatchError: Unreadable, not CSV/Parquet, or a required column is missing
            (named in the message); nothing of the batch is imported then.

    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ImportBatchError(f"description file {path}: expected .csv or .parquet")
    except ImportBatchError:
        raise
    except FileNotFoundError:
        raise ImportBatchError(f"description file {path} does not exist") from None
    except Exception as err:  # noqa: BLE001 - pandas/pyarrow raise many kinds; all mean "bad file"
        raise ImportBatchError(f"description file {path} cannot be read: {err}") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    check_columns(list(frame.columns), str(path))
    for name in OPTIONAL_COLUMNS:
        if name not in frame.columns:
            frame[name] = ""
    return frame[[f.name for f in DESCRIPTION_FIELDS]].map(_text).astype(object)


def check_columns(columns: list[str], where: str) -> None:
    """Raise unless every required description column is present.

    Raises:
        ImportBatchError: Naming the missing column(s) and the expected ones.

    """
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ImportBatchError(
            f"description file {where} lacks required column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)}; optional: "
            f"{', '.join(OPTIONAL_COLUMNS)})")


def _text(value: Any) -> str:
    """A cell as stripped text; missing values (None, NaN, NaT) are ""."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return ""
        ts = value if value.tzinfo else value.tz_localize("UTC")
        return str(ts.isoformat())
    return str(value).strip()


def normalise_name(name: str) -> str | None:
    """A description's ``file`` as a relative forward-slash path, or None when unsafe.

    Absolute paths and ``..`` components never name a file of the batch.
    """
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or name.startswith("/") or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def parse_captured(text: str) -> int:
    """Capture time in epoch ms: ISO-8601 (naive means UTC) or epoch milliseconds.

    Raises:
        ValueError: Neither.

    """
    if text.lstrip("-").isdigit():
        ms = int(text)
        if not -62_135_596_800_000 <= ms <= 253_402_300_799_999:  # years 1..9999
            raise ValueError(f"epoch ms {text} out of range")
        return ms
    return parse_time_ms(text)


def check_description(row: dict[str, str],
                      devices: dict[str, Device]) -> Description | Refusal:
    """Check one description row against the vocabularies and the device registry."""
    asset = row.get("asset_id", "")
    dev = devices.get(asset)
    if dev is None:
        return Refusal("unknown_asset", f"asset {asset!r} is not in the device registry"
                       if asset else "no asset_id")
    if dev.device_type not in IMAGE_ASSET_TYPES:
        return Refusal("unknown_asset", f"asset {asset!r} is a {dev.device_type}; images are "
                       f"kept for {', '.join(IMAGE_ASSET_TYPES)}")
    camera = row.get("camera", "").lower()
    if camera not in CAMERAS:
        return Refusal("bad_camera", f"camera {row.get('camera', '')!r} is not one of "
                       f"{', '.join(CAMERAS)}")
    label = row.get("label", "").lower() or None
    if label is not None and label not in LABELS:
        return Refusal("bad_label", f"label {row.get('label')!r} is not one of "
                       f"{', '.join(LABELS)} (or empty)")
    try:
        ts = parse_captured(row.get("captured_ts", ""))
    except ValueError as err:
        return Refusal("bad_time", f"captured_ts {row.get('captured_ts', '')!r}: {err}")
    return Description(asset, ts, camera, row.get("inspector") or None,
                       row.get("component") or None, label)


# ------------------------------------------------------------------------- the file
def inspect_image(data: bytes, max_bytes: int, max_pixels: int) -> ImageInfo | Refusal:
    """Hash and verify one file's bytes.

    Pillow identifies the format, ``verify()`` checks the file's structure (PNG chunk
    checksums, …) and a full decode catches a truncated image; the pixel count is
    checked from the header, before decoding (a decompression bomb is never expanded).
    """
    if len(data) > max_bytes:
        return Refusal("too_large", f"{len(data)} bytes > {max_bytes} (images.max_bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = str(img.format), img.size
        except UnidentifiedImageError:
            return Refusal("not_an_image", "not an image file Pillow can identify")
        except Image.DecompressionBombError as err:
            return Refusal("too_many_pixels", str(err))
        except Exception as err:  # noqa: BLE001 - a damaged header raises anything
            return Refusal("truncated", f"unreadable image header: {err}")
        if fmt not in IMAGE_FORMATS:
            return Refusal("unsupported_format", f"{fmt} is not one of "
                           f"{', '.join(IMAGE_FORMATS)}")
        if width * height > max_pixels:
            return Refusal("too_many_pixels", f"{width}×{height} = {width * height} pixels > "
                           f"{max_pixels} (images.max_pixels)")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
        except Exception as err:  # noqa: BLE001 - truncated/corrupt data raises OSError, SyntaxError, ...
            return Refusal("truncated", f"damaged or truncated {fmt}: {err}")
    return ImageInfo(sha256(data), len(data), fmt, width, height)
