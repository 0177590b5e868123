"""Batch scoring of lake images (``gridlake ml images score``) into ``ads_image_anomaly``.

One run takes an image model (given, or the active one of its kind:
``settings.images.active_classifier`` / ``active_autoencoder``, else the newest), reads
the index rows of ``ods_equipment_image`` (optionally only some import batches, or those
imported since a time), leaves out the images that model already scored (rows of
``ads_image_anomaly`` with its id), reads the remaining files from HDFS, scores them and
upserts one row per image (asset, region and capture columns copied from the index row)
through Spark with the lake's Hudi writer options (:func:`ml.data.lake_source.upsert_rows`,
as :mod:`ml.lake_scoring` writes). Rows are keyed by image and model, so a rerun (or
``rescore``) replaces them. A file that cannot be read or decoded is reported and
skipped; nothing is written for it, so the next run tries it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infra.lake import WebHdfs, lake_path, read_table_config
from infra.settings import GridLakeSettings
from infra.spark import spark_scope
from jobs.common.ddl import sql_string
from lakehouse.contracts.tables import ADS_IMAGE_ANOMALY
from lakehouse.time import dt_of
from ml.data.lake_source import load_table, upsert_rows
from ml.images.data import SkippedItem, lake_index, load_lake_rows
from ml.images.inference import (
    LoadedImageModel,
    active_image_model_id,
    load_image_model,
)
from ml.progress import progress_bar
from ml.registry import IMAGE_CLASSIFIER, ModelRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageScoreRequest:
    """What to score.

    Attributes:
        model_id: Image model (``None``: the active one of ``kind``).
        kind: Kind of the active model when no id is given.
        batches: Only images of these import batches (empty: all).
        since_ms: Only images imported at or after this time (epoch ms).
        rescore: Score again images the model already scored.
        write: Write the rows (``False``: score and report only).

    """

    model_id: str | None = None
    kind: str = IMAGE_CLASSIFIER
    batches: tuple[str, ...] = ()
    since_ms: int | None = None
    rescore: bool = False
    write: bool = True


@dataclass
class ImageScoreResult:
    """What a run read, scored and wrote."""

    model_id: str
    model_kind: str
    threshold: float
    candidates: int = 0
    already_scored: int = 0
    scored: int = 0
    defects: int = 0
    rows_written: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)
    read_s: float = 0.0
    score_s: float = 0.0
    write_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "model_id": self.model_id, "model_kind": self.model_kind,
            "threshold": self.threshold, "candidates": self.candidates,
            "already_scored": self.already_scored, "scored": self.scored,
            "defects": self.defects, "rows_written": self.rows_written,
            "skipped": [{"image_id": s.item, "reason": s.reason} for s in self.skipped],
            "read_s": round(self.read_s, 3), "score_s": round(self.score_s, 3),
            "write_s": round(self.write_s, 3),
            "images_per_s": round(self.scored / self.score_s, 1) if self.score_s else None,
        }


def result_frame(loaded: LoadedImageModel, rows: list[dict[str, Any]], scores: Any,
                 updated_ms: int) -> pd.DataFrame:
    """Rows of ``ads_image_anomaly`` (timestamps as epoch ms) for scored index rows."""
    th = loaded.threshold
    out = [{
        "image_id": r["image_id"], "model_id": loaded.model_id,
        "asset_id": r.get("asset_id"), "asset_type": r.get("asset_type"),
        "region_id": r.get("region_id"), "substation_id": r.get("substation_id"),
        "captured_ts": r.get("captured_ts"), "camera": r.get("camera"),
        "model_kind": loaded.metadata.kind, "score": float(s), "threshold": th,
        "defect": bool(s >= th), "updated_ts": updated_ms,
        "dt": dt_of(int(r["captured_ts"])) if r.get("captured_ts") is not None
        else dt_of(updated_ms),
    } for r, s in zip(rows, scores, strict=True)]
    return pd.DataFrame(out, columns=ADS_IMAGE_ANOMALY.field_names)


def _scored_ids(spark: Any, settings: GridLakeSettings, model_id: str) -> set[str]:
    with WebHdfs.from_settings(settings) as fs:
        if read_table_config(fs, lake_path(settings, ADS_IMAGE_ANOMALY.layer,
                                           ADS_IMAGE_ANOMALY.name)) is None:
            return set()
    df = load_table(spark, settings, ADS_IMAGE_ANOMALY).where(
        f"`model_id` = {sql_string(model_id)}").select("image_id")
    return {str(r[0]) for r in df.collect()}


def run_image_scoring(settings: GridLakeSettings, request: ImageScoreRequest,
                      registry: ModelRegistry | None = None, spark: Any = None,
                      progress: bool = False) -> ImageScoreResult:
    """Score the lake's not yet scored images with an image model; write the results.

    Raises:
        ml.registry.RegistryError: Unknown or corrupt model, unreachable registry.
        ml.images.inference.NoImageModelError: No model of the kind to fall back on.
        ml.data.lake_source.LakeReadError: The index cannot be read.

    """
    reg = registry or ModelRegistry.from_settings(settings)
    configured = (settings.images.active_classifier if request.kind == IMAGE_CLASSIFIER
                  else settings.images.active_autoencoder)
    model_id = request.model_id or active_image_model_id(reg, request.kind, configured)
    loaded = load_image_model(reg, model_id, settings.ml.batch_size)
    result = ImageScoreResult(model_id, loaded.metadata.kind, loaded.threshold)
    with spark_scope(settings, "gridlake-ml-images-score", spark) as session:
        t0 = time.perf_counter()
        index = lake_index(session, settings, request.batches, request.since_ms)
        result.candidates = len(index)
        if not request.rescore and len(index):
            done = _scored_ids(session, settings, model_id)
            keep = ~index["image_id"].isin(done)
            result.already_scored = int((~keep).sum())
            index = index[keep].reset_index(drop=True)
        if not len(index):
            result.read_s = time.perf_counter() - t0
            logger.info("nothing to score with %s (%d candidate(s), %d already scored)",
                        model_id, result.candidates, result.already_scored)
            return result
        with progress_bar(progress, len(index), "reading images") as advance:
            images = load_lake_rows(settings, index, loaded.model.image_size, advance)
        result.skipped = images.skipped
        result.read_s = time.perf_counter() - t0
        if not len(images):
            return result
        t0 = time.perf_counter()
        scores = loaded.model.predict(images.images).scores
        result.score_s = time.perf_counter() - t0
        result.scored = len(scores)
        result.defects = int((scores >= loaded.threshold).sum())
        if request.write:
            t0 = time.perf_counter()
            frame = result_frame(loaded, images.rows, scores, int(time.time() * 1000))
            upsert_rows(session, settings, ADS_IMAGE_ANOMALY, frame)
            result.rows_written = len(frame)
            result.write_s = time.perf_counter() - t0
    logger.info("scored %d image(s) with %s: %d defect(s), %d skipped", result.scored,
                model_id, result.defects, len(result.skipped))
    return result
