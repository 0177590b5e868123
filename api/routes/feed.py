"""The real-time feed: new ADS values and alarms as Server-Sent Events.

``GET /api/v1/feed`` streams, for the datasets asked for, every row that changed since the
client connected (``event: value``) and every alarm such a row raises (``event: alarm``):
thresholds of ``api.alarms`` on the daily indicators, every interval of the ML
anomaly table, and every asset whose health category worsened (``asset_health``).
``event: status`` reports the serving copy going away and coming back, and
``event: alarm_changed`` each lifecycle change of a stored alarm (opened, acknowledged,
closed: :mod:`api.alarm_store`) of the caller's regions.

The trigger is the serving copy's change event. On an event, one scan per worker reads
the newest rows of the dataset (the last two grains of the index) and keeps those whose
``updated_ts`` is past the newest one already delivered; every connected client gets
them, filtered to its datasets, entity types and regions. Rows that change further back
(late data) are not re-sent: the query endpoints have them.

Parameters are checked before the stream opens (422 naming the parameter), and a user
holds at most ``api.feed_connections_per_user`` streams per worker (429 with
``Retry-After`` beyond): both are dependencies, which FastAPI resolves before it answers,
and the connection's slot is given back when the stream ends, however it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.catalog import DeviceCatalog
from api.context import Ctx, require
from api.datasets import DATASETS, Dataset
from api.events import ALARM_ITEM
from api.output import dumps
from api.query import QueryService, serving_rows
from api.security import AuthError, Perm, Principal
from infra.serving_store import ServingUnavailable
from infra.settings import AlarmSettings
from lakehouse.time import DAY_MS

log = logging.getLogger(__name__)

router = APIRouter(tags=["feed"])

DEFAULT_DATASETS = tuple(n for n in DATASETS if n != "meter_energy_15min")
#: Entity types any dataset holds.
ENTITY_TYPES = tuple(dict.fromkeys(t for d in DATASETS.values() for t in d.entity_types))
#: Seconds a client refused for too many streams is told to wait.
RETRY_AFTER_S = 10


def threshold_rules(th: AlarmSettings) -> dict[str, list[tuple[str, str, float, bool]]]:
    """Per dataset: (kind, column, threshold, fires when above) of each threshold rule."""
    return {
        # dataset: (kind, column, threshold, fires when above)
        "transformer_daily": [("transformer_overload", "loading_rate_pct",
                               th.transformer_loading_pct, True)],
        "voltage_daily": [("voltage_unqualified", "qualification_rate_pct",
                           th.voltage_qualification_pct, False)],
        "feeder_daily": [("line_loss_high", "line_loss_rate_pct", th.line_loss_pct, True)],
        "ess_daily": [("ess_overheat", "cell_temp_max_c", th.ess_cell_temp_c, True)],
        "quality_scorecard": [("data_quality_low", "score_pct", th.quality_score_pct, False)],
    }


def alarms(ds: Dataset, row: dict[str, Any], th: AlarmSettings) -> list[dict[str, Any]]:
    """The alarms a row raises: (kind, value, threshold) per rule that fires.

    The one place alarms are derived: the feed sends them, the alarm recorder
    (:mod:`api.alarm_recorder`) keeps them in the alarm store.
    """
    rules = threshold_rules(th)
    etype, eid = ds.row_entity(row)
    base = {"dataset": ds.name, "entity_type": etype, "entity_id": eid,
            "time": row.get(ds.time_field)}
    if ds.name == "equipment_anomaly":
        return [{**base, "alarm": "equipment_anomaly", "value": row.get("peak_score"),
                 "threshold": row.get("threshold")}]
    if ds.name == "asset_health":
        # the job sets `worsened` against the previous day's category (docs/health.md)
        if not row.get("worsened"):
            return []
        return [{**base, "alarm": "health_worsened", "value": row.get("category"),
                 "threshold": row.get("previous_category"), "score": row.get("score"),
                 "worst_factor": row.get("worst_factor"), "action": row.get("action")}]
    out = []
    for kind, col, limit, above in rules.get(ds.name, []):
        v = row.get(col)
        if v is not None and (v > limit if above else v < limit):
            out.append({**base, "alarm": kind, "value": v, "threshold": limit})
    return out


def alarm_region(catalog: DeviceCatalog, ds: Dataset, row: dict[str, Any],
                 alarm: dict[str, Any]) -> str | None:
    """The region of an alarm: the row's, else the device catalog's for its entity."""
    if ds.region_field:
        region: str | None = row.get(ds.region_field)
        return region
    return catalog.region_of(alarm["entity_type"], alarm["entity_id"])


def changed_alarm(item: str, who: Principal, types: set[str] | None) -> str | None:
    """The ``alarm_changed`` payload of a hub item, when ``who`` may see it."""
    payload = item[len(ALARM_ITEM):]
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    alarm = data.get("alarm") or {}
    if not who.sees_region(alarm.get("region_id")):
        return None
    if types is not None and alarm.get("entity_type") not in types:
        return None
    return payload


class FeedScanner:
    """Finds the rows of a dataset changed since the last scan (one scan per event)."""

    def __init__(self, queries: QueryService) -> None:
        self.queries = queries
        self._hwm: dict[str, datetime | None] = {}
        self._last: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _newest(self, ds: Dataset) -> list[dict[str, Any]]:
        serving = self.queries.serving
        cov = await serving.coverage(ds.table, max_age_s=0)
        if cov.last_ms is None:
            return []
        lookback = 2 * (ds.grain_ms or DAY_MS)
        members = await serving.members(ds.table, cov.last_ms - lookback + 1, cov.last_ms + 1)
        return await serving_rows(serving, ds, members)

    async def prime(self, name: str) -> None:
        """Remember the newest ``updated_ts`` so that only later changes are sent."""
        async with self._lock(name):
            if name in self._hwm:
                return
            rows = await self._newest(DATASETS[name])
            stamps = [r["updated_ts"] for r in rows if r.get("updated_ts") is not None]
            self._hwm[name] = max(stamps) if stamps else None

    async def changes(self, name: str, generation: int) -> list[dict[str, Any]]:
        """Rows of ``name`` changed up to ``generation`` and not delivered before."""
        async with self._lock(name):
            last = self._last.get(name)
            if last is not None and last[0] >= generation:
                return last[1] if last[0] == generation else []
            rows = await self._newest(DATASETS[name])
            hwm = self._hwm.get(name)
            new = [r for r in rows if r.get("updated_ts") is not None
                   and (hwm is None or r["updated_ts"] > hwm)]
            if new:
                self._hwm[name] = max(r["updated_ts"] for r in new)
            self._last[name] = (generation, new)
            return new


def names_in(text: str | None, known: tuple[str, ...], param: str) -> tuple[str, ...]:
    """The comma-separated names of ``text`` (none: empty), each one of ``known``.

    Raises:
        HTTPException: 422 naming the parameter and the first unknown name.

    """
    names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    bad = [n for n in names if n not in known]
    if bad:
        raise HTTPException(422, f"{param}: unknown {bad[0]!r}; one of {', '.join(known)}")
    return names


class ConnectionSlots:
    """Open feed streams per user in this worker, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, user: str) -> bool:
        """Take a slot for ``user``; False when they hold ``limit`` already."""
        with self._lock:
            if self._open[user] >= self.limit:
                return False
            self._open[user] += 1
            return True

    def give_back(self, user: str) -> None:
        """Return a slot taken by :meth:`take`."""
        with self._lock:
            self._open[user] -= 1
            if self._open[user] <= 0:
                del self._open[user]

    def held(self, user: str) -> int:
        """Streams ``user`` has open."""
        with self._lock:
            return self._open[user]


@dataclass(frozen=True)
class FeedRequest:
    """A checked feed request, holding one of the caller's connection slots."""

    who: Principal
    datasets: tuple[str, ...]
    entity_types: set[str] | None
    alarms_only: bool


async def feed_request(
    request: Request, who: Annotated[Principal, Depends(require(Perm.READ_FEED))],
    datasets: Annotated[str | None, Query(max_length=500, description="Comma-separated "
                        "datasets (default: all but meter_energy_15min).",
                        examples=["transformer_daily,voltage_daily"])] = None,
    entity_types: Annotated[str | None, Query(max_length=200, description="Comma-separated "
                            f"entity types, of {', '.join(ENTITY_TYPES)} (default: all).",
                            examples=["transformer"])] = None,
    alarms_only: Annotated[bool, Query(description="Send alarms only.")] = False,
) -> AsyncIterator[FeedRequest]:
    """The checked parameters of a feed; the connection slot is held until the stream ends.

    Raises:
        HTTPException: 422 for an unknown dataset or entity type, 429 when the caller has
            ``api.feed_connections_per_user`` streams open in this worker.

    """
    names = names_in(datasets, tuple(DATASETS), "datasets") or DEFAULT_DATASETS
    types = set(names_in(entity_types, ENTITY_TYPES, "entity_types")) or None
    slots: ConnectionSlots = request.app.state.feed_slots
    if not slots.take(who.username):
        raise HTTPException(429, f"at most {slots.limit} feed connections per user are open "
                            "at once", {"Retry-After": str(RETRY_AFTER_S)})
    try:
        yield FeedRequest(who, names, types, alarms_only)
    finally:
        slots.give_back(who.username)


@router.get("/feed", response_class=EventSourceResponse,
            summary="Real-time feed of new ADS values and alarms (Server-Sent Events)")
async def feed(
    request: Request, c: Ctx, params: Annotated[FeedRequest, Depends(feed_request)],
) -> AsyncIterator[ServerSentEvent]:
    """Changed rows and alarms of your regions as they land.

    Events: ``value`` (``{"dataset", "row"}``), ``alarm`` (``{"alarm", "dataset",
    "entity_type", "entity_id", "region_id", "time", "value", "threshold"}``),
    ``alarm_changed`` (``{"change", "state", "alarm"}``: a stored alarm opened,
    acknowledged or closed, :mod:`api.alarm_store`) and ``status`` (``{"serving": "down"
    | "up"}``; ``{"session": "ended"}`` last, when the caller's session ends while the
    stream is open: checked every ``api.auth_recheck_s``, at least every second). At most
    ``api.feed_connections_per_user`` streams per user and worker (429 beyond).
    """
    who, names, types = params.who, params.datasets, params.entity_types
    alarms_only = params.alarms_only
    scanner: FeedScanner = request.app.state.feed
    hub = c.hub
    queue = hub.listen()
    filters = {n: c.queries.row_filter(DATASETS[n], who, types) for n in names}
    for n in names:
        try:
            await scanner.prime(n)
        except ServingUnavailable:
            pass

    recheck_s = max(1.0, c.settings.api.auth_recheck_s)

    async def events() -> AsyncIterator[ServerSentEvent]:
        up = True
        next_check = time.monotonic() + recheck_s
        try:
            yield ServerSentEvent(event="status", raw_data=dumps({"serving": "up",
                                                                  "datasets": list(names)}))
            while True:
                if time.monotonic() >= next_check:
                    # a stream outlives its token's checks: a deleted, deactivated or
                    # changed user stops receiving within the read bound
                    next_check = time.monotonic() + recheck_s
                    try:
                        await c.sessions.check(who, fresh=False)
                    except AuthError:
                        yield ServerSentEvent(event="status",
                                              raw_data=dumps({"session": "ended"}))
                        return
                try:
                    name = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    if up != (hub.listening and c.serving.available):
                        up = not up
                        yield ServerSentEvent(event="status", raw_data=dumps(
                            {"serving": "up" if up else "down"}))
                    continue
                if name.startswith(ALARM_ITEM):
                    change = changed_alarm(name, who, types)
                    if change is not None:
                        yield ServerSentEvent(event="alarm_changed", raw_data=change)
                    continue
                if name not in filters:
                    continue
                try:
                    rows = await scanner.changes(name, hub.generations[name])
                except ServingUnavailable:
                    continue
                ds, ok = DATASETS[name], filters[name]
                for row in rows:
                    if ok is not None and not ok(row):
                        continue
                    if not alarms_only:
                        yield ServerSentEvent(event="value",
                                              raw_data=dumps({"dataset": name, "row": row}))
                    for alarm in alarms(ds, row, c.settings.api.alarms):
                        alarm["region_id"] = alarm_region(c.catalog, ds, row, alarm)
                        yield ServerSentEvent(event="alarm", raw_data=dumps(alarm))
        finally:
            hub.unlisten(queue)

    async for event in events():
        yield event

