"""``gridlake stream status`` detail (jobs.streaming.monitor): the report assembled from
Flink's answers, and each piece degrading on its own when its service is down.

Unit tests use captured Flink REST bodies; the integration tests (``-m integration``)
report on the real Kafka and HDFS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from infra.kafka_lag import topic_lags
from infra.lake import WebHdfs
from infra.settings import REPO_ROOT, GridLakeSettings
from jobs.streaming import control, monitor
from jobs.streaming.flink_rest import FlinkRest, parse_checkpoints, parse_vertices
from jobs.streaming.monitor import JobReport, job_report
from lakehouse.contracts.tables import TABLES
from ops.bench.isolation import free_port
from ops.cli.main import app
from tests.infra.kafka_offsets import committed_group, delete_topics
from tests.jobs.streaming.flink_answers import CHECKPOINTS, V_ADS, V_SOURCE


# ---------------------------------------------------------------------------------------
# Flink's answers -> the report
# ---------------------------------------------------------------------------------------
def test_parse_vertices_and_group_by_layer() -> None:
    payload = {"vertices": [
        {"id": "a", "name": V_SOURCE, "parallelism": 1, "status": "RUNNING",
         "metrics": {"read-records": 289, "write-records": 72}},
        {"id": "b", "name": "GlobalGroupAggregate[16]", "parallelism": 2, "status": "RUNNING",
         "metrics": {"read-records": 36, "write-records": 51}},
        {"id": "c", "name": V_ADS, "parallelism": 1, "status": "RUNNING", "metrics": {}},
    ]}
    ops = parse_vertices(payload)
    assert [(o.vertex_id, o.records_in, o.records_out, o.layers) for o in ops] == [
        ("a", 289, 72, ("ods",)), ("b", 36, 51, ()), ("c", None, None, ("ads", "serving"))]
    report = JobReport(job=_job(), group_id="g", topics=[], operators=ops)
    grouped = report.operators_by_layer()
    assert [o.vertex_id for o in grouped["ods"]] == ["a"]
    assert [o.vertex_id for o in grouped[""]] == ["b"]
    assert [o.vertex_id for o in grouped["serving"]] == ["c"]


def _job(name: str = "lakehouse") -> control.JobStatus:
    return control.JobStatus(name=name, pid=None, running=False)


def test_report_as_dict_is_json() -> None:
    report = JobReport(
        job=_job(), group_id="g", topics=["t"],
        checkpoints=parse_checkpoints(CHECKPOINTS),
        operators=parse_vertices({"vertices": [{"id": "c", "name": V_ADS}]}),
        sinks=[monitor.SinkStats("ads_meter_energy_15min", "ads", "c", 3)],
        lag=topic_lags(["t"], {"t": [0]}, {("t", 0): 7}, {("t", 0): 2}),
        errors={"lake": "down"},
    )
    data = json.loads(json.dumps(report.as_dict()))
    assert data["total_lag"] == 5
    assert data["sinks_by_layer"] == {"ads": ["ads_meter_energy_15min"]}
    assert data["operators"][0]["layers"] == ["ads", "serving"]
    assert data["checkpoints"]["last_completed"]["id"] == 2


def test_flink_detail_from_rest() -> None:
    vertices = {"vertices": [
        {"id": "a", "name": V_SOURCE, "parallelism": 1, "status": "RUNNING",
         "metrics": {"read-records": 289, "write-records": 72}},
        {"id": "b", "name": "GlobalGroupAggregate[16]", "parallelism": 1, "status": "RUNNING",
         "metrics": {"read-records": 36, "write-records": 51}},
        {"id": "c", "name": V_ADS, "parallelism": 1, "status": "RUNNING",
         "metrics": {"read-records": 102, "write-records": 0}},
    ]}
    metric_ids = {
        "a": ["ods_meter_reading[4]__Writer.numRecordsIn", "ods_quarantine[7]__Writer.numRecordsIn",
              "ConstraintEnforcer[4].numRecordsIn", "numRecordsIn"],
        "c": ["ads_meter_energy_15min[20]__Writer.numRecordsIn"],  # serving counter missing
    }
    sums = {"ods_meter_reading[4]__Writer.numRecordsIn": 286.0,
            "ods_quarantine[7]__Writer.numRecordsIn": 3.0,
            "ads_meter_energy_15min[20]__Writer.numRecordsIn": 53.0}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(path)
        if path == "/jobs/j1/checkpoints":
            return httpx.Response(200, json=CHECKPOINTS)
        if path == "/jobs/j1":
            return httpx.Response(200, json=vertices)
        vertex = path.split("/")[4]
        if "get" in request.url.params:
            wanted = request.url.params["get"].split(",")
            return httpx.Response(200, json=[{"id": m, "sum": sums[m]} for m in wanted])
        return httpx.Response(200, json=[{"id": m} for m in metric_ids.get(vertex, [])])

    report = JobReport(job=control.JobStatus("lakehouse", 1, True, "j1", "RUNNING"),
                       group_id="g", topics=[])
    rest = FlinkRest("http://flink", transport=httpx.MockTransport(handler))
    monitor.flink_detail(report, rest)
    assert report.errors == {}
    assert report.checkpoints is not None and report.checkpoints.completed == 2
    assert [(s.table, s.layer, s.records_in) for s in report.sinks] == [
        ("ods_meter_reading", "ods", 286), ("ods_quarantine", "ods", 3),
        ("ads_meter_energy_15min", "ads", 53),
        ("ads_meter_energy_15min_serving", "serving", None)]
    assert list(report.sinks_by_layer()) == ["ods", "ads", "serving"]
    assert "/jobs/j1/vertices/b/subtasks/metrics" not in seen  # writes no table

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500) if "checkpoints" in request.url.path else handler(request)

    report = JobReport(job=report.job, group_id="g", topics=[])
    monitor.flink_detail(report, FlinkRest("http://flink",
                                           transport=httpx.MockTransport(broken)))
    assert "HTTP 500" in report.errors["checkpoints"] and len(report.operators) == 3


# ---------------------------------------------------------------------------------------
# Every service down: each piece says why, nothing raises
# ---------------------------------------------------------------------------------------
@pytest.fixture
def offline(settings: GridLakeSettings) -> GridLakeSettings:
    """Settings whose every service address (Flink REST included) has nobody listening."""
    return settings.model_copy(
        update={"flink": settings.flink.model_copy(update={"rest_port": free_port()})}
    )


def test_report_degrades_when_nothing_is_reachable(offline: GridLakeSettings) -> None:
    settings = offline
    report = job_report(settings, "lakehouse", timeout_s=1)
    assert not report.job.running and report.job.flink_job_id is None
    assert set(report.errors) == {"flink", "kafka", "lake"}
    assert "not running" in report.errors["flink"]
    assert settings.kafka.bootstrap in report.errors["kafka"]
    assert "unreachable" in report.errors["lake"]
    assert report.group_id == settings.kafka.topic_prefix + "lakehouse"
    assert report.lag == [] and report.commits == [] and report.checkpoints is None


def test_unknown_job_needs_group_and_topics(offline: GridLakeSettings) -> None:
    settings = offline
    report = job_report(settings, "nope", timeout_s=1)
    assert "pass them" in report.errors["kafka"]
    report = job_report(settings, "nope", group_id="g", topics=["t"], timeout_s=1)
    assert settings.kafka.bootstrap in report.errors["kafka"]
    assert (report.group_id, report.topics) == ("g", ["t"])


def test_cli_status_json_without_services(
    offline: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = offline
    for key, value in {
        "GRIDLAKE_HOME": str(settings.home),
        "GRIDLAKE_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "GRIDLAKE_HDFS__NAMENODE_HTTP_PORT": str(settings.hdfs.namenode_http_port),
        "GRIDLAKE_FLINK__REST_PORT": str(settings.flink.rest_port),
    }.items():
        monkeypatch.setenv(key, value)
    res = CliRunner().invoke(app, ["stream", "status", "--verbose", "--json", "--timeout", "1"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert set(data["errors"]) == {"flink", "kafka", "lake"}
    res = CliRunner().invoke(app, ["stream", "status", "--verbose", "--timeout", "1"])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "kafka:" in res.output and "lake:" in res.output and "not running" in res.output
    # the short default view: a few lines, the unreachable Kafka named in the lag line
    res = CliRunner().invoke(app, ["stream", "status", "--json", "--timeout", "1"])
    assert res.exit_code == 1, res.output
    short = json.loads(res.stdout)
    assert short["running"] is False
    assert str(short["Kafka lag"]).startswith("unknown (")
    res = CliRunner().invoke(app, ["stream", "status", "--timeout", "1"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert 5 <= len(res.output.splitlines()) <= 12


# ---------------------------------------------------------------------------------------
# Integration: real Kafka and HDFS
# ---------------------------------------------------------------------------------------
@pytest.fixture
def isolated(stack: GridLakeSettings, tmp_path: Path) -> Iterator[GridLakeSettings]:
    """The stack's settings with this test's own topic prefix, lake root, home (pid files)
    and Flink REST port: no streaming job of anyone else is seen."""
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(
        update={
            "home": tmp_path / "home",
            "kafka": stack.kafka.model_copy(update={"topic_prefix": f"m{run}."}),
            "hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/m{run}"}),
            "flink": stack.flink.model_copy(update={"rest_port": free_port()}),
        }
    )
    yield settings
    delete_topics(settings)
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(settings.hdfs.lake_root, recursive=True)


@pytest.mark.integration
def test_report_with_the_lag_of_a_group_that_committed(isolated: GridLakeSettings) -> None:
    s = isolated
    topic = committed_group(s).topic

    # the whole report: lag from Kafka, no job, every table still to be created
    report = job_report(s, "lakehouse")
    assert [(x.topic, x.lag) for x in report.lag if x.topic == topic] == [(topic, 4)]
    assert "flink" in report.errors and "kafka" not in report.errors
    assert "lake" not in report.errors
    assert {c.state for c in report.commits} == {"no table"}
    assert len(report.commits) == len(TABLES)


@pytest.mark.integration
def test_cli_status_on_the_stack(isolated: GridLakeSettings) -> None:
    s = isolated
    env = {
        **os.environ,
        "GRIDLAKE_HOME": str(s.home),
        "GRIDLAKE_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
        "GRIDLAKE_HDFS__LAKE_ROOT": s.hdfs.lake_root,
        "GRIDLAKE_FLINK__REST_PORT": str(s.flink.rest_port),
    }
    res = subprocess.run(
        [sys.executable, "-m", "ops.cli.main", "stream", "status", "lakehouse",
         "--topic", s.kafka.topic_prefix + "nothing", "--group", "g", "--verbose"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert res.returncode == 1, res.stderr  # not running
    assert "Traceback" not in res.stderr
    assert "no topic" in res.stdout and "no table" in res.stdout
    assert "last commit per table" in res.stdout
