"""Flink's REST API: the client every GridLake caller uses, and the reading of its answers.

:class:`FlinkRest` talks to a job's REST endpoint (the local mini-cluster of a job started
by :mod:`jobs.streaming.control`, or a remote JobManager); any failure (unreachable, HTTP
error, not JSON) is one :class:`FlinkUnavailable`. The parsing functions turn its bodies
into typed records without any service:

- ``/jobs/<id>/checkpoints`` -> :class:`CheckpointStats` (:func:`parse_checkpoints`);
- ``/jobs/<id>`` vertices -> :class:`OperatorStats` (:func:`parse_vertices`), each with
  the lake tables it writes: a table name found in a vertex name is mapped to that table's
  layer (:func:`sink_targets`);
- a vertex's subtask metrics -> the records each table sink received
  (:func:`sink_metric_ids`, :meth:`FlinkRest.sink_records`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from lakehouse.contracts import TableContract
from lakehouse.contracts.tables import TABLES

#: Layer a sink writing the serving copy (``<table>_serving``, Redis) is reported under.
SERVING_LAYER = "serving"


class FlinkUnavailable(Exception):
    """Flink's REST endpoint cannot be reached, answered with an HTTP error or not JSON."""


# --------------------------------------------------------------------------------------
# Answers
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


# --------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------
class FlinkRest:
    """Flink's REST API (the job's mini-cluster or a remote JobManager).

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

    def __enter__(self) -> FlinkRest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a REST path and decode its JSON.

        Raises:
            FlinkUnavailable: Not reachable, an HTTP error, or not JSON.

        """
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST ``body`` as JSON to a REST path and decode the JSON answer.

        Raises:
            FlinkUnavailable: Not reachable, an HTTP error, or not JSON.

        """
        return self._request("POST", path, json=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, self.base_url + path, **kwargs)
            resp.raise_for_status()
            return resp.json()
        except httpx.TransportError as err:
            raise FlinkUnavailable(f"Flink REST {self.base_url} unreachable: {err}") from err
        except httpx.HTTPStatusError as err:
            raise FlinkUnavailable(
                f"Flink REST {path}: HTTP {err.response.status_code}"
            ) from err
        except ValueError as err:
            raise FlinkUnavailable(f"Flink REST {path}: not JSON ({err})") from err

    def sink_records(
        self, job_id: str, vertex_id: str, tables: Iterable[TableContract] = TABLES
    ) -> dict[str, tuple[SinkTarget, int | None]]:
        """Records each table sink of one vertex received, summed over its subtasks.

        Returns:
            Metric id -> (the sink's table, its record count; None when not reported).

        Raises:
            FlinkUnavailable: The metrics cannot be read.

        """
        base = f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics"
        ids = sink_metric_ids((m.get("id", "") for m in self.get(base)), tables)
        if not ids:
            return {}
        values = {
            m.get("id"): m.get("sum")
            for m in self.get(base, {"get": ",".join(ids)})
        }
        return {mid: (target, _int(values.get(mid))) for mid, target in ids.items()}
