"""Benchmark of scoring on the lake (``gridlake bench --only ml_lake``).

In a lake, registry and Redis prefix of its own (removed afterwards): the seeded
simulator's two ESS banks at 1 Hz over ``hours`` (with the benchmark's fault plan) are
written to ``dwd_ess_bms`` with Spark (:mod:`ops.bench.lake_slice`), a small model is
trained on the first hours and registered, then :func:`ml.lake_scoring.run_lake_scoring`
scores the whole range twice: into empty ADS tables, then again over the rows of the
first run (the steady state of a periodic job: upserts plus the stale-row check).

Figures per run: lake read time (Spark query to series), scoring time and throughput in
time steps/s, write time (two Hudi tables and the Redis alarms), end-to-end steps/s.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import torch

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from infra.spark import spark_session
from lakehouse.contracts.messages import ESS_BMS
from lakehouse.contracts.tables import DWD_TABLES
from lakehouse.time import HOUR_MS, parse_time_ms
from ml.data.lake_source import LakeSource, upsert_rows
from ml.lake_scoring import LakeScoreRequest, run_lake_scoring
from ml.models.anomalybert import AnomalyBertConfig
from ml.pipeline import fit_model, register
from ml.registry import ModelRegistry
from ml.training.train import TrainConfig
from mock_devices.config import FleetConfig
from mock_devices.ml_source import SimulatorSource, ess_fault_plan
from ops.bench.lake_slice import dwd_frame

logger = logging.getLogger(__name__)

DAY = "2024-06-01"


def _isolated(settings: GridLakeSettings) -> GridLakeSettings:
    run = uuid.uuid4().hex[:8]
    root = f"/gridlake/bench/ml-{run}"
    return settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"lake_root": f"{root}/lake"}),
        "redis": settings.redis.model_copy(update={"key_prefix": f"bml{run}:"}),
        "ml": settings.ml.model_copy(update={"registry": "hdfs",
                                             "hdfs_root": f"{root}/models"}),
    })


def _cleanup(settings: GridLakeSettings) -> None:
    import redis

    with WebHdfs.from_settings(settings) as fs:
        fs.delete(settings.hdfs.lake_root.rsplit("/", 1)[0], recursive=True)
    client = redis.Redis.from_url(settings.redis.url)
    try:
        for key in client.scan_iter(match=settings.redis.key_prefix + "*"):
            client.delete(key)
    finally:
        client.close()


def run_lake_benchmark(settings: GridLakeSettings, hours: float = 24.0,
                       train_hours: float = 4.0, train_steps: int = 50,
                       threads: int = 1) -> dict[str, Any]:
    """Lake read time and scoring throughput of the lake scoring job (module docstring).

    Args:
        settings: The stack's settings (HDFS, Redis, Spark).
        hours: Length of the scored range (1 Hz, two banks).
        train_hours: Leading hours the model is trained on (speed only, not quality).
        train_steps: Training steps of the small model.
        threads: Torch CPU threads (restored afterwards).

    """
    s = _isolated(settings)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    spark = spark_session(s, "gridlake-bench-ml-lake")
    spark.sparkContext.setLogLevel("ERROR")
    out: dict[str, Any] = {"spark_master": s.spark.master, "torch_threads": threads}
    try:
        t0 = time.perf_counter()
        sim = SimulatorSource(ESS_BMS, FleetConfig(meters=50, ess_interval_s=1, seed=7), DAY,
                              hours, faults=ess_fault_plan(DAY), site="bench")
        series, desc = sim.load(), sim.description()
        frame = dwd_frame(s, ESS_BMS, desc.channels, series)
        out["simulate_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        upsert_rows(spark, s, DWD_TABLES[ESS_BMS.name], frame)
        out.update(dwd_rows=len(frame), dwd_write_s=round(time.perf_counter() - t0, 1))

        start = parse_time_ms(DAY)
        end = start + int(hours * HOUR_MS)
        train_src = LakeSource(s, start, start + int(train_hours * HOUR_MS), spark=spark)
        cfg = TrainConfig(steps=train_steps, lr=1e-3, warmup_steps=5, seed=0, log_every=0)
        outcome = fit_model(train_src.load(), train_src.description(), cfg,
                            model_config=AnomalyBertConfig.small(desc.n_channels))
        meta = register(ModelRegistry.from_settings(s), outcome)
        out["window_steps"] = outcome.model.config.window

        for run in ("first", "second"):
            res = run_lake_scoring(s, LakeScoreRequest(meta.model_id, start, end),
                                   spark=spark)
            figures = res.to_dict()
            out.update({f"{run}_{k}": figures[k] for k in (
                "steps", "steps_scored", "intervals", "read_s", "score_s", "write_s",
                "score_steps_per_s", "steps_per_s", "score_rows", "alarms_set")})
            logger.info("%s scoring run: %s", run, figures)
    finally:
        spark.stop()
        torch.set_num_threads(before)
        _cleanup(s)
    return out
