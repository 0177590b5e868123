"""Backfills with Spark against the lake the streaming job wrote (real Spark, Hudi on HDFS).

The seeded scenario is streamed once per session (``lake_run``); these tests snapshot every
DIM, DWD, DWS and ADS table, recompute them from ODS with Spark and compare key by key and
value by value, and compare the Redis serving copy of the ADS tables with the lake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pandas as pd
import pytest
import redis

from infra.settings import GridLakeSettings
from jobs.batch.backfill import BackfillError, BackfillRequest, Scope, run_backfill
from jobs.streaming import control
from jobs.transforms import pipeline, summary
from jobs.transforms.dialect import SPARK
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.serving import hash_fields, index_key, row_member, serving_key_prefix
from lakehouse.contracts.tables import SERVING_SCORE
from tests.jobs.conftest import STREAM_ENVS
from tests.jobs.lake_run import JOB, compare, read_tables, wait_consumed
from tests.jobs.streaming import lakehouse_data, lakehouse_oracle
from tests.jobs.streaming.conftest import publish_to

# The session's streamed lake (tests/jobs/conftest.py), after its read-only checks: the
# backfills here rewrite its tables.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.rewrites_shared_lake]

OUTPUTS: list[TableContract] = [o.table for o in pipeline.outputs(SPARK)]
SERVED: list[TableContract] = [t for t in OUTPUTS if t.name in SERVING_SCORE]
# The scenario's event days (2026-03-01 22:00 … 2026-03-03 03:45 UTC).
FIRST_DAY, END_DAY = date(2026, 3, 1), date(2026, 3, 4)


@pytest.fixture(scope="module")
def spark(lake_run: tuple[GridLakeSettings, str]) -> Iterator[Any]:
    """One Spark session for the module."""
    from infra.spark import spark_scope

    with spark_scope(lake_run[0], "test-backfill") as session:
        yield session


@pytest.fixture(scope="module")
def streamed(lake_run: tuple[GridLakeSettings, str], spark: Any) -> dict[str, pd.DataFrame]:
    """Every table as the streaming job left it."""
    return read_tables(lake_run[0], OUTPUTS, spark)


Copy = dict[str, dict[str, dict[str, str]]]
"""Serving copy: table → index member → hash."""


def serving_copy(settings: GridLakeSettings) -> Copy:
    """Every served table's hashes, by index member (and no hash outside the index)."""
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    out: Copy = {}
    try:
        for t in SERVED:
            prefix = serving_key_prefix(settings.redis.key_prefix, t)
            members = client.zrange(index_key(settings.redis.key_prefix, t), 0, -1)
            pipe = client.pipeline(transaction=False)
            for m in members:
                pipe.hgetall(prefix + m)
            out[t.name] = dict(zip(members, pipe.execute(), strict=True))
            hashes = sum(1 for _ in client.scan_iter(match=prefix + "*", count=1000)) - 1
            assert hashes == len(members), f"{t.name}: {hashes} hashes, {len(members)} indexed"
    finally:
        client.close()
    return out


def rendered(t: TableContract, df: pd.DataFrame) -> dict[str, dict[str, str]]:
    """A lake table's rows as the serving copy holds them (hash fields of non-null values)."""
    return {row_member(t, r): hash_fields(t, r)[0] for r in df.to_dict("records")}


def without_stamp(copy: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {m: {k: v for k, v in h.items() if k != "updated_ts"} for m, h in copy.items()}


def split(copy: dict[str, dict[str, str]], start: date, end: date
          ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(hashes of days in [start, end), the others)."""
    inside = {m: h for m, h in copy.items() if start.isoformat() <= h["dt"] < end.isoformat()}
    return inside, {m: h for m, h in copy.items() if m not in inside}


@pytest.fixture(scope="module")
def streamed_serving(lake_run: tuple[GridLakeSettings, str]) -> Copy:
    """The serving copy as the streaming job's Redis connector left it."""
    return serving_copy(lake_run[0])


@pytest.fixture(scope="module")
def full_backfill(
    lake_run: tuple[GridLakeSettings, str], spark: Any, streamed: dict[str, pd.DataFrame],
    streamed_serving: Copy,
) -> tuple[int, dict[str, pd.DataFrame]]:
    """A backfill of every layer over the scenario's days; (start ms, tables after it)."""
    t0 = int(time.time() * 1000)
    results = run_backfill(lake_run[0], BackfillRequest(FIRST_DAY, END_DAY, "dim"), spark)
    assert {r.table for r in results} == {t.name for t in OUTPUTS}
    return t0, read_tables(lake_run[0], OUTPUTS, spark)


def _in_range(df: pd.DataFrame, start: date, end: date) -> pd.Series:
    if "dt" not in df:
        return pd.Series(True, index=df.index)
    return (df["dt"] >= start.isoformat()) & (df["dt"] < end.isoformat())


def test_backfill_from_ods_equals_the_stream(
    streamed: dict[str, pd.DataFrame], full_backfill: tuple[int, dict[str, pd.DataFrame]]
) -> None:
    _, after = full_backfill
    problems: list[str] = []
    for t in OUTPUTS:
        problems += compare(t, after[t.name], streamed[t.name])
        # every row of the range was rewritten by the backfill, none merely left in place
        key = list(t.record_key)
        rows = after[t.name][_in_range(after[t.name], FIRST_DAY, END_DAY)]
        assert len(rows), f"{t.name}: no rows in the range"
        both = rows.merge(streamed[t.name][[*key, "updated_ts"]], on=key, suffixes=("", "_s"))
        kept = both[both["updated_ts"] <= both["updated_ts_s"]]
        assert kept.empty, f"{t.name}: {len(kept)} rows not rewritten by the backfill"
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


def test_serving_copy_equals_the_backfilled_range(
    lake_run: tuple[GridLakeSettings, str], streamed: dict[str, pd.DataFrame],
    streamed_serving: Copy, full_backfill: tuple[int, dict[str, pd.DataFrame]],
) -> None:
    t0, after = full_backfill
    copy = serving_copy(lake_run[0])
    for t in SERVED:
        # the connector's copy: the stream's rows rendered as the Python layout renders them
        assert without_stamp(streamed_serving[t.name]) == without_stamp(
            rendered(t, streamed[t.name])), t.name
        # after the backfill: exactly the lake's rows of the range, field by field, each
        # one rewritten by the refresh (the backfill's stamp)
        inside, outside = split(copy[t.name], FIRST_DAY, END_DAY)
        want = rendered(t, after[t.name][_in_range(after[t.name], FIRST_DAY, END_DAY)])
        assert want, t.name
        assert inside.keys() == want.keys(), t.name
        assert inside == want, t.name
        assert all(int(h["updated_ts"]) >= t0 for h in inside.values()), t.name
        # other days (quarantine counts of the ingest day): as the stream left them
        assert outside == split(streamed_serving[t.name], FIRST_DAY, END_DAY)[1], t.name


def test_corrected_formula_changes_exactly_its_range(
    lake_run: tuple[GridLakeSettings, str], spark: Any,
    streamed: dict[str, pd.DataFrame], full_backfill: tuple[int, dict[str, pd.DataFrame]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = lake_run[0]
    _, before = full_backfill
    day = date(2026, 3, 2)
    request = BackfillRequest(day, date(2026, 3, 3), "dws", Scope(device_types=("meter",)))
    copy_before = serving_copy(settings)
    # "corrected" upper limit of the qualified voltage band
    monkeypatch.setattr(summary, "V_HIGH", 236.0)
    results = run_backfill(settings, request, spark)
    corrected = read_tables(settings, OUTPUTS, spark)
    copy = serving_copy(settings)
    refreshed = {r.table for r in results if r.serving_rows}
    assert "ads_voltage_daily" in refreshed and refreshed <= {t.name for t in SERVED}
    for t in SERVED:
        # Redis holds the lake's rows, and only the range's rows were rewritten
        lake = corrected[t.name]
        assert split(copy[t.name], day, request.end)[0] == rendered(
            t, lake[_in_range(lake, day, request.end)]), t.name
        day_of = {m: h["dt"] for m, h in copy[t.name].items()}
        rewritten = {m for m, h in copy[t.name].items() if h != copy_before[t.name].get(m)}
        assert rewritten == ({m for m, d in day_of.items() if d == day.isoformat()}
                             if t.name in refreshed else set()), t.name
    voltage = "ads_voltage_daily"
    changed_values = {m for m, h in without_stamp(copy[voltage]).items()
                      if h != without_stamp(copy_before[voltage])[m]}
    assert changed_values and all(copy[voltage][m]["dt"] == day.isoformat()
                                  for m in changed_values)
    changed = {t.name for t in OUTPUTS if compare(t, corrected[t.name], before[t.name])}
    assert changed == {"dws_voltage", "ads_voltage_daily"}
    for name in changed:
        t = next(t for t in OUTPUTS if t.name == name)
        outside = ~_in_range(corrected[name], day, request.end)
        differences = compare(t, corrected[name][outside],
                              before[name][~_in_range(before[name], day, request.end)])
        assert not differences, differences[:5]
    # and the corrected day really is different: fewer qualified readings
    got, was = corrected["ads_voltage_daily"], before["ads_voltage_daily"]
    assert (got[_in_range(got, day, request.end)]["qualified"].sum()
            < was[_in_range(was, day, request.end)]["qualified"].sum())
    # re-applying the original formula restores the stream's values exactly
    monkeypatch.setattr(summary, "V_HIGH", 246.1)
    run_backfill(settings, request, spark)
    restored = read_tables(settings, OUTPUTS, spark)
    problems = [p for t in OUTPUTS for p in compare(t, restored[t.name], streamed[t.name])]
    assert not problems, problems[:20]
    copy = serving_copy(settings)
    assert all(without_stamp(copy[t.name]) == without_stamp(copy_before[t.name])
               for t in SERVED)


@pytest.mark.parametrize(("request_", "message"), [
    (BackfillRequest(date(2026, 3, 2), date(2026, 3, 2)), "empty range"),
    (BackfillRequest(date(2099, 1, 1), date(2099, 1, 2)), "future"),
    (BackfillRequest(FIRST_DAY, END_DAY, "gold"), "unknown layer"),
    (BackfillRequest(FIRST_DAY, END_DAY, scope=Scope(device_types=("toaster",))),
     "unknown device type"),
    (BackfillRequest(FIRST_DAY, END_DAY, scope=Scope(region="atlantis")), "unknown region"),
])
def test_bad_requests_fail_before_writing(
    lake_run: tuple[GridLakeSettings, str], spark: Any, streamed: dict[str, pd.DataFrame],
    request_: BackfillRequest, message: str,
) -> None:
    settings = lake_run[0]
    with pytest.raises(BackfillError, match=message):
        run_backfill(settings, request_, spark)


def test_backfill_beside_the_running_stream(
    lake_run: tuple[GridLakeSettings, str], spark: Any, scenario: lakehouse_data.Scenario,
    streamed: dict[str, pd.DataFrame],
) -> None:
    """Both engines write the same tables at once (optimistic concurrency): afterwards every
    table holds exactly what the stream alone would have, with no key twice and none lost.

    Runs last in the module: it adds new readings to the lake.
    """
    settings, ingest_dt = lake_run
    assert settings.lake.concurrency == "optimistic"
    extra = lakehouse_data.next_readings(scenario)
    assert len(extra) >= 5
    published = threading.Event()
    outcome: dict[str, Any] = {}

    def after_table(*_: Any) -> None:
        # New data for the tables the backfill writes next: the stream commits into them
        # while the backfill is writing them.
        if not published.is_set():
            publish_to(settings, extra)
            published.set()

    def backfill() -> None:
        try:
            outcome["results"] = run_backfill(
                settings, BackfillRequest(FIRST_DAY, END_DAY, "dim"), spark,
                on_table=after_table)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    control.start(settings, JOB, extra_env=STREAM_ENVS[settings.kafka.topic_prefix])
    try:
        control.wait_running(settings, JOB, timeout=400)
        worker = threading.Thread(target=backfill, daemon=True)
        worker.start()
        assert published.wait(600), "the backfill never finished a table"
        # A stream commit that conflicts with a backfill commit fails the job, which restarts
        # from its last checkpoint: minutes each time on a loaded 2-core machine.
        wait_consumed(settings, timeout=600)  # every table committed the new readings ...
        overlapped = worker.is_alive()  # ... while the backfill was still writing
        worker.join(1200)
        assert not worker.is_alive(), "backfill did not finish"
        if "error" in outcome:
            raise outcome["error"]
        assert overlapped, "the backfill ended before the stream committed: nothing overlapped"
    finally:
        control.stop(settings, JOB, savepoint=False)
    grown = replace(scenario, phase2=[*scenario.phase2, *extra])
    expected = lakehouse_oracle.expected(grown, ingest_dt=ingest_dt)
    after = read_tables(settings, OUTPUTS, spark)
    problems = [p for t in OUTPUTS for p in compare(t, after[t.name], expected[t.name])]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
    grew = {t.name for t in OUTPUTS if len(after[t.name]) > len(streamed[t.name])}
    assert {"dwd_meter_reading", "ads_meter_energy_15min"} <= grew
