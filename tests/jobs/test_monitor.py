"""``gridlake stream status`` detail (jobs.streaming.monitor, infra.lake timelines).

Unit tests parse captured Flink REST bodies, timeline file names and offsets; the
integration tests (``-m integration``) measure lag on the real Kafka and read timelines
written to the real HDFS.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.lake import WebHdfs, lake_path, newest_instant, parse_instant
from infra.settings import GridLakeSettings
from jobs.streaming import monitor
from jobs.streaming.monitor import (
    JobReport,
    SinkTarget,
    consumer_lag,
    job_report,
    last_commits,
    layer_of,
    parse_checkpoints,
    parse_vertices,
    sink_metric_ids,
    sink_targets,
    topic_lags,
)
from lakehouse.contracts.tables import TABLES
from ops.bench.isolation import free_port

# Vertex names as Flink 2.2 reports them for the meter pipeline (sinks chained).
V_SOURCE = (
    "Source: src_meter_reading[1] -> MiniBatchAssigner[2] -> (Calc[3] -> "
    "ConstraintEnforcer[4] -> ods_meter_reading[4]: Writer, Calc[5] -> Calc[6] -> "
    "ConstraintEnforcer[7] -> ods_quarantine[7]: Writer, Calc[8] -> "
    "(LocalGroupAggregate[9], LocalGroupAggregate[14]))"
)
V_ADS = (
    "Join[18] -> Calc[19] -> (ConstraintEnforcer[20] -> ads_meter_energy_15min[20]: Writer, "
    "ConstraintEnforcer[21] -> ads_meter_energy_15min_serving[21]: Writer)"
)

CHECKPOINTS = {
    "counts": {"restored": 0, "total": 7, "in_progress": 1, "completed": 2, "failed": 4},
    "latest": {
        "completed": {
            "className": "completed", "id": 2, "status": "COMPLETED", "is_savepoint": False,
            "trigger_timestamp": 1795225931624, "latest_ack_timestamp": 1795225937249,
            "checkpointed_size": 69883, "state_size": 73829, "end_to_end_duration": 5625,
            "num_subtasks": 4, "num_acknowledged_subtasks": 4, "checkpoint_type": "CHECKPOINT",
            "external_path": "file:/x/chk-2", "discarded": False,
        },
        "savepoint": None,
        "failed": {
            "className": "failed", "id": 1, "status": "FAILED",
            "trigger_timestamp": 1795225920000, "failure_timestamp": 1795225921000,
            "failure_message": "Checkpoint declined", "end_to_end_duration": 1000,
            "state_size": 0, "checkpointed_size": 0,
        },
        "restored": None,
    },
    "history": [
        {"className": "in_progress", "id": 3, "status": "IN_PROGRESS",
         "trigger_timestamp": 1795225937272, "latest_ack_timestamp": -1,
         "checkpointed_size": 0, "state_size": 0, "end_to_end_duration": -1},
        {"className": "completed", "id": 2, "status": "COMPLETED"},
    ],
}


# ---------------------------------------------------------------------------------------
# Timeline file names -> newest instant
# ---------------------------------------------------------------------------------------
TIMELINE = [
    "20261121004308654.clean.requested",
    "20261121004308654_20261121004308697.clean",
    "20261121004312671.commit.requested",
    "20261121004312671.inflight",
    "20261121004312671_20261121004313620.commit",
    "20261121004317671.commit.requested",
    "20261121004317671.inflight",
    "20261121004317671_20261121004318455.commit",
    "20261121004318523.clean.requested",
    "20261121004318523.clean.inflight",
    "20261121004318523_20261121004318574.clean",
    "20261121004320000.commit.requested",  # in flight: not completed
    "20261121004320000.inflight",
    "history",
]


def test_parse_instant_completed_only() -> None:
    i = parse_instant("20261121004317671_20261121004318455.commit", 7)
    assert i is not None
    assert (i.requested, i.completed, i.action, i.modified_ms) == (
        "20261121004317671", "20261121004318455", "commit", 7)
    legacy = parse_instant("20240101120000000.deltacommit")
    assert legacy is not None and legacy.completed is None and legacy.action == "deltacommit"
    for name in ("20261121004320000.commit.requested", "20261121004320000.inflight",
                 "20261121004318523.clean.inflight", "history", "hoodie.properties",
                 "20261121004320000.deltacommit.inflight"):
        assert parse_instant(name) is None, name


def test_newest_instant_is_the_last_completed_commit() -> None:
    newest = newest_instant(TIMELINE)
    assert newest is not None
    assert (newest.requested, newest.action) == ("20261121004317671", "commit")
    # any action: the clean that completed after it
    any_action = newest_instant(TIMELINE, actions=("commit", "clean"))
    assert any_action is not None and any_action.action == "clean"
    assert newest_instant(["20261121004308654_20261121004308697.clean"]) is None
    assert newest_instant([]) is None


def test_newest_instant_orders_by_completion_time() -> None:
    # requested earlier, completed later (a long write overtaken by a short one)
    names = ["20240101000000100_20240101000009000.commit",
             "20240101000000500_20240101000001000.deltacommit",
             "20240101000000900_20240101000002000.replacecommit"]
    newest = newest_instant(names)
    assert newest is not None and newest.requested == "20240101000000100"


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
# Lag arithmetic
# ---------------------------------------------------------------------------------------
def test_topic_lag_is_end_minus_committed() -> None:
    lags = topic_lags(
        ["a", "b", "gone"],
        {"a": [0, 1], "b": [0]},
        end={("a", 0): 100, ("a", 1): 50, ("b", 0): 10},
        committed={("a", 0): 90, ("a", 1): 50},
        beginning={("b", 0): 4},
    )
    a, b, gone = lags
    assert (a.exists, a.end_offset, a.committed, a.lag, a.uncommitted) == (True, 150, 140, 10, 0)
    assert [(p.partition, p.lag) for p in a.partitions] == [(0, 10), (1, 0)]
    # nothing committed: the job would start at the earliest retained record
    assert (b.lag, b.committed, b.uncommitted, b.partitions[0].committed) == (6, 0, 1, None)
    assert not gone.exists and gone.lag == 0
    # a committed offset past the end (topic recreated) never gives a negative lag
    (c,) = topic_lags(["c"], {"c": [0]}, {("c", 0): 5}, {("c", 0): 9})
    assert c.lag == 0


def _job(name: str = "lakehouse") -> monitor.control.JobStatus:
    return monitor.control.JobStatus(name=name, pid=None, running=False)


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
    import httpx

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

    report = JobReport(job=monitor.control.JobStatus("lakehouse", 1, True, "j1", "RUNNING"),
                       group_id="g", topics=[])
    rest = monitor.FlinkRest("http://flink", transport=httpx.MockTransport(handler))
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
    monitor.flink_detail(report, monitor.FlinkRest("http://flink",
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
    from ops.cli.main import app

    settings = offline
    for key, value in {
        "GRIDLAKE_HOME": str(settings.home),
        "GRIDLAKE_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "GRIDLAKE_HDFS__NAMENODE_HTTP_PORT": str(settings.hdfs.namenode_http_port),
        "GRIDLAKE_FLINK__REST_PORT": str(settings.flink.rest_port),
    }.items():
        monkeypatch.setenv(key, value)
    res = CliRunner().invoke(app, ["stream", "status", "--json", "--timeout", "1"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert set(data["errors"]) == {"flink", "kafka", "lake"}
    res = CliRunner().invoke(app, ["stream", "status", "--timeout", "1"])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "kafka:" in res.output and "lake:" in res.output and "not running" in res.output


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
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(settings.kafka.topic_prefix)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(settings.hdfs.lake_root, recursive=True)


@pytest.mark.integration
def test_lag_of_a_group_that_committed(isolated: GridLakeSettings) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata

    s = isolated
    topic, other = s.kafka.topic_prefix + "meter.readings", s.kafka.topic_prefix + "other"
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1), NewTopic(other, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap, acks="all")
    for i in range(30):
        producer.send(topic, value=b"x", partition=i % 2)
    for _ in range(4):
        producer.send(other, value=b"y", partition=0)
    producer.flush()
    producer.close()

    group = s.kafka.topic_prefix + "lakehouse"
    consumer = KafkaConsumer(bootstrap_servers=s.kafka.bootstrap, group_id=group,
                             enable_auto_commit=False)
    consumer.commit({
        TopicPartition(topic, 0): OffsetAndMetadata(11, "", -1),
        TopicPartition(topic, 1): OffsetAndMetadata(15, "", -1),
    })
    consumer.close()

    lags = {t.topic: t for t in consumer_lag(s, group, [topic, other, s.kafka.topic_prefix + "x"])}
    t = lags[topic]
    assert (t.end_offset, t.committed, t.lag, t.uncommitted) == (30, 26, 4, 0)
    assert [(p.partition, p.end_offset, p.committed, p.lag) for p in t.partitions] == [
        (0, 15, 11, 4), (1, 15, 15, 0)]
    assert (lags[other].lag, lags[other].uncommitted) == (4, 1)  # never committed
    assert not lags[s.kafka.topic_prefix + "x"].exists

    # the whole report: lag from Kafka, no job, every table still to be created
    report = job_report(s, "lakehouse")
    assert [(x.topic, x.lag) for x in report.lag if x.topic == topic] == [(topic, 4)]
    assert "flink" in report.errors and "kafka" not in report.errors
    assert "lake" not in report.errors
    assert {c.state for c in report.commits} == {"no table"}
    assert len(report.commits) == len(TABLES)


@pytest.mark.integration
def test_last_commit_from_a_timeline_on_hdfs(isolated: GridLakeSettings) -> None:
    s = isolated
    ods, dwd, dim = TABLES[0], next(t for t in TABLES if t.layer == "dwd"), next(
        t for t in TABLES if t.layer == "dim")
    with WebHdfs.from_settings(s) as fs:
        base = lake_path(s, ods.layer, ods.name)
        for name in TIMELINE[:-1]:
            fs.write(f"{base}/.hoodie/timeline/{name}", b"")
        fs.mkdirs(f"{base}/.hoodie/timeline/history")
        fs.mkdirs(f"{lake_path(s, dwd.layer, dwd.name)}/.hoodie/timeline")  # no commits yet
        fs.write(f"{lake_path(s, dim.layer, dim.name)}/.hoodie/20240101000000000.commit", b"")
        assert fs.exists(f"{base}/.hoodie/timeline/history")
        assert not fs.exists(f"{base}/.hoodie/hoodie.properties")
    commits = {c.table: c for c in last_commits(s)}
    got = commits[ods.name]
    assert (got.state, got.instant, got.action, got.completed) == (
        "ok", "20261121004317671", "commit", "20261121004318455")
    assert got.modified_ms and got.path == f"{s.hdfs.lake_root}/ods/{ods.name}"
    assert commits[dwd.name].state == "no commits"
    legacy = commits[dim.name]
    assert (legacy.state, legacy.instant, legacy.completed) == ("ok", "20240101000000000", None)
    assert sum(c.state == "no table" for c in commits.values()) == len(TABLES) - 3


@pytest.mark.integration
def test_cli_status_on_the_stack(isolated: GridLakeSettings) -> None:
    import subprocess
    import sys

    from infra.settings import REPO_ROOT

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
         "--topic", s.kafka.topic_prefix + "nothing", "--group", "g"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert res.returncode == 1, res.stderr  # not running
    assert "Traceback" not in res.stderr
    assert "no topic" in res.stdout and "no table" in res.stdout
    assert "last commit per table" in res.stdout


def test_group_offsets_retries_a_coordinator_still_loading() -> None:
    from kafka.errors import CoordinatorNotAvailableError, GroupAuthorizationFailedError

    from jobs.streaming.monitor import _group_offsets

    class Admin:
        """Answers like a fresh broker: twice 'coordinator not available', then offsets."""

        def __init__(self, error: Exception) -> None:
            self.calls, self.error = 0, error

        def list_group_offsets(self, groups: dict) -> dict:
            self.calls += 1
            if self.calls < 3:
                raise self.error
            return {next(iter(groups)): {"tp": 5}}

    admin = Admin(CoordinatorNotAvailableError())
    assert _group_offsets(admin, "g", timeout_s=5) == {"tp": 5} and admin.calls == 3
    with pytest.raises(GroupAuthorizationFailedError):  # not retriable: raised at once
        _group_offsets(Admin(GroupAuthorizationFailedError()), "g", timeout_s=5)
