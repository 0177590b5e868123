"""Answers: values rounded to their unit's decimals, windows marked partial (fixed clock).

The query service reads from a stub serving copy (no Redis) so that "now" and the newest
window the stream has written are set by the test.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from api.datasets import DATASETS, Dataset
from api.output import finish_rows, parse_fields, parse_filters, render
from api.query import QueryService
from api.security import Principal, Role
from infra.serving_store import Coverage
from infra.settings import GridLakeSettings
from lakehouse.contracts.schema import TableContract
from lakehouse.time import to_ms

CURVE = DATASETS["load_curve"]
DAILY = DATASETS["load_daily"]
HEALTH = DATASETS["asset_health"]
_BASE = GridLakeSettings()
# the watermark runs 5 minutes behind the newest event time (the tests reason with it)
SETTINGS = _BASE.model_copy(update={
    "flink": _BASE.flink.model_copy(update={"watermark_delay_ms": 300_000})})


def at(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


class StubServing:
    """The serving copy of one dataset: raw hashes keyed by index member."""

    available = True

    def __init__(self, ds: Dataset, rows: list[dict[str, str]]) -> None:
        self.ds = ds
        self.rows = {ds.member(r.get("entity_type", "meter"), r[ds.entity_id_field],
                               int(r[ds.time_field])): r for r in rows}

    async def coverage(self, table: TableContract) -> Coverage:
        times = [int(r[self.ds.time_field]) for r in self.rows.values()]
        return Coverage(len(times), min(times), max(times))

    async def members(self, table: TableContract, start_ms: int, end_ms: int) -> list[str]:
        return [m for m, r in self.rows.items()
                if start_ms <= int(r[self.ds.time_field]) < end_ms]

    async def hashes(self, table: TableContract,
                     members: Iterable[str]) -> list[dict[str, str]]:
        return [self.rows[m] for m in members if m in self.rows]


def curve_row(start: str, load: str = "317.25") -> dict[str, str]:
    return {"entity_type": "region", "entity_id": "R1", "window_start": str(at(start)),
            "load_kw": load, "energy_import_kwh": "0.005000000000109139", "devices": "3"}


def service(ds: Dataset, rows: list[dict[str, str]], now: str) -> QueryService:
    clock_s = at(now) / 1000
    return QueryService(SETTINGS, StubServing(ds, rows), None, None, None,  # type: ignore[arg-type]
                        clock=lambda: clock_s)


def answered(q: QueryService, ds: Dataset, start: str, end: str) -> list[dict[str, Any]]:
    who = Principal(username="t", role=Role.ADMIN, regions=frozenset())
    got = asyncio.run(q.read(ds, at(start), at(end), who))
    rows = q.answer(ds, got)
    return sorted(rows, key=lambda r: r[ds.time_field])


QUARTERS = [curve_row("2026-03-02T09:45"), curve_row("2026-03-02T10:00"),
            curve_row("2026-03-02T10:15", "NaN")]


def test_the_current_and_unsettled_quarters_are_partial() -> None:
    # 10:17: the 10:15 quarter is 2 minutes old; the 10:00 one ended 2 minutes ago, before
    # the watermark (now - 5 min) passed its end
    q = service(CURVE, QUARTERS, "2026-03-02T10:17")
    rows = answered(q, CURVE, "2026-03-02T09:45", "2026-03-02T11:00")
    assert [r["partial"] for r in rows] == [False, True, True]
    # once the watermark has passed 10:15 only the newest quarter is still partial
    q = service(CURVE, QUARTERS, "2026-03-02T10:21")
    rows = answered(q, CURVE, "2026-03-02T09:45", "2026-03-02T11:00")
    assert [r["partial"] for r in rows] == [False, False, True]


def test_in_a_replay_the_newest_window_written_is_partial() -> None:
    # history streamed months later: "now" is far ahead, the stream is at 10:15
    q = service(CURVE, QUARTERS, "2026-09-01T00:00")
    rows = answered(q, CURVE, "2026-03-02T09:45", "2026-03-02T11:00")
    assert [r["partial"] for r in rows] == [False, False, True]


def test_values_are_rounded_and_not_a_number_is_null() -> None:
    q = service(CURVE, QUARTERS, "2026-03-02T10:17")
    rows = answered(q, CURVE, "2026-03-02T09:45", "2026-03-02T11:00")
    assert rows[0]["energy_import_kwh"] == 0.005 and rows[0]["load_kw"] == 317.25
    assert rows[2]["load_kw"] is None  # NaN in the serving copy
    assert rows[0]["devices"] == 3  # integers untouched
    body, _ = render({}, rows, CURVE.answer_names, "json")
    js = orjson.loads(body)["rows"]
    assert js[0]["energy_import_kwh"] == 0.005 and "0.00500000" not in body
    assert js[2]["load_kw"] is None and js[2]["partial"] is True
    text, _ = render({}, rows, CURVE.answer_names, "csv")
    got = list(csv.DictReader(io.StringIO(text)))
    assert got[0]["energy_import_kwh"] == "0.005" and got[0]["partial"] == "false"
    assert got[2]["load_kw"] == "" and got[2]["partial"] == "true"


def day_row(ds: Dataset, day: str, **values: str) -> dict[str, str]:
    key = {"entity_type": "region", "entity_id": "R1"} if ds is DAILY else {
        "asset_type": "transformer", "asset_id": "TX-1"}
    return {**key, ds.time_field: str(at(day)), **values}


def test_today_is_partial_yesterday_complete() -> None:
    rows = [day_row(DAILY, "2026-03-01", load_factor_pct="72.57000000000001"),
            day_row(DAILY, "2026-03-02", load_factor_pct="100.0")]
    q = service(DAILY, rows, "2026-03-02T00:11")
    got = answered(q, DAILY, "2026-03-01", "2026-03-03")
    assert [(r["load_factor_pct"], r["partial"]) for r in got] == [
        (72.57, False), (100.0, True)]


def test_a_batch_written_day_is_complete_once_it_has_ended() -> None:
    # the health job writes whole days: its newest day is not "still filling"
    rows = [{**day_row(HEALTH, "2026-03-01"), "score": "0.87654321"}]
    q = service(HEALTH, rows, "2026-03-02T06:00")
    got = answered(q, HEALTH, "2026-03-01", "2026-03-03")
    assert got[0]["partial"] is False and got[0]["score"] == 0.8765
    q = service(HEALTH, rows, "2026-03-01T23:00")
    assert (answered(q, HEALTH, "2026-03-01", "2026-03-03"))[0]["partial"] is True


def test_partial_can_be_filtered_and_projected() -> None:
    rows = finish_rows([{"window_start": datetime(2026, 3, 2, 10, 15, tzinfo=UTC)}],
                       [], time_field="window_start", grain_ms=CURVE.grain_ms,
                       complete_before_ms=at("2026-03-02T10:30"))
    assert rows[0]["partial"] is False
    f = parse_filters(CURVE.answer_fields, ["partial=true"])
    assert f[0][0] == "partial" and f[0][2] is True
    assert parse_fields(CURVE.answer_names, "window_start,partial") == [
        "window_start", "partial"]
    # a dataset without a grain (alarms) has no partial column
    assert "partial" not in DATASETS["equipment_anomaly"].answer_names


def test_the_cache_key_moves_with_the_watermark_quarter() -> None:
    who = Principal(username="t", role=Role.ADMIN, regions=frozenset())
    hub = type("Hub", (), {"nonce": "n"})()

    def key(now: str) -> str:
        q = QueryService(SETTINGS, None, None, None, hub,  # type: ignore[arg-type]
                         clock=lambda: at(now) / 1000)
        return q.cache_key("/api/v1/datasets/load_curve", [("start", "x")], who)

    # the watermark (now - 5 min) enters a new quarter at hh:05, hh:20, ...
    assert key("2026-03-02T10:06") == key("2026-03-02T10:19")
    assert key("2026-03-02T10:19") != key("2026-03-02T10:21")
