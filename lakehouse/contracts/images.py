"""Equipment images (issue 21): the description file of an import and the shared vocabularies.

A batch of inspection photos arrives as image files (a folder or an archive) plus a
description table (CSV or Parquet) with one row per file. The columns are declared here
once; the importer checks them, the simulator's image generator writes them, and the lake
index table (``ods_equipment_image`` in :mod:`lakehouse.contracts.tables`) carries them.
"""

from __future__ import annotations

from lakehouse.contracts.schema import Field, FieldType

S, TS = FieldType.STRING, FieldType.TIMESTAMP

CAMERAS: tuple[str, ...] = ("visible", "infrared")
"""Camera kinds: a visible-light photo or a thermal (infrared) image."""

COMPONENTS: tuple[str, ...] = ("insulator", "bushing", "transformer_tank", "switchgear")
"""Equipment shown in an image (what the generator draws; free text is allowed on import)."""

DEFECT_KINDS: tuple[str, ...] = (
    "crack", "flashover", "rust", "oil_leak", "missing_part", "hot_spot",
)
"""Labelled defects. ``hot_spot`` is the infrared one."""

NORMAL = "normal"
"""Label of an image without a defect."""

LABELS: tuple[str, ...] = (NORMAL, *DEFECT_KINDS)
"""Every allowed value of ``label`` (empty: not known)."""

IMAGE_ASSET_TYPES: tuple[str, ...] = ("transformer", "substation", "feeder", "ess")
"""Device types an image may show (the device registry's ``device_type``)."""

IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")
"""Image formats accepted by the import (as Pillow names them)."""

DESCRIPTION_FIELDS: tuple[Field, ...] = (
    Field("file", S, description="Path of the image inside the imported folder or archive "
          "(forward slashes)."),
    Field("asset_id", S, description="Device id of the equipment shown (device registry)."),
    Field("captured_ts", TS, "ms", "When the photo was taken (ISO-8601 or epoch ms)."),
    Field("camera", S, description="visible or infrared."),
    Field("inspector", S, description="Who took it.", required=False),
    Field("component", S, description="Equipment part shown, e.g. insulator.",
          required=False),
    Field("label", S, description="normal or a defect kind when known; empty otherwise.",
          required=False),
)
"""Columns of an import's description file (``required=False``: the column may be absent)."""
