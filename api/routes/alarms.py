"""Stored alarms: list, read, acknowledge, close (:mod:`api.alarm_store`).

Everyone may read the alarms of their regions (``alarms:read``); operators and
administrators acknowledge and close them (``alarms:write``). A region-scoped user sees
only alarms of their regions: another region's alarm is 404 (as if it did not exist), a
listing filtered by a region outside their scope is 403, and alarms whose region is unknown
are shown to unscoped users only. A change the alarm's state does not allow (acknowledging
an acknowledged or closed alarm, closing a closed one) is 409 naming the state. Every
change is audited and announced on the feed (``alarm_changed``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from api.alarm_recorder import announce
from api.alarm_store import (
    NOTE_MAX,
    Alarm,
    AlarmFilter,
    AlarmNotFound,
    AlarmStore,
    Change,
    InvalidTransition,
)
from api.context import Ctx, require
from api.events import alarm_channel
from api.security import Perm, Principal
from api.validation import Instant, Offset

router = APIRouter(tags=["alarms"])

Reader = Annotated[Principal, Depends(require(Perm.READ_ALARMS))]
Writer = Annotated[Principal, Depends(require(Perm.WRITE_ALARMS))]
AlarmId = Annotated[int, Path(ge=1, le=2**62, description="The alarm's id.")]
State = Literal["open", "acknowledged", "closed"]
Source = Literal["threshold", "quality", "anomaly", "health"]
Severity = Literal["minor", "major", "critical"]


class AlarmOut(BaseModel):
    """A stored alarm."""

    id: int
    source: str = Field(description="threshold, quality, anomaly or health.")
    kind: str = Field(examples=["transformer_overload"])
    entity_type: str
    entity_id: str
    region_id: str | None
    severity: str = Field(description="minor, major or critical.")
    state: str = Field(description="open, acknowledged or closed.")
    opened_at: datetime
    last_seen_at: datetime = Field(description="When the condition was last seen.")
    occurrences: int = Field(description="Times the condition was seen while not closed.")
    detail: dict[str, Any] = Field(description="The latest alarm event (dataset, time, "
                                   "value, threshold, ...).")
    auto_close: bool = Field(description="Whether it closes by itself when its condition "
                             "clears.")
    dedup_key: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None
    closed_by: str | None = Field(description="Who closed it; `system` when it cleared.")
    closed_at: datetime | None
    close_reason: str | None
    close_note: str | None


class AlarmPage(BaseModel):
    """A page of alarms, newest opened first."""

    total: int
    limit: int
    offset: int
    alarms: list[AlarmOut]


class AcknowledgeIn(BaseModel):
    """An acknowledgement."""

    note: str | None = Field(default=None, max_length=NOTE_MAX)


class CloseIn(BaseModel):
    """A close."""

    note: str | None = Field(default=None, max_length=NOTE_MAX)
    reason: Literal["resolved", "false_alarm", "duplicate", "maintenance"] = "resolved"


def alarm_store(request: Request) -> AlarmStore:
    """The worker's alarm store."""
    store: AlarmStore = request.app.state.alarms
    return store


Store = Annotated[AlarmStore, Depends(alarm_store)]


def _out(a: Alarm) -> AlarmOut:
    return AlarmOut.model_validate(a, from_attributes=True)


def _visible(store: AlarmStore, who: Principal, alarm_id: int) -> Alarm:
    """The alarm, when it exists and is in the caller's scope (else 404)."""
    try:
        alarm = store.get(alarm_id)
    except AlarmNotFound:
        alarm = None
    if alarm is None or not (who.unscoped or alarm.region_id in who.regions):
        raise HTTPException(404, f"alarm {alarm_id} not found")
    return alarm


@router.get("/alarms", response_model=AlarmPage, summary="List stored alarms")
async def list_alarms(
    store: Store, who: Reader,
    state: Annotated[State | None, Query()] = None,
    source: Annotated[Source | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    device: Annotated[str | None, Query(max_length=128,
                                        description="Device or asset id.")] = None,
    start: Annotated[Instant | None, Query(description="Opened at or after (ISO 8601).")]
    = None,
    end: Annotated[Instant | None, Query(description="Opened before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> AlarmPage:
    """Alarms of your regions, newest opened first, filtered."""
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, "end: must be after start")
    if region is not None and not who.sees_region(region):
        raise HTTPException(403, f"region {region!r} is outside your regions")
    f = AlarmFilter(state=state, source=source, severity=severity, region_id=region,
                    entity_type=entity_type, entity_id=device, opened_from=start,
                    opened_to=end, regions=None if who.unscoped else who.regions)
    alarms, total = await asyncio.to_thread(store.list, f, limit, offset)
    return AlarmPage(total=total, limit=limit, offset=offset,
                     alarms=[_out(a) for a in alarms])


@router.get("/alarms/{alarm_id}", response_model=AlarmOut, summary="One alarm")
async def get_alarm(alarm_id: AlarmId, store: Store, who: Reader) -> AlarmOut:
    """An alarm of your regions (404 for another region's)."""
    return _out(await asyncio.to_thread(_visible, store, who, alarm_id))


async def _change(c: Any, store: AlarmStore, who: Principal, alarm_id: int,
                  act: Any) -> AlarmOut:
    await asyncio.to_thread(_visible, store, who, alarm_id)
    try:
        change: Change = await asyncio.to_thread(act)
    except InvalidTransition as err:
        raise HTTPException(409, str(err)) from None
    except AlarmNotFound:
        raise HTTPException(404, f"alarm {alarm_id} not found") from None
    c.audit(who, f"alarm_{change.change}", str(alarm_id), note=(
        change.alarm.ack_note if change.change == "acknowledged" else change.alarm.close_note))
    await announce(lambda payload: c.serving.client.publish(
        alarm_channel(c.settings.redis.key_prefix), payload), change)
    return _out(change.alarm)


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmOut,
             summary="Acknowledge an open alarm")
async def acknowledge_alarm(alarm_id: AlarmId, c: Ctx, store: Store, who: Writer,
                            body: AcknowledgeIn | None = None) -> AlarmOut:
    """``open`` → ``acknowledged`` (409 from another state), with an optional note."""
    note = body.note if body else None
    return await _change(c, store, who, alarm_id,
                         lambda: store.acknowledge(alarm_id, who.username, note))


@router.post("/alarms/{alarm_id}/close", response_model=AlarmOut, summary="Close an alarm")
async def close_alarm(alarm_id: AlarmId, c: Ctx, store: Store, who: Writer,
                      body: CloseIn | None = None) -> AlarmOut:
    """``open`` or ``acknowledged`` → ``closed`` (409 when closed already).

    The condition seen again afterwards opens a new alarm.
    """
    note, reason = (body.note, body.reason) if body else (None, "resolved")
    return await _change(c, store, who, alarm_id,
                         lambda: store.close(alarm_id, who.username, note, reason))
