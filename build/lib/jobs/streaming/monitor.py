"""Operational detail of a streaming job: what ``gridlake stream status`` reports.

A :class:`JobReport` gathers, for one named job:

- the process and Flink job (id, state) — :func:`jobs.streaming.control.status`;
- checkpoints — Flink REST ``/jobs/<id>/checkpoints``;
- operators — Flink REST ``/jobs/<id>`` vertices (``read-records`` / ``write-records``),
  and the records each table sink received (its writer's ``numRecordsIn``), grouped by
  lakehouse layer (the Flink parts: :mod:`jobs.streaming.flink_rest`);
- consumer lag per topic — Kafka: end offsets minus the consumer group's committed offsets
  (:func:`infra.kafka_lag.consumer_lag`);
- the last commit of every lake table — its Hudi timeline, listed over WebHDFS
  (:func:`infra.lake.last_commits`).

Every piece is fetched independently: a service that cannot be reached leaves its piece
empty and a one-line message in :attr:`JobReport.errors`; nothing raises.

The consumer group and topics are parameters (:func:`job_report`); :data:`JOB_SOURCES`
only holds the defaults of the known jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.kafka_client import KafkaUnavailableError
from infra.kafka_lag import TopicLag, consumer_lag
from infra.lake import LakeError, TableCommit, last_commits
from infra.settings import GridLakeSettings
from jobs.streaming import control
from jobs.streaming.flink_rest import (
    CheckpointStats,
    FlinkRest,
    FlinkUnavailable,
    OperatorStats,
    parse_checkpoints,
    parse_vertices,
)
from lakehouse.contracts import TableContract
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.tables import TABLES

log = logging.getLogger(__name__)

#: Layer of vertices that write no lake table (sources, joins, aggregates).
NO_LAYER = ""


@dataclass(frozen=True)
class JobSource:
    """What a streaming job consumes: consumer group suffix and topic suffixes.

    The full group id is ``settings.kafka.topic_prefix + group_suffix``, the full topic
    names ``settings.kafka.topic_prefix + topic``.
    """

    group_suffix: str
    topics: tuple[str, ...]

    def group_id(self, settings: GridLakeSettings) -> str:
        """Consumer group id of the job under ``settings``."""
        return settings.kafka.topic_prefix + self.group_suffix

    def topic_names(self, settings: GridLakeSettings) -> list[str]:
        """Full topic names under ``settings``."""
        return [settings.kafka.topic_prefix + t for t in self.topics]


#: Default consumer group and topics of each known job (``gridlake stream status NAME``).
JOB_SOURCES: dict[str, JobSource] = {
    "lakehouse": JobSource("lakehouse", tuple(m.topic for m in MESSAGES)),
}


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SinkStats:
    """Records one table sink received.

    Attributes:
        table: Table name (``<table>_serving`` for a Redis serving copy).
        layer: Lakehouse layer (``serving`` for a serving copy).
        vertex_id: Vertex the sink runs in.
        records_in: Its writer's ``numRecordsIn`` summed over subtasks; None when Flink
            does not report it.

    """

    table: str
    layer: str
    vertex_id: str
    records_in: int | None


@dataclass
class JobReport:
    """Everything ``gridlake stream status`` shows for one job.

    Attributes:
        job: Process and Flink job state.
        group_id: Kafka consumer group whose lag is reported.
        topics: Topics the lag covers.
        checkpoints: Checkpoint statistics (None when unavailable).
        operators: Job vertices with record counts.
        sinks: Records per table sink.
        lag: Consumer lag per topic.
        commits: Last commit per lake table.
        errors: Piece (``flink``, ``checkpoints``, ``operators``, ``kafka``, ``lake``) ->
            why it is missing or incomplete.

    """

    job: control.JobStatus
    group_id: str
    topics: list[str]
    checkpoints: CheckpointStats | None = None
    operators: list[OperatorStats] = field(default_factory=list)
    sinks: list[SinkStats] = field(default_factory=list)
    lag: list[TopicLag] = field(default_factory=list)
    commits: list[TableCommit] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def total_lag(self) -> int:
        """Lag summed over every topic."""
        return sum(t.lag for t in self.lag)

    def sinks_by_layer(self) -> dict[str, list[SinkStats]]:
        """Table sinks grouped by layer, in the order the layers first appear."""
        out: dict[str, list[SinkStats]] = {}
        for s in self.sinks:
            out.setdefault(s.layer, []).append(s)
        return out

    def operators_by_layer(self) -> dict[str, list[OperatorStats]]:
        """Vertices grouped by the layers they write (``""``: no table)."""
        out: dict[str, list[OperatorStats]] = {}
        for op in self.operators:
            for layer in op.layers or (NO_LAYER,):
                out.setdefault(layer, []).append(op)
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "job": self.job.as_dict(),
            "group_id": self.group_id,
            "topics": list(self.topics),
            "checkpoints": asdict(self.checkpoints) if self.checkpoints else None,
            "operators": [
                {**asdict(op), "layers": list(op.layers)} for op in self.operators
            ],
            "sinks": [asdict(s) for s in self.sinks],
            "sinks_by_layer": {
                layer: [s.table for s in sinks]
                for layer, sinks in self.sinks_by_layer().items()
            },
            "lag": [asdict(t) for t in self.lag],
            "total_lag": self.total_lag,
            "commits": [asdict(c) for c in self.commits],
            "errors": dict(self.errors),
        }


# --------------------------------------------------------------------------------------
# Assembling it
# --------------------------------------------------------------------------------------
def flink_detail(
    report: JobReport, rest: FlinkRest, tables: Sequence[TableContract] = TABLES
) -> None:
    """Fill checkpoints, operators and sinks of ``report`` from Flink's REST API."""
    job_id = report.job.flink_job_id
    try:
        report.checkpoints = parse_checkpoints(rest.get(f"/jobs/{job_id}/checkpoints"))
    except FlinkUnavailable as err:
        report.errors["checkpoints"] = str(err)
    try:
        report.operators = parse_vertices(rest.get(f"/jobs/{job_id}"), tables)
    except FlinkUnavailable as err:
        report.errors["operators"] = str(err)
        return
    for op in report.operators:
        if not op.sinks:
            continue
        try:
            found = rest.sink_records(str(job_id), op.vertex_id, tables)
        except FlinkUnavailable as err:
            report.errors["operators"] = f"sink metrics: {err}"
            found = {}
        records = {target.table: count for target, count in found.values()}
        for target in op.sinks:  # in the vertex's order; None: Flink lists no counter
            report.sinks.append(
                SinkStats(target.table, target.layer, op.vertex_id, records.get(target.table))
            )


def job_report(
    settings: GridLakeSettings,
    name: str,
    group_id: str | None = None,
    topics: Sequence[str] | None = None,
    tables: Sequence[TableContract] = TABLES,
    timeout_s: float = 5.0,
) -> JobReport:
    """Gather the operational report of streaming job ``name``.

    Args:
        settings: GridLake settings.
        name: Job name (``gridlake stream status NAME``).
        group_id: Kafka consumer group; default: from :data:`JOB_SOURCES`.
        topics: Full topic names the lag covers; default: from :data:`JOB_SOURCES`.
        tables: Lake tables whose last commit is reported (and whose names identify
            sinks).
        timeout_s: Seconds per request to each service.

    Returns:
        The report; unreachable services (and a job without a known consumer group)
        are named in :attr:`JobReport.errors`.

    """
    source = JOB_SOURCES.get(name)
    if source is not None:
        group_id = source.group_id(settings) if group_id is None else group_id
        topics = source.topic_names(settings) if topics is None else topics
    report = JobReport(job=control.status(settings, name), group_id=group_id or "",
                       topics=list(topics or ()))

    with FlinkRest(control.rest_url(settings), timeout_s) as rest:
        if report.job.flink_job_id is None:
            report.errors["flink"] = _no_job_reason(report.job, rest)
        else:
            flink_detail(report, rest, tables)

    if not group_id or not topics:
        report.errors["kafka"] = (
            f"no consumer group and topics known for job {name!r} (known: "
            f"{', '.join(JOB_SOURCES)}): pass them to see its lag"
        )
    else:
        try:
            report.lag = consumer_lag(settings, group_id, report.topics, timeout_s)
        except KafkaUnavailableError as err:
            report.errors["kafka"] = str(err)
    try:
        report.commits = last_commits(settings, tables, timeout_s)
    except LakeError as err:
        report.errors["lake"] = str(err)
    return report


def _no_job_reason(job: control.JobStatus, rest: FlinkRest) -> str:
    try:
        rest.get("/jobs/overview")
    except FlinkUnavailable as err:
        if not job.running:
            return f"job {job.name} is not running (no Flink REST endpoint at {rest.base_url})"
        return str(err)
    return f"no GridLake job on the Flink cluster at {rest.base_url}"
