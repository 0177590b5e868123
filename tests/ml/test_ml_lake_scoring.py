"""Scoring on the lake: ADS rows and intervals in Hudi, alarms in Redis, idempotent reruns;
``gridlake ml train/score`` with the lake as the data source (real Spark, HDFS, Redis)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from infra.spark import read_table
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.serving import index_key, serving_key_prefix
from lakehouse.contracts.tables import ADS_EQUIPMENT_ANOMALY, ADS_EQUIPMENT_ANOMALY_SCORE
from lakehouse.time import parse_time_ms
from ml.data.lake_source import LakeSource
from ml.detection import DeviceScores, IntervalRules, score_devices
from ml.lake_scoring import LakeScoreRequest, run_lake_scoring
from ml.registry import ModelMetadata, ModelRegistry
from ops.cli.ml import app
from tests.ml.lake_helpers import END, START, TEST, TRAIN, LakeSlice

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0, T1 = parse_time_ms(START), parse_time_ms(END)


def _table(ml_lake: LakeSlice, table: TableContract) -> pd.DataFrame:
    df = read_table(ml_lake.spark, ml_lake.settings, table)
    return df.selectExpr(*[
        f"unix_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
        else f"`{f.name}`" for f in table.fields]).toPandas()


def _expected(ml_lake: LakeSlice, meta: ModelMetadata, threshold: float) -> list[DeviceScores]:
    """The run's scores computed in memory from the same lake series and model."""
    loaded = ModelRegistry.from_settings(ml_lake.settings).load(meta.model_id)
    series = LakeSource(ml_lake.settings, T0, T1, channels=meta.data.channels,
                        step_ms=meta.data.step_ms, spark=ml_lake.spark).load()
    return score_devices(loaded.scorer(ml_lake.settings.ml.batch_size), series, threshold,
                         meta.data.step_ms, IntervalRules(min_steps=2, merge_gap=3))


def _intervals(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
    return {(r.device_id, r.start_ts, r.end_ts, r.steps) for r in frame.itertuples()}


def _keys(intervals: set[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """Record keys (device, source, start) of interval tuples."""
    return {k[:3] for k in intervals}


def test_scores_intervals_and_alarms_upserted_by_key(ml_lake: LakeSlice,
                                                     lake_model: ModelMetadata) -> None:
    s = ml_lake.settings
    rules = IntervalRules(min_steps=2, merge_gap=3)
    all_scores = np.concatenate([d.scores[d.scored]
                                 for d in _expected(ml_lake, lake_model, 1.0)])
    loose = float(np.quantile(all_scores, 0.9))
    want = _expected(ml_lake, lake_model, loose)
    want_rows = sum(int(d.scored.sum()) for d in want)
    want_iv = {(i.device_id, "ess_bms", i.start_ms, i.end_ms, i.steps)
               for d in want for i in d.intervals}
    assert want_rows > 4000 and len(want_iv) >= 2

    first = run_lake_scoring(s, LakeScoreRequest(lake_model.model_id, T0, T1,
                                                 threshold=loose, rules=rules),
                             spark=ml_lake.spark)
    assert (first.score_rows, first.steps_scored, len(first.intervals)) == (
        want_rows, want_rows, len(want_iv))
    assert first.devices == ["ESS-01", "ESS-02"] and first.too_short == []
    assert first.alarms_set == len(want_iv) and first.read_s > 0 and first.score_s > 0
    assert (first.stale_scores, first.stale_intervals, first.alarms_removed) == (0, 0, 0)
    scores = _table(ml_lake, ADS_EQUIPMENT_ANOMALY_SCORE)
    assert len(scores) == want_rows
    by_dev = {d.device_id: d for d in want}
    for dev, part in scores.groupby("device_id"):
        d = by_dev[str(dev)]
        part = part.sort_values("event_ts")
        np.testing.assert_array_equal(part["event_ts"].to_numpy(), d.ts_ms[d.scored])
        np.testing.assert_allclose(part["score"].to_numpy(), d.scores[d.scored], atol=1e-6)
        np.testing.assert_array_equal(part["anomalous"].to_numpy(), d.anomalous[d.scored])
        np.testing.assert_array_equal(part["imputed"].to_numpy(), d.imputed[d.scored])
    # ESS-01's short gap (3 rows) and its 2 unusable rows were interpolated, and scored
    assert int(scores["imputed"].sum()) == 5
    intervals = _table(ml_lake, ADS_EQUIPMENT_ANOMALY)
    assert {(r.device_id, r.source, r.start_ts, r.end_ts, r.steps)
            for r in intervals.itertuples()} == want_iv
    assert set(intervals["substation_id"]) <= {"SUB-1", "SUB-2"}

    client = redis.Redis.from_url(s.redis.url, decode_responses=True)
    index = index_key(s.redis.key_prefix, ADS_EQUIPMENT_ANOMALY)
    prefix = serving_key_prefix(s.redis.key_prefix, ADS_EQUIPMENT_ANOMALY)
    assert client.zcard(index) == len(want_iv)
    iv = intervals.sort_values("peak_score").iloc[-1]
    member = f"{iv.device_id}|ess_bms|{iv.start_ts}"
    assert client.zscore(index, member) == iv.start_ts
    alarm = client.hgetall(prefix + member)
    assert int(alarm["end_ts"]) == iv.end_ts and int(alarm["steps"]) == iv.steps
    assert float(alarm["peak_score"]) == pytest.approx(iv.peak_score)
    assert alarm["model_id"] == lake_model.model_id and alarm["ongoing"] in ("true", "false")

    # Scoring the same range again (stricter threshold) rewrites every per-step key and
    # the intervals that remain; the ones that no longer exist leave the lake and Redis.
    # The strictest high quantile that still leaves an interval of min_steps: which one
    # that is depends on how peaked the model's scores are, not on what is tested here.
    for q in (0.995, 0.99, 0.98, 0.97, 0.95):
        strict = float(np.quantile(all_scores, q))
        fewer = {(i.device_id, "ess_bms", i.start_ms, i.end_ms, i.steps)
                 for d in _expected(ml_lake, lake_model, strict) for i in d.intervals}
        gone = _keys(want_iv) - _keys(fewer)
        if fewer and gone:
            break
    assert fewer and gone
    second = run_lake_scoring(s, LakeScoreRequest(lake_model.model_id, T0, T1,
                                                  threshold=strict, rules=rules),
                              spark=ml_lake.spark)
    assert (second.stale_scores, second.stale_intervals, second.alarms_removed) == (
        0, len(gone), len(gone))
    scores = _table(ml_lake, ADS_EQUIPMENT_ANOMALY_SCORE)
    assert len(scores) == want_rows
    assert not scores.duplicated(["device_id", "source", "event_ts"]).any()
    assert len(set(scores["updated_ts"])) == 1  # every row now from the second run
    assert set(scores["threshold"]) == {strict}
    intervals = _table(ml_lake, ADS_EQUIPMENT_ANOMALY)
    assert {(r.device_id, r.source, r.start_ts, r.end_ts, r.steps)
            for r in intervals.itertuples()} == fewer
    assert client.zcard(index) == len(fewer)
    for dev, src, start in _keys(want_iv):
        assert bool(client.exists(f"{prefix}{dev}|{src}|{start}")) == (
            (dev, src, start) not in gone)
    client.close()


def _json(output: str) -> dict[str, Any]:
    return json.loads(output[output.index("{"):])  # type: ignore[no-any-return]


def test_cli_trains_from_the_lake_and_scores(ml_lake: LakeSlice,
                                             lake_model: ModelMetadata) -> None:
    runner = CliRunner()
    r = runner.invoke(app, [
        "train", "--source", "lake", "--start", TRAIN[0], "--end", TRAIN[1],
        "--test-start", TEST[0], "--test-end", TEST[1], "--steps", "5", "--n-patches", "16",
    ], env=ml_lake.env)
    assert r.exit_code == 0, r.output
    out = _json(r.stdout)
    meta = ModelRegistry.from_settings(ml_lake.settings).metadata(str(out["model_id"]))
    assert meta.data.source == "lake" and meta.data.details["table"] == "dwd_ess_bms"
    # evaluated on the lake's test range, labelled from ods_sim_label: faults are there
    assert meta.metrics is not None and 0.05 < meta.metrics["anomaly_ratio"] < 0.5

    r = runner.invoke(app, ["train", "--source", "lake", "--start", TRAIN[0], "--end",
                            TEST[1], "--test-start", TEST[0], "--test-end", TEST[1]],
                      env=ml_lake.env)
    assert r.exit_code == 2 and "overlaps the training range" in r.output
    # the default window (512 steps) does not fit the held-out tail of this range
    r = runner.invoke(app, ["train", "--source", "lake", "--start", TRAIN[0], "--end",
                            TRAIN[1], "--steps", "1"], env=ml_lake.env)
    assert r.exit_code == 2 and "512 steps" in r.output

    r = runner.invoke(app, ["score", lake_model.model_id, "--start", TEST[0], "--end", TEST[1],
                            "--devices", "ESS-01", "--no-write"], env=ml_lake.env)
    assert r.exit_code == 0, r.output
    res = _json(r.stdout)
    assert res["devices"] == ["ESS-01"] and res["steps"] == 3.5 * 360
    assert res["score_rows"] == 0 and res["score_steps_per_s"] > 0

    r = runner.invoke(app, ["score", lake_model.model_id, "--start", TEST[0], "--end", TEST[1],
                            "--devices", "ESS-99"], env=ml_lake.env)
    assert r.exit_code == 2 and "no dwd_ess_bms readings of device(s) ESS-99" in r.output
    r = runner.invoke(app, ["score", lake_model.model_id, "--start", TEST[0], "--end",
                            "2024-06-02T00:35"], env=ml_lake.env)
    assert r.exit_code == 2 and "one window" in r.output
    r = runner.invoke(app, ["score", "no-such-model"], env=ml_lake.env)
    assert r.exit_code == 2 and "no-such-model" in r.output
