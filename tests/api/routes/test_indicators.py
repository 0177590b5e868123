"""Every query endpoint against the pipeline's stored ADS tables, checked with the oracle.

The oracle frames (``tests.jobs.streaming.lakehouse_oracle``) are computed from the
scenario's messages; rankings are aggregated here with pandas, independently of the API.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.datasets import DATASETS
from lakehouse.contracts.precision import decimals, rounded
from tests.api.ads_data import World, close, ms, same_rows
from tests.api.conftest import Users

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START, END = "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z"
START_MS, END_MS = ms(START), ms(END)
RANGE = {"start": START, "end": END}


def _get(client: TestClient, users: Users, path: str, **params: Any) -> Any:
    r = client.get(path, params=params, headers=users.admin)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name", sorted(n for n in DATASETS
                                          if n not in ("equipment_anomaly", "asset_health")))
def test_every_dataset_equals_the_oracle(live: TestClient, live_users: Users, world: World,
                                         name: str) -> None:
    ds = DATASETS[name]
    body = _get(live, live_users, f"/api/v1/datasets/{name}", limit=10_000, **RANGE)
    want = world.rows_in(ds, START_MS, END_MS)
    assert body["total"] == len(want) > 0
    # the 15-minute tables start at 22:00: the lake is asked for the hours before
    assert body["sources"] == (["serving"] if ds.grain == "1d" else ["lake", "serving"])
    same_rows(ds, body["rows"], want, answered=True)
    times = [ms(r[ds.time_field]) for r in body["rows"]]
    assert times == sorted(times)  # default order: time first


def test_csv_equals_json(live: TestClient, live_users: Users) -> None:
    params = {**RANGE, "entity_type": "meter", "sort": "entity_id,day"}
    js = _get(live, live_users, "/api/v1/datasets/voltage_daily", **params)
    r = live.get("/api/v1/datasets/voltage_daily", headers=live_users.admin,
                 params={**params, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == js["total"] == len(js["rows"])
    for c, j in zip(rows, js["rows"], strict=True):
        assert c["entity_id"] == j["entity_id"] and c["day"] == j["day"]
        assert close(float(c["qualification_rate_pct"]), j["qualification_rate_pct"])


def test_paging_sorting_filtering_and_projection(live: TestClient, live_users: Users,
                                                 world: World) -> None:
    ds = DATASETS["load_curve"]
    frame = pd.DataFrame(world.rows_in(ds, START_MS, END_MS))
    meters = frame[(frame.entity_type == "meter") & (frame.load_kw > 1.0)]
    want = meters.sort_values(["load_kw", "entity_id"], ascending=[False, True])
    body = _get(live, live_users, "/api/v1/datasets/load_curve", entity_type="meter",
                filter="load_kw>1", sort="-load_kw,entity_id", limit=7, offset=3,
                fields="entity_id,window_start,load_kw", **RANGE)
    assert body["total"] == len(meters)
    assert [list(r) for r in body["rows"]] == [["entity_id", "window_start", "load_kw"]] * 7
    got = [(r["entity_id"], ms(r["window_start"]), r["load_kw"]) for r in body["rows"]]
    kw = decimals(next(f for f in ds.table.fields if f.name == "load_kw"))
    assert kw is not None
    assert got == [(e, w, rounded(v, kw)) for e, w, v in
                   want[["entity_id", "window_start", "load_kw"]].itertuples(index=False)][3:10]


def test_entity_indicators_at_both_grains(live: TestClient, live_users: Users,
                                          world: World) -> None:
    body = _get(live, live_users, "/api/v1/entities/transformer/TX-2/indicators",
                grain="1d", **RANGE)
    assert body["region_id"] == world.region("TX-2")
    assert set(body["datasets"]) == {"load_daily", "voltage_daily", "transformer_daily"}
    for name, rows in body["datasets"].items():
        ds = DATASETS[name]
        want = [r for r in world.rows_in(ds, START_MS, END_MS)
                if ds.row_entity(r) in (("transformer", "TX-2"), (None, "TX-2"))]
        assert want, name
        same_rows(ds, rows, want, answered=True)
    day = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    body = _get(live, live_users, "/api/v1/entities/meter/M-1/indicators", grain="15min",
                **day)
    assert set(body["datasets"]) == {"load_curve", "meter_energy_15min"}
    for name, rows in body["datasets"].items():
        ds = DATASETS[name]
        want = [r for r in world.rows_in(ds, ms(day["start"]), ms(day["end"]))
                if ds.row_entity(r)[1] == "M-1"]
        assert len(want) >= 90
        same_rows(ds, rows, want, answered=True)


def test_load_curve_of_a_feeder(live: TestClient, live_users: Users, world: World) -> None:
    day = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    body = _get(live, live_users, "/api/v1/entities/feeder/F1/load-curve", **day)
    ds = DATASETS["load_curve"]
    want = [r for r in world.rows_in(ds, ms(day["start"]), ms(day["end"]))
            if (r["entity_type"], r["entity_id"]) == ("feeder", "F1")]
    assert len(want) == 96 and body["total"] == 96
    same_rows(ds, body["rows"], want, answered=True)
    assert [r["point"] for r in body["rows"]] == list(range(96))


def _ranked(frame: pd.DataFrame, key: str, value: pd.Series, ascending: bool) -> list[tuple]:
    out = pd.DataFrame({"id": frame[key], "v": value}).groupby("id")["v"]
    return list(out.agg("max").reset_index().sort_values(
        ["v", "id"], ascending=[ascending, True]).itertuples(index=False, name=None))


def test_rankings_equal_an_independent_aggregation(live: TestClient, live_users: Users,
                                                   world: World) -> None:
    def oracle(table: str) -> pd.DataFrame:
        df = pd.DataFrame(world.rows_in(DATASETS[table], START_MS, END_MS))
        return df

    tx = oracle("transformer_daily")
    want = (tx.groupby("transformer_id")["loading_rate_pct"].max().reset_index()
            .sort_values(["loading_rate_pct", "transformer_id"], ascending=[False, True]))
    body = _get(live, live_users, "/api/v1/rankings/transformer_loading", **RANGE)
    got = [(r["rank"], r["entity_id"], r["value"]) for r in body["rows"]]
    # ranked at full precision, the value rounded to its unit's decimals (% : 2)
    assert got == [(i + 1, t, rounded(v, 2))
                   for i, (t, v) in enumerate(want.itertuples(index=False))]
    assert body["rows"][0]["entity_id"] == "TX-2"  # the scenario overloads TX-2
    assert body["rows"][0]["region_id"] == world.region("TX-2")

    volt = oracle("voltage_daily")
    meters = volt[volt.entity_type == "meter"].groupby("entity_id")[["qualified",
                                                                      "readings"]].sum()
    meters["rate"] = 100.0 * meters.qualified / meters.readings
    want_v = meters.reset_index().sort_values(["rate", "entity_id"])
    body = _get(live, live_users, "/api/v1/rankings/voltage_qualification",
                entity_type="meter", limit=3, **RANGE)
    assert body["total"] == len(want_v)
    got_v = [(r["entity_id"], r["value"]) for r in body["rows"]]
    assert [e for e, _ in got_v] == list(want_v.entity_id[:3])
    assert all(v == rounded(w, 2) for (_, v), w in zip(got_v, want_v.rate[:3], strict=True))
    assert body["rows"][0]["value"] < 100.0  # the undervoltage meter is worst

    q = oracle("quality_scorecard")
    sums = q.groupby("region_id")[["clean", "received", "quarantined"]].sum()
    sums["score"] = 100.0 * sums.clean / (sums.received + sums.quarantined)
    want_q = sums.reset_index().sort_values(["score", "region_id"])
    body = _get(live, live_users, "/api/v1/rankings/quality_score", **RANGE)
    assert [(r["entity_id"], r["value"]) for r in body["rows"]] == [
        (rid, rounded(s, 2)) for rid, s in zip(want_q.region_id, want_q.score, strict=True)]

    fd = oracle("feeder_daily")
    loss = fd.groupby("feeder_id")[["loss_kwh", "supply_kwh"]].sum()
    loss["rate"] = 100.0 * loss.loss_kwh / loss.supply_kwh
    want_l = loss[loss.supply_kwh > 0].reset_index().sort_values(
        ["rate", "feeder_id"], ascending=[False, True])
    body = _get(live, live_users, "/api/v1/rankings/line_loss", **RANGE)
    assert [r["entity_id"] for r in body["rows"]] == list(want_l.feeder_id)
    r = live.get("/api/v1/rankings/peak_load", headers=live_users.admin,
                 params={**RANGE, "format": "csv", "entity_type": "feeder"})
    lines = list(csv.reader(io.StringIO(r.text)))
    assert lines[0] == ["rank", "entity_type", "entity_id", "region_id", "value", "rows"]
    ld = oracle("load_daily")
    feeders = ld[ld.entity_type == "feeder"]
    assert [x[2] for x in lines[1:]] == [
        i for i, _ in _ranked(feeders, "entity_id", feeders.peak_load_kw, False)]


def test_quality_scorecards_of_a_region(live: TestClient, live_users: Users,
                                        world: World) -> None:
    body = _get(live, live_users, "/api/v1/quality/scorecards", region_id="R1", **RANGE)
    ds = DATASETS["quality_scorecard"]
    want = [r for r in world.rows_in(ds, START_MS, END_MS) if r["region_id"] == "R1"]
    assert len(want) == 3
    same_rows(ds, body["rows"], want, answered=True)


def test_meter_energy_route_of_the_first_release(live: TestClient, live_users: Users,
                                                 world: World) -> None:
    params = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T09:00:00Z"}
    body = _get(live, live_users, "/api/v1/meters/M-2/energy/15min", **params)
    ds = DATASETS["meter_energy_15min"]
    want = [r for r in world.rows_in(ds, ms(params["start"]), ms(params["end"]))
            if r["device_id"] == "M-2"]
    assert body["device_id"] == "M-2" and len(body["rows"]) == len(want) == 12
    same_rows(ds, body["rows"], want, answered=True)
    # unknown meter: an empty series, as the first release answered
    assert _get(live, live_users, "/api/v1/meters/NOPE/energy/15min", **params)["rows"] == []


def test_unknown_entities_are_404(live: TestClient, live_users: Users) -> None:
    h = live_users.admin
    for path, params in [
        ("/api/v1/entities/transformer/TX-404/indicators", RANGE),
        ("/api/v1/entities/feeder/TX-1/indicators", RANGE),  # exists, but not a feeder
        ("/api/v1/entities/region/R9/load-curve", RANGE),
        ("/api/v1/datasets/load_daily", {**RANGE, "entity_type": "meter", "entity_id": "X"}),
    ]:
        r = live.get(path, params=params, headers=h)
        assert r.status_code == 404, (path, r.text)
        assert "not found" in r.json()["detail"]


def test_unregistered_device_with_data_is_served_to_unscoped_users(
        live: TestClient, live_users: Users, world: World) -> None:
    # M-99 reports but was never registered (the scenario's unknown_device defect)
    ds = DATASETS["meter_energy_15min"]
    want = [r for r in world.rows_in(ds, START_MS, END_MS) if r["device_id"] == "M-99"]
    params = {**RANGE, "entity_id": "M-99"}
    r = live.get("/api/v1/datasets/meter_energy_15min", params=params,
                 headers=live_users.admin)
    assert r.status_code == 200
    same_rows(ds, r.json()["rows"], want, answered=True)
    scoped = live.get("/api/v1/datasets/meter_energy_15min", params=params,
                      headers=live_users.headers("viewer", ["R1", "R2"]))
    assert scoped.status_code == 404


def test_freshness_of_every_table(live: TestClient, live_users: Users, world: World) -> None:
    body = _get(live, live_users, "/api/v1/freshness")
    serving = {s["dataset"]: s for s in body["serving"]}
    for name, ds in DATASETS.items():
        # the batch jobs' tables (anomaly scoring, health) are not in the scenario
        rows = (world.rows(ds.table.name)
                if name not in ("equipment_anomaly", "asset_health") else [])
        assert serving[name]["rows"] == len(rows), name
        if rows:
            assert ms(serving[name]["last"]) == max(r[ds.time_field] for r in rows)
    lake = {t["table"]: t for t in body["lake"]}
    assert lake["ads_load_curve"]["state"] == "ok" and lake["ads_load_curve"]["age_s"] >= 0
    assert lake["ods_meter_reading"]["state"] == "missing"  # the run has ADS tables only
