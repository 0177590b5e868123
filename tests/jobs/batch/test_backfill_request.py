"""Backfill requests, plans and job tracking (no services)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import pytest

from infra.settings import GridLakeSettings
from jobs.batch.backfill import (
    BackfillError,
    BackfillRequest,
    Scope,
    parse_day,
    planned_outputs,
    validate,
)
from jobs.batch.runner import request_from_dict, request_to_dict
from jobs.batch.tracking import JobNotFound, JobState, JobStore, TooManyJobs
from jobs.transforms import pipeline
from jobs.transforms.dialect import FLINK, SparkDialect

TODAY = date(2026, 11, 21)


@pytest.mark.parametrize(("start", "end", "layer", "types", "message"), [
    (date(2026, 3, 2), date(2026, 3, 2), "dwd", (), "empty range"),
    (date(2026, 3, 3), date(2026, 3, 2), "dwd", (), "empty range"),
    (TODAY + timedelta(days=1), TODAY + timedelta(days=2), "dwd", (), "starts in the future"),
    (TODAY, TODAY + timedelta(days=2), "dwd", (), "ends in the future"),
    (date(2026, 3, 1), date(2026, 3, 2), "silver", (), "unknown layer 'silver'"),
    (date(2026, 3, 1), date(2026, 3, 2), "dwd", ("toaster",), "unknown device type toaster"),
])
def test_invalid_requests_are_rejected(
    start: date, end: date, layer: str, types: tuple[str, ...], message: str
) -> None:
    with pytest.raises(BackfillError, match=message):
        validate(BackfillRequest(start, end, layer, Scope(types)), today=TODAY)


@pytest.mark.parametrize(("request_", "kw", "message"), [
    (BackfillRequest(date(1, 1, 1), date(1, 1, 2)), {}, "starts before 1970-01-02"),
    (BackfillRequest(date(1970, 1, 1), date(1970, 1, 2)), {}, "starts before 1970-01-02"),
    (BackfillRequest(date(2026, 1, 1), date(2026, 4, 4)), {"max_days": 92},
     "range of 93 days is longer than 92 days"),
    (BackfillRequest(date(2026, 3, 1), date(2026, 3, 2), scope=Scope(region="R9")),
     {"regions": {"R1", "R2"}}, "unknown region 'R9'; known: R1, R2"),
    (BackfillRequest(date(2026, 3, 1), date(2026, 3, 2), scope=Scope(feeder="F9")),
     {"feeders": {"F1": "R1"}}, "unknown feeder 'F9'"),
    (BackfillRequest(date(2026, 3, 1), date(2026, 3, 2), scope=Scope(region="R2",
                                                                     feeder="F1")),
     {"regions": {"R1", "R2"}, "feeders": {"F1": "R1"}}, "feeder 'F1' is in region 'R1'"),
])
def test_bounds_and_known_topology(request_: BackfillRequest, kw: dict[str, Any],
                                   message: str) -> None:
    with pytest.raises(BackfillError, match=message):
        validate(request_, today=TODAY, **kw)


def test_known_region_and_feeder_pass_and_unchecked_ones_are_not_refused() -> None:
    request = BackfillRequest(date(2026, 3, 1), date(2026, 3, 2),
                              scope=Scope(region="R1", feeder="F1"))
    validate(request, today=TODAY, regions={"R1"}, feeders={"F1": "R1"})
    validate(request, today=TODAY)  # the CLI: nothing to check them against
    validate(BackfillRequest(date(2026, 1, 1), date(2026, 4, 3)), today=TODAY,
             max_days=92)  # exactly the bound
    validate(BackfillRequest(date(1970, 1, 2), date(1970, 1, 3)), today=TODAY)


def test_today_is_a_valid_last_day() -> None:
    validate(BackfillRequest(TODAY, TODAY + timedelta(days=1)), today=TODAY)


def test_parse_day_names_the_option() -> None:
    assert parse_day("2026-03-01", "--start") == date(2026, 3, 1)
    with pytest.raises(BackfillError, match="--end: '03/01' is not a date"):
        parse_day("03/01", "--end")


def test_plan_from_a_layer_includes_everything_downstream() -> None:
    names = [o.table.name for o in planned_outputs(BackfillRequest(TODAY, TODAY, "dws"))]
    assert names and all(n.startswith(("dws_", "ads_")) for n in names)
    assert "ads_quality_scorecard" in names
    everything = planned_outputs(BackfillRequest(TODAY, TODAY, "dim"))
    assert [o.table.name for o in everything][0] == "dim_device"
    assert len(everything) == len(pipeline.outputs(FLINK))


def test_device_type_scope_keeps_the_tables_fed_by_it() -> None:
    names = {o.table.name for o in planned_outputs(
        BackfillRequest(TODAY, TODAY, "dwd", Scope(device_types=("transformer",))))}
    assert {"dwd_transformer_telemetry", "dwd_transformer_dga", "dws_transformer",
            "ads_transformer_daily"} <= names
    assert not names & {"dwd_meter_reading", "dws_load", "ads_ess_daily", "dim_device"}


def test_region_scope_never_rebuilds_dim() -> None:
    names = {o.table.name for o in planned_outputs(
        BackfillRequest(TODAY, TODAY, "dim", Scope(region="R1")))}
    assert "dim_device" not in names and "dwd_meter_reading" in names


def test_spark_dialect_stamps_the_snapshot_time() -> None:
    assert SparkDialect(1_700_000_000_000).now() == (
        "timestamp_millis(CAST(1700000000000 AS BIGINT))")
    assert SparkDialect().now() == "current_timestamp()"
    assert "min_by(`x`" in SparkDialect().first("`x`")


def test_both_engines_get_the_same_views_and_tables() -> None:
    spark = SparkDialect()
    assert list(pipeline.views(FLINK)) == list(pipeline.views(spark))
    assert [o.table for o in pipeline.outputs(FLINK)] == [o.table for o in pipeline.outputs(spark)]
    # only dialect fragments differ: the Spark plan has no Flink function left
    text = "\n".join([*pipeline.views(spark).values(), *(o.query for o in pipeline.outputs(spark))])
    for flink_only in ("TO_TIMESTAMP_LTZ", "FIRST_VALUE", "CURRENT_ROW_TIMESTAMP", "STATE_TTL"):
        assert flink_only not in text


def test_request_round_trips_through_the_job_state() -> None:
    r = BackfillRequest(date(2026, 3, 1), date(2026, 3, 4), "dws",
                        Scope(("meter",), "R1", None))
    assert request_from_dict(request_to_dict(r)) == r


def test_job_store_records_and_reports_dead_jobs(tmp_path: object) -> None:
    settings = GridLakeSettings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]
    store = JobStore(settings)
    job = store.create("backfill", {"start": "2026-03-01"})
    assert store.get(job.id).state == "queued"
    job.state, job.pid = "running", 2**22 + 12345  # no such process
    store.save(job)
    got = store.get(job.id)
    assert got.state == "failed" and "process died" in (got.error or "")
    job.pid = os.getpid()
    store.save(job)
    assert store.get(job.id).state == "running"
    assert [j.id for j in store.list()] == [job.id]
    with pytest.raises(JobNotFound):
        store.get("../etc")
    with pytest.raises(JobNotFound):
        store.get("nope")


def test_launch_limited_counts_queued_and_running_jobs(tmp_path: object) -> None:
    settings = GridLakeSettings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]
    store = JobStore(settings)
    started: list[str] = []

    def launch(job: JobState) -> JobState:
        started.append(job.id)
        job.state, job.pid = "running", os.getpid()
        store.save(job)
        return job

    store.launch = launch  # type: ignore[method-assign]
    first = store.launch_limited("backfill", {"n": 1}, max_active=2)
    store.launch_limited("backfill", {"n": 2}, max_active=2)
    with pytest.raises(TooManyJobs, match="at most 2"):
        store.launch_limited("backfill", {"n": 3}, max_active=2)
    assert len(started) == 2 and len(store.list()) == 2  # the refused one left nothing
    first.state = "succeeded"
    store.save(first)
    store.launch_limited("backfill", {"n": 3}, max_active=2)
    assert len(started) == 3


def test_a_failed_launch_does_not_hold_a_slot(tmp_path: object) -> None:
    settings = GridLakeSettings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]
    store = JobStore(settings)

    def launch(job: JobState) -> JobState:
        raise OSError("no python")

    store.launch = launch  # type: ignore[method-assign]
    with pytest.raises(OSError):
        store.launch_limited("backfill", {}, max_active=1)
    [job] = store.list()
    assert job.state == "failed" and "no python" in (job.error or "")
    store.launch = lambda job: job  # type: ignore[method-assign]
    assert store.launch_limited("backfill", {}, max_active=1).state == "queued"
