"""Image import throughput (``gridlake bench images_import``; docs/benchmarks.md).

Generates a batch of equipment images for the default fleet's assets (the simulator's
generator, :mod:`mock_devices.images`, when it is installed; else noisy pictures made
here), writes the fleet's ``dim_device`` into a lake root of the benchmark's own, and times
:func:`jobs.images.job.run_import` on a warm Spark session: images/s and MB/s of the whole
import (registry and index reads, hashing and verifying, uploads, the Hudi commit) and
of its passes. The benchmark's lake root and image folder on HDFS are removed afterwards.

Options from the environment: ``GRIDLAKE_BENCH_IMAGES`` (count, default 2000),
``GRIDLAKE_BENCH_IMAGES_KEEP=1`` (leave the HDFS folders).
"""

from __future__ import annotations

import csv
import importlib
import io
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from infra.lake import WebHdfs, hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import frame_to_spark, spark_session, write_options
from jobs.images.job import run_import
from lakehouse.contracts.images import DESCRIPTION_FIELDS
from lakehouse.contracts.tables import DIM_DEVICE
from mock_devices.config import FleetConfig
from mock_devices.topology import build_topology

log = logging.getLogger(__name__)


def registry_records() -> list[dict[str, Any]]:
    """The default fleet's device registry (version 1 of every device)."""
    return list(build_topology(FleetConfig()).registry.values())


def write_dim_device(spark: Any, settings: GridLakeSettings,
                     records: list[dict[str, Any]], valid_from_ms: int = 0) -> None:
    """Write registry records as current ``dim_device`` rows (one Hudi commit)."""
    rows = [{**{f: r.get(f) for f in DIM_DEVICE.field_names}, "valid_from": valid_from_ms,
             "valid_to": None, "is_current": True, "updated_ts": valid_from_ms,
             "version": r.get("version", 1)} for r in records]
    frame = pd.DataFrame(rows, columns=DIM_DEVICE.field_names)
    frame_to_spark(spark, DIM_DEVICE, frame).write.format("hudi").options(
        **write_options(settings, DIM_DEVICE)).mode("append").save(
        hudi_table_path(settings, DIM_DEVICE))


def _own_batch(folder: Path, count: int, assets: list[str], seed: int = 0) -> None:
    """Noisy 256×192 PNG/JPEG pictures with a descriptions.csv (the generator's layout)."""
    rng = np.random.default_rng(seed)
    names = [f.name for f in DESCRIPTION_FIELDS]
    with (folder / "descriptions.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for i in range(count):
            camera = "infrared" if i % 4 == 0 else "visible"
            fmt, ext = ("JPEG", "jpg") if i % 3 == 0 else ("PNG", "png")
            base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize((256, 192), Image.Resampling.BILINEAR)
            noisy = np.asarray(img, dtype=np.int16) + rng.integers(-8, 8, (192, 256, 3))
            name = f"{camera}/{i:06d}.{ext}"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buf, fmt)
            (folder / name).write_bytes(buf.getvalue())
            w.writerow({"file": name, "asset_id": assets[i % len(assets)],
                        "captured_ts": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                        "camera": camera, "inspector": "bench", "component": "bushing",
                        "label": "normal"})


def make_batch(folder: Path, count: int, assets: list[str]) -> str:
    """A batch of ``count`` images in ``folder``; returns which generator made it."""
    try:
        gen = importlib.import_module("mock_devices.images")
    except ImportError:
        gen = None
    if gen is not None and hasattr(gen, "generate_batch"):
        gen.generate_batch(folder, count, kind="balanced", seed=0)
        return "mock_devices.images"
    _own_batch(folder, count, assets)
    return "ops.bench.images"


def run_benchmark(settings: GridLakeSettings, count: int | None = None,
                  keep: bool | None = None) -> dict[str, Any]:
    """Import ``count`` generated images into a lake root of its own; the figures."""
    count = count or int(os.environ.get("GRIDLAKE_BENCH_IMAGES", "2000"))
    keep = keep if keep is not None else os.environ.get("GRIDLAKE_BENCH_IMAGES_KEEP") == "1"
    run = uuid.uuid4().hex[:8]
    root = f"/gridlake/bench/images-{run}"
    cfg = settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"lake_root": f"{root}/lake"}),
        "images": settings.images.model_copy(update={"hdfs_root": f"{root}/files"}),
    })
    records = registry_records()
    assets = sorted(r["device_id"] for r in records
                    if r["device_type"] in ("transformer", "substation"))
    folder = Path(tempfile.mkdtemp(prefix="gridlake-bench-images-"))
    spark = spark_session(cfg, "bench-images-import")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        t0 = time.perf_counter()
        made_by = make_batch(folder, count, assets)
        gen_s = time.perf_counter() - t0
        files = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".csv"]
        mb = sum(p.stat().st_size for p in files) / 1e6
        write_dim_device(spark, cfg, records)
        t0 = time.perf_counter()
        result = run_import(cfg, [folder], spark=spark)
        total_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_import(cfg, [folder], spark=spark)
        again_s = time.perf_counter() - t0
        counts = result.counts()
        passes_s = result.check_s + result.upload_s + result.write_s
        return {
            "images": len(files), "mb": round(mb, 1), "generator": made_by,
            "generate_s": round(gen_s, 1), "accepted": counts["accepted"],
            "refused": counts["refused"], "seconds": round(total_s, 1),
            "images_per_s": round(len(files) / total_s, 1),
            "mb_per_s": round(mb / total_s, 2),
            "images_per_min": round(60 * len(files) / total_s),
            "passes_images_per_s": round(len(files) / passes_s, 1),
            "read_s": round(result.read_s, 1), "check_s": round(result.check_s, 1),
            "upload_s": round(result.upload_s, 1), "write_s": round(result.write_s, 1),
            "upload_workers": cfg.images.upload_workers,
            "reimport_s": round(again_s, 1),
            "reimport_already_imported": again.counts()["already_imported"],
        }
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if not keep:
            with WebHdfs.from_settings(cfg) as fs:
                fs.delete(root, recursive=True)
