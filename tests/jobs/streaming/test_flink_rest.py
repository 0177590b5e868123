"""Flink's REST API (jobs.streaming.flink_rest): the client's errors and the parsing of
captured answers (no Flink needed)."""

from __future__ import annotations

import httpx
import pytest

from jobs.streaming.flink_rest import (
    FlinkRest,
    FlinkUnavailable,
    SinkTarget,
    layer_of,
    parse_checkpoints,
    sink_metric_ids,
    sink_targets,
)
from lakehouse.contracts.tables import TABLES
from ops.bench.isolation import free_port
from tests.jobs.streaming.flink_answers import CHECKPOINTS, V_ADS, V_SOURCE


# ---------------------------------------------------------------------------------------
# Vertex name -> layer
# ---------------------------------------------------------------------------------------
def test_vertex_names_map_to_layers() -> None:
    assert sink_targets(V_SOURCE) == (
        SinkTarget("ods_meter_reading", "ods"), SinkTarget("ods_quarantine", "ods"))
    assert sink_targets(V_ADS) == (
        SinkTarget("ads_meter_energy_15min", "ads"),
        SinkTarget("ads_meter_energy_15min_serving", "serving"),
    )
    assert layer_of("Sink: dwd_meter_reading[12]") == "dwd"
    assert layer_of("Sink: dim_device[3]: Writer") == "dim"
    assert layer_of("dws_load[40]: Writer") == "dws"
    assert layer_of("GlobalGroupAggregate[11] -> Calc[12]") is None
    # a table name must be a whole word: no ods_ match inside dwd_meter_reading
    assert sink_targets("Sink: dwd_meter_reading[5]") == (
        SinkTarget("dwd_meter_reading", "dwd"),)
    assert layer_of("Source: src_meter_reading[1]") is None


def test_every_contract_table_is_recognised() -> None:
    for t in TABLES:
        assert layer_of(f"Calc[1] -> {t.name}[2]: Writer") == t.layer


def test_sink_metric_ids_only_count_writers() -> None:
    ids = [
        "ods_meter_reading[4]__Writer.numRecordsIn",
        "ods_meter_reading[4]__Writer.numRecordsInPerSecond",
        "ods_quarantine[7]__Writer.numRecordsIn",
        "ConstraintEnforcer[4].numRecordsIn",
        "Source__src_meter_reading[1].numRecordsIn",
        "ads_meter_energy_15min_serving[21]__Writer.numRecordsIn",
        "numRecordsIn",
    ]
    assert sink_metric_ids(ids) == {
        "ods_meter_reading[4]__Writer.numRecordsIn": SinkTarget("ods_meter_reading", "ods"),
        "ods_quarantine[7]__Writer.numRecordsIn": SinkTarget("ods_quarantine", "ods"),
        "ads_meter_energy_15min_serving[21]__Writer.numRecordsIn":
            SinkTarget("ads_meter_energy_15min_serving", "serving"),
    }


def test_parse_checkpoints() -> None:
    cps = parse_checkpoints(CHECKPOINTS)
    assert (cps.completed, cps.failed, cps.in_progress, cps.restored) == (2, 4, 1, 0)
    last = cps.last_completed
    assert last is not None
    assert (last.id, last.end_ms, last.duration_ms, last.state_size, last.checkpointed_size,
            last.path) == (2, 1795225937249, 5625, 73829, 69883, "file:/x/chk-2")
    assert cps.last_failed is not None
    assert (cps.last_failed.id, cps.last_failed.end_ms, cps.last_failed.failure) == (
        1, 1795225921000, "Checkpoint declined")
    assert [(c.id, c.trigger_ms, c.end_ms, c.duration_ms) for c in cps.in_flight] == [
        (3, 1795225937272, None, None)]
    empty = parse_checkpoints({"counts": {}, "latest": None, "history": []})
    assert empty.completed == 0 and empty.last_completed is None and empty.in_flight == ()


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------
def test_client_gets_and_posts_json() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        if request.url.path == "/jobs/j1/stop":
            return httpx.Response(202, json={"request-id": "r1"})
        return httpx.Response(200, json={"jobs": []})

    with FlinkRest("http://flink/", transport=httpx.MockTransport(handler)) as rest:
        assert rest.base_url == "http://flink"
        assert rest.get("/jobs/overview") == {"jobs": []}
        assert rest.post("/jobs/j1/stop", {"drain": False}) == {"request-id": "r1"}
    assert seen[0][:2] == ("GET", "/jobs/overview")
    assert seen[1] == ("POST", "/jobs/j1/stop", b'{"drain":false}')


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(404), "Flink REST /jobs/x: HTTP 404"),
    (httpx.Response(200, content=b"<html>"), "Flink REST /jobs/x: not JSON"),
])
def test_client_errors_are_flink_unavailable(response: httpx.Response, message: str) -> None:
    rest = FlinkRest("http://flink", transport=httpx.MockTransport(lambda r: response))
    with pytest.raises(FlinkUnavailable, match=message):
        rest.get("/jobs/x")
    rest.close()


def test_nobody_listening_is_flink_unavailable() -> None:
    with FlinkRest(f"http://127.0.0.1:{free_port()}", timeout_s=1) as rest, pytest.raises(
            FlinkUnavailable, match="unreachable"):
        rest.get("/jobs/overview")
