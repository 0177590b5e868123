"""The alarm recorder: tees the feed's alarms into the alarm store, in the API process.

A background task of each worker listens to the serving copy's change events
(:class:`api.events.EventHub`), reads the changed rows through the feed's own scanner
(:class:`api.routes.feed.FeedScanner`, so a change is read once per worker whether a feed
client is connected or not), derives their alarms with :func:`api.routes.feed.alarms` and
records them (:meth:`api.alarm_store.AlarmStore.record`, idempotent by dedup key: several
workers recording the same event leave one alarm). A threshold or quality rule that a
newer row no longer breaks closes its alarm (auto-close). Each change the store reports
is published on the workers' alarm channel (:func:`api.events.alarm_channel`), from which
every worker's feed announces it as ``alarm_changed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from api.alarm_store import AlarmEvent, AlarmSource, AlarmStore, Change, dedup_key
from api.catalog import DeviceCatalog
from api.datasets import DATASETS, Dataset
from api.events import EventHub
from api.output import dumps
from api.routes.feed import FeedScanner, alarm_region, alarms, threshold_rules
from infra.serving_store import ServingUnavailable
from infra.settings import AlarmSettings

log = logging.getLogger(__name__)

#: Datasets whose rows raise alarms.
ALARM_DATASETS = ("transformer_daily", "voltage_daily", "feeder_daily", "ess_daily",
                  "quality_scorecard", "equipment_anomaly", "asset_health")
#: Alarm kind → (source, severity, closes by itself when the condition clears).
KINDS: dict[str, tuple[AlarmSource, str, bool]] = {
    "transformer_overload": (AlarmSource.THRESHOLD, "major", True),
    "voltage_unqualified": (AlarmSource.THRESHOLD, "major", True),
    "line_loss_high": (AlarmSource.THRESHOLD, "minor", True),
    "ess_overheat": (AlarmSource.THRESHOLD, "critical", True),
    "data_quality_low": (AlarmSource.QUALITY, "minor", True),
    "equipment_anomaly": (AlarmSource.ANOMALY, "major", False),
    "health_worsened": (AlarmSource.HEALTH, "major", False),
}
#: A transformer loaded this many times its threshold is critical, not major.
CRITICAL_OVERLOAD = 1.2
#: Health categories whose worsening is critical (docs/health.md).
CRITICAL_HEALTH = frozenset({"poor", "critical"})


def severity(alarm: dict[str, Any], default: str) -> str:
    """An alarm's severity: its kind's, raised for a heavy overload or a bad health."""
    value, limit = alarm.get("value"), alarm.get("threshold")
    if alarm["alarm"] == "transformer_overload" and isinstance(value, int | float) \
            and isinstance(limit, int | float) and value > limit * CRITICAL_OVERLOAD:
        return "critical"
    if alarm["alarm"] == "health_worsened" and str(value).lower() in CRITICAL_HEALTH:
        return "critical"
    return default


def events_of(ds: Dataset, row: dict[str, Any], th: AlarmSettings,
              catalog: DeviceCatalog) -> tuple[list[AlarmEvent], list[str]]:
    """The alarm events a row raises, and the dedup keys of the conditions it clears."""
    raised = []
    for alarm in alarms(ds, row, th):
        kind = alarm["alarm"]
        source, default, auto = KINDS.get(kind, (AlarmSource.THRESHOLD, "major", False))
        detail = {k: v for k, v in alarm.items()
                  if k not in ("alarm", "entity_type", "entity_id")}
        raised.append(AlarmEvent(
            source=source.value, kind=kind, entity_type=str(alarm["entity_type"] or ""),
            entity_id=str(alarm["entity_id"]), region_id=alarm_region(catalog, ds, row, alarm),
            severity=severity(alarm, default), auto_close=auto, detail=detail))
    fired = {e.kind for e in raised}
    cleared = []
    etype, eid = ds.row_entity(row)
    for kind, column, limit, above in threshold_rules(th).get(ds.name, []):
        value = row.get(column)
        if kind in fired or value is None:
            continue  # breaking, or no value: the condition is not known to be gone
        if not (value > limit if above else value < limit):
            cleared.append(dedup_key(KINDS[kind][0].value, kind, str(etype or ""), str(eid)))
    return raised, cleared


def change_payload(change: Change) -> str:
    """The ``alarm_changed`` event's data: the change and the alarm as it is now."""
    return dumps({"change": change.change, "state": change.alarm.state,
                  "alarm": asdict(change.alarm)})


class AlarmRecorder:
    """The background task of one worker that records alarms."""

    def __init__(self, store: AlarmStore, hub: EventHub, scanner: FeedScanner,
                 catalog: DeviceCatalog, thresholds: AlarmSettings,
                 publish: Callable[[str], Any]) -> None:
        self.store = store
        self.hub = hub
        self.scanner = scanner
        self.catalog = catalog
        self.thresholds = thresholds
        self.publish = publish
        self.recorded = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in a background task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alarms")

    async def stop(self) -> None:
        """Cancel the task."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        queue = self.hub.listen()
        try:
            for name in ALARM_DATASETS:
                try:
                    await self.scanner.prime(name)
                except ServingUnavailable:
                    pass  # the first change reads the newest rows: recorded idempotently
            while True:
                name = await queue.get()
                if name not in ALARM_DATASETS:
                    continue
                try:
                    await self.process(name)
                except ServingUnavailable:
                    continue
                except Exception:  # noqa: BLE001 - a bad row or the database must not stop it
                    log.exception("alarm recorder: changes of %s not recorded", name)
        finally:
            self.hub.unlisten(queue)

    async def process(self, name: str) -> list[Change]:
        """Record the alarms of the rows of ``name`` changed since the last event."""
        rows = await self.scanner.changes(name, self.hub.generations[name])
        return await self.record_rows(DATASETS[name], rows)

    async def record_rows(self, ds: Dataset, rows: list[dict[str, Any]]) -> list[Change]:
        """Record the alarms of ``rows`` (oldest first: the newest row decides a clear)."""
        changes: list[Change] = []
        ordered = sorted(rows, key=lambda r: (r.get(ds.time_field) is None,
                                              str(r.get(ds.time_field))))
        for row in ordered:
            raised, cleared = events_of(ds, row, self.thresholds, self.catalog)
            for event in raised:
                change = await asyncio.to_thread(self.store.record, event)
                self.recorded += 1
                if change is not None:
                    changes.append(change)
            for key in cleared:
                change = await asyncio.to_thread(self.store.clear, key)
                if change is not None:
                    changes.append(change)
        for change in changes:
            await announce(self.publish, change)
        return changes


async def announce(publish: Callable[[str], Any], change: Change) -> None:
    """Publish a change to every worker's feed (Redis down: logged, the store has it)."""
    try:
        await publish(change_payload(change))
    except (RedisError, OSError) as err:
        log.warning("alarm %d %s not announced on the feed: %s", change.alarm.id,
                    change.change, err)
