"""Backfill benchmark: ODS rows per day, keys, batching and the figures' arithmetic
(no services; the benchmark itself is run with ``gridlake bench --only backfill``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.settings import GridLakeSettings
from jobs.batch.backfill import TableResult
from jobs.batch.history.files import check_row
from jobs.batch.history.load import epoch_ms_schema
from jobs.batch.history.rows import IMPORTED_LATENESS, ROW_BITS, file_position, stored_row
from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE
from lakehouse.time import dt_of, parse_time_ms
from mock_devices.config import FleetConfig
from mock_devices.fleet import T_LABELS, T_METER, T_REGISTRY, Fleet
from ops.bench import backfill as bench

START = parse_time_ms("2024-06-03T23:00")
#: Two simulated hours across midnight: two days.
END = START + 2 * 3_600_000
D0, D1 = "2024-06-03", "2024-06-04"
ODS_METER = ODS_TABLES[METER_READING.name]


def fleet_records(meters: int = 12) -> list[tuple[str, str, Any]]:
    """A small fleet's messages over :data:`START` … :data:`END`."""
    return list(Fleet(FleetConfig(meters=meters, seed=5), START, END).records())


@pytest.fixture(scope="module")
def records() -> list[tuple[str, str, Any]]:
    return fleet_records()


@pytest.fixture(scope="module")
def days(records: list[tuple[str, str, Any]]) -> list[bench.DayRows]:
    return list(bench.ods_days(records, "p.", seed=5, meters=12))


def test_one_batch_per_event_day_in_order(records: list[Any], days: list[bench.DayRows]
                                          ) -> None:
    assert [d.day for d in days] == [D0, D1]
    for d in days:
        for name, rows in d.tables.items():
            assert set(rows.column("dt").to_pylist()) == {d.day}, name
    assert sum(d.rows for d in days) == len(records)
    assert sum(sum(d.messages.values()) for d in days) == len(records)
    # the registry is sent at the start: all of it on the first day
    assert days[0].messages[T_REGISTRY] > 0
    assert T_REGISTRY not in days[1].messages


def test_rows_are_the_history_imports(records: list[Any], days: list[bench.DayRows]) -> None:
    meter_rows = days[0].tables[ODS_METER.name].to_pylist()
    raws = [r for t, _, r in records if t == T_METER
            and isinstance(r, dict) and dt_of(r["ts"]) == D0]
    partition, base = bench.batch_position(5, 12, T_METER, D0)
    assert len(meter_rows) == len(raws)
    for i, (row, raw) in enumerate(zip(meter_rows, raws, strict=True)):
        values, reason = check_row(METER_READING, raw)
        table, expected = stored_row(METER_READING, "import:p.meter.readings", partition,
                                     base + i, values, reason, "", raw["ts"])
        assert table is ODS_METER
        assert row == {n: expected.get(n) for n in ODS_METER.field_names}
    assert meter_rows[0]["lateness"] == IMPORTED_LATENESS
    assert meter_rows[0]["ingest_ts"] == meter_rows[0]["ts"]
    assert days[0].tables[ODS_METER.name].schema == bench.arrow_schema(ODS_METER)



def test_keys_are_unique_and_the_same_on_every_run(days: list[bench.DayRows]) -> None:
    keys = [
        (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])
        for d in days for t in d.tables.values()
        for r in t.select(["kafka_topic", "kafka_partition", "kafka_offset"]).to_pylist()
    ]
    assert len(keys) == len(set(keys))
    again = list(bench.ods_days(fleet_records(), "p.", seed=5, meters=12))
    assert [d.tables for d in again] == [d.tables for d in days]


def test_batch_position_is_per_fleet_topic_and_day() -> None:
    p = bench.batch_position(42, 3000, T_METER, D0)
    assert p == bench.batch_position(42, 3000, T_METER, D0)
    assert p[1] % (1 << ROW_BITS) == 0  # the row index fits below it
    others = {bench.batch_position(42, 3000, T_METER, D1),
              bench.batch_position(42, 3000, T_REGISTRY, D0),
              bench.batch_position(43, 3000, T_METER, D0),
              bench.batch_position(42, 3001, T_METER, D0)}
    assert p not in others and len(others) == 4
    digest = hashlib.sha256(f"gridlake-bench:42:3000:{T_METER}:{D0}".encode()).hexdigest()
    assert p == file_position(digest)


def test_chunking_does_not_change_the_rows(records: list[Any],
                                           days: list[bench.DayRows]) -> None:
    small = list(bench.ods_days(records, "p.", seed=5, meters=12, chunk_rows=7))
    assert [d.tables for d in small] == [d.tables for d in days]


def test_days_are_yielded_before_the_next_day_is_generated() -> None:
    """Bounded memory: a day is handed over as soon as the first message of the next one
    arrives, not after the whole range."""
    taken: list[int] = []
    source = fleet_records()

    def feed() -> Iterator[tuple[str, str, Any]]:
        for i, rec in enumerate(source):
            taken.append(i)
            yield rec

    first = next(bench.ods_days(feed(), "p.", seed=5, meters=12))
    assert first.day == D0
    assert len(taken) == first.rows + 1  # the one message of the next day that ended it


def test_labels_are_skipped_and_bad_messages_quarantined() -> None:
    ts = parse_time_ms("2024-06-03T10:00")
    good = {"device_id": "MTR-1", "ts": ts, "energy_import_kwh": 1.0,
            "energy_export_kwh": 0.0, "voltage_v": 230.0, "current_a": 1.0,
            "active_power_kw": 0.2, "seq": 1, "reactive_power_kvar": 0.0,
            "power_factor": 1.0, "interval_s": 900}
    bad = {**good, "voltage_v": "high", "ts": "later"}
    label = {"label_id": "L1", "start_ts": ts}
    [day] = bench.ods_days([(T_METER, "MTR-1", good), (T_LABELS, "L1", label),
                            (T_METER, "MTR-1", bad)], "p.", seed=1, meters=1)
    assert day.day == "2024-06-03"
    assert day.tables[ODS_METER.name].num_rows == 1
    [q] = day.tables[QUARANTINE.name].to_pylist()
    assert q["reason"] == "bad_type:ts"
    assert json.loads(q["payload"]) == bad
    # no readable event time: received "when" the last readable one was
    assert q["ingest_ts"] == ts and q["dt"] == "2024-06-03"
    partition, base = bench.batch_position(1, 1, T_METER, "2024-06-03")
    assert (q["kafka_partition"], q["kafka_offset"]) == (partition, base + 1)
    assert day.messages == {T_METER: 2}


def test_arrow_schema_matches_the_spark_schema_the_files_are_read_with() -> None:
    type_names = {"string": "string", "int32": "int", "int64": "bigint",
                  "double": "double", "bool": "boolean"}
    for table in (*ODS_TABLES.values(), QUARANTINE):
        arrow = bench.arrow_schema(table)
        spark = epoch_ms_schema(table)
        assert arrow.names == [f.name for f in spark.fields] == list(table.field_names)
        assert [type_names[str(f.type)] for f in arrow] == \
            [f.dataType.simpleString() for f in spark.fields]


# ------------------------------------------------------------------------- arithmetic
def test_per_second() -> None:
    assert bench.per_second(1000, 8.0) == 125.0
    assert bench.per_second(10, 3.0) == 3.3
    assert bench.per_second(10, 0.0) == 0.0


def test_backfill_figures() -> None:
    results = [TableResult("dim_device", rows=10, partitions=1, seconds=2.0),
               TableResult("dwd_meter_reading", rows=300, partitions=2, seconds=5.0,
                           deleted=1),
               TableResult("dws_load", rows=90, partitions=2, seconds=3.0),
               TableResult("ads_meter_energy_15min", rows=100, partitions=2, seconds=1.5)]
    f = bench.backfill_figures("dim", results, rows_read=1200, seconds=20.0, views_s=6.0,
                               serving_s=0.5)
    assert f.rows_written == 500 and f.tables == 4 and f.deleted == 1
    assert f.rows_by_layer == {"dim": 10, "dwd": 300, "dws": 90, "ads": 100}
    assert f.input_rows_per_s == 60.0 and f.output_rows_per_s == 25.0
    assert f.per_table["dwd_meter_reading"] == {"rows": 300, "partitions": 2, "seconds": 5.0}
    assert list(f.per_table) == [r.table for r in results]


def test_load_figures_rates() -> None:
    f = bench.LoadFigures("2024-06-03", "2024-06-04", 3000, ods_rows=900, quarantined=100,
                          write_s=4.04, generate_s=5.96)
    f.finish(10.0)
    assert (f.rows_per_s, f.write_rows_per_s, f.write_s, f.seconds) == (100.0, 250.0, 4.0,
                                                                        10.0)


# ------------------------------------------------------------------ streaming replay
def test_replay_is_an_extrapolation_unless_measured() -> None:
    rate = bench.StreamRate(250.0, "somewhere")
    out = bench.replay_figures(900_000, rate, backfill_s=400.0, load_and_backfill_s=900.0)
    assert out["replay_s"] == 3600.0 and out["replay_h"] == 1.0
    assert out["replay_over_backfill"] == 9.0 and out["replay_over_load_and_backfill"] == 4.0
    assert out["method"].startswith("extrapolation") and out["rate_source"] == "somewhere"
    measured = bench.replay_figures(1000, bench.StreamRate(100.0, "here", True), 5.0, 10.0)
    assert measured["method"].startswith("measured")
    none = bench.replay_figures(1000, None, 5.0, 10.0)
    assert "replay_s" not in none and "note" in none


def test_rate_from_results_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"when": "2026-11-21T09:32:52+00:00", "results": {
        "lakehouse": {"meters": 3000, "throughput": {
            "through_all_layers_msgs_per_s": 255, "simulated_minutes": 60}}}}))
    rate = bench.rate_from_results(path)
    assert rate is not None and rate.msgs_per_s == 255.0 and not rate.measured_here
    assert "2026-11-21T09:32:52" in rate.source and "through_all_layers" in rate.source
    path.write_text(json.dumps({"results": {"api": {}}}))
    assert bench.rate_from_results(path) is None
    assert bench.rate_from_results(tmp_path / "missing.json") is None


def test_rate_from_the_docs() -> None:
    text = bench.DOCS.read_text(encoding="utf-8")
    rate = bench.rate_from_docs(text)
    assert rate is not None and rate.msgs_per_s > 0
    assert "Streaming lakehouse" in rate.source
    doc = ("## Other\n≈ 999 messages/s end to end\n## Streaming lakehouse (issue 4)\n"
           "**Latest run, 2026-11-21 09:32 (commit a765308):**\n"
           "| x | **115.4 s: ≈ 1,255 messages/s end to end** |\n## Next\n")
    rate = bench.rate_from_docs(doc)
    assert rate is not None and rate.msgs_per_s == 1255.0
    assert rate.source.endswith("latest run 2026-11-21 09:32")
    assert bench.rate_from_docs("## Streaming lakehouse\nnothing measured\n") is None


def test_latest_rate_prefers_the_results_file(settings: GridLakeSettings,
                                               tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("## Streaming lakehouse\n**Latest run, D1 (x)**\n"
                    "≈ 100 messages/s end to end\n")
    rate = bench.latest_stream_rate(settings, docs)
    assert rate is not None and rate.msgs_per_s == 100.0
    out = settings.home / "bench" / "results.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({"results": {"lakehouse": {"throughput": {
        "through_all_layers_msgs_per_s": 300}}}}))
    rate = bench.latest_stream_rate(settings, docs)
    assert rate is not None and rate.msgs_per_s == 300.0


# --------------------------------------------------------------------------- options
def test_options_from_env() -> None:
    p = bench.ENV_PREFIX
    assert bench.options_from_env({}) == {}
    assert bench.options_from_env({p + "DAYS": "1", p + "METERS": "300",
                                   p + "STREAM_MINUTES": "120", p + "KEEP": "true"}) == {
        "days": 1, "meters": 300, "stream_minutes": 120, "keep": True}
    assert bench.options_from_env({p + "KEEP": "0"}) == {"keep": False}
    with pytest.raises(ValueError, match="DAYS"):
        bench.options_from_env({p + "DAYS": "a month"})
    with pytest.raises(ValueError, match="KEEP"):
        bench.options_from_env({p + "KEEP": "maybe"})


def test_isolated_settings(settings: GridLakeSettings) -> None:
    s = bench.isolated(settings, "abc", 300)
    assert s.hdfs.lake_root == "/gridlake/bench/backfill-abc/lake"
    assert s.hdfs.lake_root.startswith(bench.bench_root("abc") + "/")
    assert s.redis.key_prefix == "bbfabc:" and s.kafka.topic_prefix == "bbfabc."
    assert s.simulator.meters == 300
    assert settings.hdfs.lake_root != s.hdfs.lake_root


def test_run_benchmark_rejects_bad_options(settings: GridLakeSettings) -> None:
    with pytest.raises(ValueError, match="days"):
        bench.run_benchmark(settings, days=0)
    remote = settings.model_copy(update={
        "spark": settings.spark.model_copy(update={"master": "spark://host:7077"})})
    with pytest.raises(ValueError, match="local"):
        bench.run_benchmark(remote, days=1)
