"""Operational detail of a streaming job: what ``gridlake stream status`` reports.

A :class:`JobReport` gathers, for one named job:

- the process and Flink job (id, state) — :func:`jobs.streaming.control.status`;
- checkpoints — Flink REST ``/jobs/<id>/checkpoints``;
- operators — Flink REST ``/jobs/<id>`` vertices (``read-records`` / ``write-records``),
  and the records each table sink received (its writer's ``numRecordsIn``), grouped by
  lakehouse layer: a table name found in a vertex name is mapped to that table's layer;
- consumer lag per topic — Kafka: end offsets minus the consumer group's committed offsets;
- the last commit of every lake table — its Hudi timeline, listed over WebHDFS.

Every piece is fetched independently: a service that cannot be reached leaves its piece
empty and a one-line message in :attr:`JobReport.errors`; nothing raises.

The consumer group and topics are parameters (:func:`job_report`); :data:`JOB_SOURCES`
only holds the defaults of the known jobs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from infra.lake import LakeError, LakeNotFound, WebHdfs, lake_path, last_instant
from infra.settings import GridLakeSettings
from jobs.streaming import control
from lakehouse.contracts import TableContract
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.tables import TABLES

log = logging.getLogger(__name__)

#: Layer a sink writing the serving copy (``<table>_serving``, Redis) is reported under.
SERVING_LAYER = "serving"
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
# Report pieces
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint as Flink reports it.

    Attributes:
        id: Checkpoint id.
        status: ``COMPLETED``, ``IN_PROGRESS`` or ``FAILED``.
        trigger_ms: When it was triggered, epoch ms.
        end_ms: When the last acknowledgement arrived (completed), or when it failed.
        duration_ms: End-to-end duration (None while in progress).
        state_size: Full state size in bytes.
        checkpointed_size: Bytes written by this checkpoint (smaller when incremental).
        path: Where it is stored (completed checkpoints).
        failure: Failure message (failed checkpoints).

    """

    id: int
    status: str
    trigger_ms: int | None = None
    end_ms: int | None = None
    duration_ms: int | None = None
    state_size: int | None = None
    checkpointed_size: int | None = None
    path: str | None = None
    failure: str | None = None


@dataclass(frozen=True)
class CheckpointStats:
    """Checkpoint counts and the latest checkpoints of a Flink job."""

    completed: int
    failed: int
    in_progress: int
    restored: int
    last_completed: CheckpointInfo | None = None
    last_failed: CheckpointInfo | None = None
    in_flight: tuple[CheckpointInfo, ...] = ()


@dataclass(frozen=True)
class PartitionLag:
    """Lag of the consumer group on one partition.

    Attributes:
        partition: Partition number.
        end_offset: Offset of the next record to be written.
        committed: Offset the group committed, or None when it committed none.
        lag: Records not yet consumed: ``end - committed``; without a commit
            ``end - beginning`` (the job starts at the earliest retained record).

    """

    partition: int
    end_offset: int
    committed: int | None
    lag: int


@dataclass(frozen=True)
class TopicLag:
    """Lag of the consumer group on one topic, summed over its partitions.

    Attributes:
        topic: Full topic name.
        exists: Whether the topic exists.
        end_offset: Sum of the partitions' end offsets.
        committed: Sum of the committed offsets (partitions without a commit count 0).
        lag: Sum of the partitions' lags.
        uncommitted: Partitions the group has no committed offset for.
        partitions: Per-partition detail.

    """

    topic: str
    exists: bool
    end_offset: int = 0
    committed: int = 0
    lag: int = 0
    uncommitted: int = 0
    partitions: tuple[PartitionLag, ...] = ()


@dataclass(frozen=True)
class SinkTarget:
    """A lake table (or its serving copy) a vertex writes, and the table's layer."""

    table: str
    layer: str


@dataclass(frozen=True)
class OperatorStats:
    """One Flink job vertex (a chain of operators).

    Attributes:
        vertex_id: Flink vertex id.
        name: Vertex name (its chained operators).
        parallelism: Parallel subtasks.
        status: Vertex status, e.g. ``RUNNING``.
        records_in: ``read-records`` (records received; for sources: records read).
        records_out: ``write-records`` (records sent to the next vertices).
        sinks: Tables this vertex writes (found in its name).

    """

    vertex_id: str
    name: str
    parallelism: int
    status: str
    records_in: int | None
    records_out: int | None
    sinks: tuple[SinkTarget, ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        """Layers of the tables the vertex writes, in order, without repeats."""
        return tuple(dict.fromkeys(s.layer for s in self.sinks))


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


@dataclass(frozen=True)
class TableCommit:
    """The newest completed commit of a lake table.

    Attributes:
        table: Table name.
        layer: Its layer.
        path: HDFS path of the table.
        state: ``ok``, ``no table`` (no Hudi table at the path) or ``no commits``.
        instant: Instant time of the commit (``yyyyMMddHHmmssSSS``).
        action: ``commit``, ``deltacommit`` or ``replacecommit``.
        completed: Completion time of the instant.
        modified_ms: When the instant file was written, epoch ms.

    """

    table: str
    layer: str
    path: str
    state: str
    instant: str | None = None
    action: str | None = None
    completed: str | None = None
    modified_ms: int | None = None


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
# Parsing (no services)
# --------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"[A-Za-z0-9_]+")


def sink_targets(
    vertex_name: str, tables: Iterable[TableContract] = TABLES
) -> tuple[SinkTarget, ...]:
    """Tables named in a vertex (or metric scope) name, each with its layer.

    A word equal to a table name maps to the table's layer; ``<table>_serving`` (the
    Redis serving copy) maps to :data:`SERVING_LAYER`. E.g. ``"Calc[3] ->
    ods_meter_reading[4]: Writer"`` -> ``(SinkTarget("ods_meter_reading", "ods"),)``.
    """
    layers = {t.name: t.layer for t in tables}
    found: dict[str, SinkTarget] = {}
    for word in _TOKEN_RE.findall(vertex_name):
        if word in layers:
            found.setdefault(word, SinkTarget(word, layers[word]))
        elif word.endswith("_serving") and word[: -len("_serving")] in layers:
            found.setdefault(word, SinkTarget(word, SERVING_LAYER))
    return tuple(found.values())


def layer_of(vertex_name: str, tables: Iterable[TableContract] = TABLES) -> str | None:
    """The layer of the first table a vertex name mentions, or None."""
    targets = sink_targets(vertex_name, tables)
    return targets[0].layer if targets else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _checkpoint(entry: Mapping[str, Any] | None) -> CheckpointInfo | None:
    if not entry:
        return None

    def positive(key: str) -> int | None:
        value = _int(entry.get(key))
        return value if value is not None and value >= 0 else None

    status = str(entry.get("status") or entry.get("className", "")).upper()
    return CheckpointInfo(
        id=_int(entry.get("id")) or 0,
        status=status,
        trigger_ms=positive("trigger_timestamp"),
        end_ms=positive("failure_timestamp") if status == "FAILED"
        else positive("latest_ack_timestamp"),
        duration_ms=positive("end_to_end_duration"),
        state_size=positive("state_size"),
        checkpointed_size=positive("checkpointed_size"),
        path=entry.get("external_path"),
        failure=entry.get("failure_message"),
    )


def parse_checkpoints(payload: Mapping[str, Any]) -> CheckpointStats:
    """Interpret the body of Flink's ``/jobs/<id>/checkpoints``."""
    counts = payload.get("counts") or {}
    latest = payload.get("latest") or {}
    in_flight = tuple(
        cp for cp in (_checkpoint(h) for h in payload.get("history") or [])
        if cp is not None and cp.status == "IN_PROGRESS"
    )
    return CheckpointStats(
        completed=_int(counts.get("completed")) or 0,
        failed=_int(counts.get("failed")) or 0,
        in_progress=_int(counts.get("in_progress")) or 0,
        restored=_int(counts.get("restored")) or 0,
        last_completed=_checkpoint(latest.get("completed")),
        last_failed=_checkpoint(latest.get("failed")),
        in_flight=in_flight,
    )


def parse_vertices(
    payload: Mapping[str, Any], tables: Iterable[TableContract] = TABLES
) -> list[OperatorStats]:
    """Interpret the vertices of Flink's ``/jobs/<id>``."""
    table_list = list(tables)
    out = []
    for v in payload.get("vertices") or []:
        metrics = v.get("metrics") or {}
        name = str(v.get("name", ""))
        out.append(
            OperatorStats(
                vertex_id=str(v.get("id", "")),
                name=name,
                parallelism=_int(v.get("parallelism")) or 0,
                status=str(v.get("status", "")),
                records_in=_int(metrics.get("read-records")),
                records_out=_int(metrics.get("write-records")),
                sinks=sink_targets(name, table_list),
            )
        )
    return out


def sink_metric_ids(
    metric_ids: Iterable[str], tables: Iterable[TableContract] = TABLES
) -> dict[str, SinkTarget]:
    """Aggregated metric ids counting the records each table sink received.

    Flink names a sink writer's input counter ``<operator>.numRecordsIn`` with the
    operator name sanitised, e.g. ``ods_meter_reading[4]__Writer.numRecordsIn``. Only
    operators whose name mentions a table and that are writers (``Writer`` or
    ``Sink``) count: the ``ConstraintEnforcer`` before a sink does not.
    """
    table_list = list(tables)
    out: dict[str, SinkTarget] = {}
    for mid in metric_ids:
        scope, _, metric = mid.rpartition(".")
        if metric != "numRecordsIn" or not scope:
            continue
        if "Committer" in scope or ("Writer" not in scope and not scope.startswith("Sink")):
            continue
        targets = sink_targets(scope, table_list)
        if len(targets) == 1:
            out[mid] = targets[0]
    return out


def topic_lags(
    topics: Sequence[str],
    partitions: Mapping[str, Iterable[int]],
    end: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int],
    beginning: Mapping[tuple[str, int], int] | None = None,
) -> list[TopicLag]:
    """Lag per topic from per-partition offsets.

    Args:
        topics: Topics to report, in order.
        partitions: Partitions of each existing topic (a topic missing here, or with no
            partitions, is reported with ``exists=False``).
        end: End offset of every partition, keyed by ``(topic, partition)``.
        committed: Committed offset of the partitions the group committed.
        beginning: Earliest retained offset per partition (used where nothing was
            committed; 0 when absent).

    Returns:
        One :class:`TopicLag` per topic. Lag never goes below 0 (a committed offset
        beyond the end means the topic was recreated).

    """
    begin = beginning or {}
    out = []
    for topic in topics:
        parts = sorted(partitions.get(topic) or ())
        if not parts:
            out.append(TopicLag(topic=topic, exists=False))
            continue
        rows = []
        for p in parts:
            end_off = end.get((topic, p), 0)
            done = committed.get((topic, p))
            start = done if done is not None else begin.get((topic, p), 0)
            rows.append(PartitionLag(p, end_off, done, max(0, end_off - start)))
        out.append(
            TopicLag(
                topic=topic,
                exists=True,
                end_offset=sum(r.end_offset for r in rows),
                committed=sum(r.committed or 0 for r in rows),
                lag=sum(r.lag for r in rows),
                uncommitted=sum(1 for r in rows if r.committed is None),
                partitions=tuple(rows),
            )
        )
    return out


# --------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------
class ServiceUnavailable(Exception):
    """A service a report piece needs cannot be reached or answered with an error."""


def _group_offsets(admin: Any, group_id: str, timeout_s: float) -> dict[Any, Any]:
    """Committed offsets of a group, retrying Kafka's retriable errors until ``timeout_s``.

    A fresh broker answers the first group request with COORDINATOR_NOT_AVAILABLE while
    it creates ``__consumer_offsets``; that is "not yet", not "unavailable".
    """
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fetch = getattr(admin, "list_consumer_group_offsets", None)  # kafka-python 2.x
            if fetch is not None:
                return dict(fetch(group_id))
            # kafka-python 3.x
            return dict(admin.list_group_offsets({group_id: None}).get(group_id, {}))
        except KafkaError as err:
            if not err.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def consumer_lag(
    settings: GridLakeSettings, group_id: str, topics: Sequence[str], timeout_s: float = 5.0
) -> list[TopicLag]:
    """Committed offsets of ``group_id`` against the end offsets of ``topics``.

    Raises:
        ServiceUnavailable: Kafka cannot be reached or refuses the requests.

    """
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    timeout_ms = int(timeout_s * 1000)
    common = {
        "bootstrap_servers": settings.kafka.bootstrap,
        "client_id": "gridlake-monitor",
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    admin = consumer = None
    try:
        admin = KafkaAdminClient(**common)
        raw = _group_offsets(admin, group_id, timeout_s)
        committed = {
            (tp.topic, tp.partition): int(om.offset)
            for tp, om in raw.items() if om is not None and om.offset >= 0
        }
        consumer = KafkaConsumer(
            **common, enable_auto_commit=False, allow_auto_create_topics=False
        )
        parts = {t: sorted(consumer.partitions_for_topic(t) or ()) for t in topics}
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        end = consumer.end_offsets(tps, timeout_ms=timeout_ms) if tps else {}
        begin = consumer.beginning_offsets(tps, timeout_ms=timeout_ms) if tps else {}
    except Exception as err:  # kafka-python raises many unrelated error types
        text = str(err) if type(err).__name__ in str(err) else f"{type(err).__name__}: {err}"
        raise ServiceUnavailable(f"Kafka {settings.kafka.bootstrap}: {text}") from err
    finally:
        for client in (consumer, admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken client
                    log.debug("closing a Kafka client failed", exc_info=True)
    return topic_lags(
        topics,
        parts,
        {(tp.topic, tp.partition): int(o) for tp, o in end.items()},
        committed,
        {(tp.topic, tp.partition): int(o) for tp, o in begin.items()},
    )


def wait_caught_up(
    settings: GridLakeSettings, group_id: str, topics: Sequence[str], timeout_s: float,
    poll_s: float = 0.5,
) -> list[tuple[float, int]]:
    """Block until ``group_id`` has committed the end of every topic in ``topics``.

    A streaming job commits its offsets when a checkpoint completes, after every sink
    flushed: once committed equals end, everything published is in the lake.

    Returns:
        The samples taken: (monotonic time, total lag), the last one with lag 0.

    Raises:
        TimeoutError: Still behind after ``timeout_s``; the message names the lag per topic.

    """
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        lags = consumer_lag(settings, group_id, topics, timeout_s=30)
        behind = {t.topic: t.lag for t in lags if t.lag}
        samples.append((time.monotonic(), sum(behind.values())))
        if not behind:
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group_id} did not catch up in {timeout_s:.0f} s: {behind}")
        time.sleep(poll_s)


def last_commits(
    settings: GridLakeSettings,
    tables: Iterable[TableContract] = TABLES,
    timeout_s: float = 5.0,
) -> list[TableCommit]:
    """The newest completed commit of each table, from its Hudi timeline over WebHDFS.

    Raises:
        ServiceUnavailable: WebHDFS cannot be reached or answers with an error.

    """
    out = []
    try:
        with WebHdfs.from_settings(settings, timeout_s) as fs:
            for t in tables:
                path = lake_path(settings, t.layer, t.name)
                try:
                    instant = last_instant(fs, path)
                except LakeNotFound:
                    out.append(TableCommit(t.name, t.layer, path, "no table"))
                    continue
                if instant is None:
                    out.append(TableCommit(t.name, t.layer, path, "no commits"))
                else:
                    out.append(
                        TableCommit(
                            t.name, t.layer, path, "ok", instant.requested, instant.action,
                            instant.completed, instant.modified_ms or None,
                        )
                    )
    except LakeError as err:
        raise ServiceUnavailable(str(err)) from err
    return out


class FlinkRest:
    """Reads of Flink's REST API (the job's mini-cluster or a remote JobManager).

    Args:
        base_url: REST address, e.g. ``http://127.0.0.1:8081``.
        timeout_s: Seconds per request.
        transport: HTTP transport to use instead of the network (tests).

    """

    def __init__(
        self, base_url: str, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a REST path and decode its JSON.

        Raises:
            ServiceUnavailable: Not reachable, an HTTP error, or not JSON.

        """
        try:
            resp = self._http.get(self.base_url + path, params=params)
            resp.raise_for_status()
            return resp.json()
        except httpx.TransportError as err:
            raise ServiceUnavailable(f"Flink REST {self.base_url} unreachable: {err}") from err
        except httpx.HTTPStatusError as err:
            raise ServiceUnavailable(
                f"Flink REST {path}: HTTP {err.response.status_code}"
            ) from err
        except ValueError as err:
            raise ServiceUnavailable(f"Flink REST {path}: not JSON ({err})") from err

    def sink_records(
        self, job_id: str, vertex_id: str, tables: Iterable[TableContract] = TABLES
    ) -> dict[str, tuple[SinkTarget, int | None]]:
        """Records each table sink of one vertex received, summed over its subtasks."""
        base = f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics"
        ids = sink_metric_ids((m.get("id", "") for m in self.get(base)), tables)
        if not ids:
            return {}
        values = {
            m.get("id"): m.get("sum")
            for m in self.get(base, {"get": ",".join(ids)})
        }
        return {mid: (target, _int(values.get(mid))) for mid, target in ids.items()}


def flink_detail(
    report: JobReport, rest: FlinkRest, tables: Sequence[TableContract] = TABLES
) -> None:
    """Fill checkpoints, operators and sinks of ``report`` from Flink's REST API."""
    job_id = report.job.flink_job_id
    try:
        report.checkpoints = parse_checkpoints(rest.get(f"/jobs/{job_id}/checkpoints"))
    except ServiceUnavailable as err:
        report.errors["checkpoints"] = str(err)
    try:
        report.operators = parse_vertices(rest.get(f"/jobs/{job_id}"), tables)
    except ServiceUnavailable as err:
        report.errors["operators"] = str(err)
        return
    for op in report.operators:
        if not op.sinks:
            continue
        try:
            found = rest.sink_records(str(job_id), op.vertex_id, tables)
        except ServiceUnavailable as err:
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

    rest = FlinkRest(control.rest_url(settings), timeout_s)
    try:
        if report.job.flink_job_id is None:
            report.errors["flink"] = _no_job_reason(report.job, rest)
        else:
            flink_detail(report, rest, tables)
    finally:
        rest.close()

    if not group_id or not topics:
        report.errors["kafka"] = (
            f"no consumer group and topics known for job {name!r} (known: "
            f"{', '.join(JOB_SOURCES)}): pass them to see its lag"
        )
    else:
        try:
            report.lag = consumer_lag(settings, group_id, report.topics, timeout_s)
        except ServiceUnavailable as err:
            report.errors["kafka"] = str(err)
    try:
        report.commits = last_commits(settings, tables, timeout_s)
    except ServiceUnavailable as err:
        report.errors["lake"] = str(err)
    return report


def _no_job_reason(job: control.JobStatus, rest: FlinkRest) -> str:
    try:
        rest.get("/jobs/overview")
    except ServiceUnavailable as err:
        if not job.running:
            return f"job {job.name} is not running (no Flink REST endpoint at {rest.base_url})"
        return str(err)
    return f"no GridLake job on the Flink cluster at {rest.base_url}"

