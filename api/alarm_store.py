"""The alarm store: alarms of the real-time feed kept with a lifecycle.

Every alarm the feed derives (:func:`api.routes.feed.alarms`: thresholds, data quality, ML
anomaly intervals, worsened asset health) is recorded in the table ``api_alarms`` of the
API's database (:mod:`api.db`; created when missing, like the other tables). An alarm is
``open`` → ``acknowledged`` → ``closed``; who did each step, when, and their note are kept.

**One alarm per ongoing condition.** An alarm's *dedup key* names its condition
(``source:kind:entity_type:entity_id``). While an alarm of that key is open or
acknowledged, the same condition seen again updates it (``last_seen_at``, the latest value,
``occurrences``, the highest severity) instead of opening another; after it is closed, the
condition seen again opens a new alarm. The column ``open_key`` holds the dedup key while
the alarm is not closed and is NULL after, under a unique index: at most one live alarm per
condition, whichever process records it.

**Several workers.** Each API worker records what its feed scanner sees, so the same alarm
event reaches the store once per worker. Recording is idempotent: an update of the live
alarm of the key first (a conditional write), else an insert that a concurrent insert of
the same key makes a no-op (``ON CONFLICT DO NOTHING`` on the unique ``open_key``), then
the update again. Only the writer whose insert or transition changed a row reports it
(:class:`Change`), so the feed announces each change once per worker that saw it happen.

**Auto-close.** A threshold or quality alarm closes by itself (``closed_by`` ``system``,
``close_reason`` ``cleared``) when a later row of its entity no longer breaks the
threshold. Anomaly intervals and health worsening do not clear by themselves: an operator
closes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api.db import Base
from api.security import clean_text

log = logging.getLogger(__name__)

#: Longest note kept with an acknowledgement or a close.
NOTE_MAX = 1000
#: Severity order (a condition seen again keeps the highest).
SEVERITIES = ("minor", "major", "critical")
#: Who closes an alarm whose condition cleared.
SYSTEM = "system"


class AlarmState(StrEnum):
    """The lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class AlarmSource(StrEnum):
    """Where an alarm comes from."""

    THRESHOLD = "threshold"
    QUALITY = "quality"
    ANOMALY = "anomaly"
    HEALTH = "health"


class AlarmRow(Base):
    """An alarm."""

    __tablename__ = "api_alarms"
    __table_args__ = (Index("ix_api_alarms_state_opened", "state", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    #: The dedup key while not closed, NULL after (unique: one live alarm per condition).
    open_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    source: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128), index=True)
    region_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    #: The latest alarm event (dataset, time, value, threshold, ...), JSON.
    detail: Mapped[str] = mapped_column(Text, default="{}")
    auto_close: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    close_note: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class Alarm:
    """An alarm as the API returns it."""

    id: int
    source: str
    kind: str
    entity_type: str
    entity_id: str
    region_id: str | None
    severity: str
    state: str
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    detail: dict[str, Any]
    auto_close: bool
    dedup_key: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None
    closed_by: str | None
    closed_at: datetime | None
    close_reason: str | None
    close_note: str | None


@dataclass(frozen=True)
class Change:
    """A lifecycle change this call made (the feed announces it as ``alarm_changed``)."""

    alarm: Alarm
    change: str  # opened, acknowledged, closed


@dataclass(frozen=True)
class AlarmEvent:
    """One alarm the feed derived, ready for the store."""

    source: str
    kind: str
    entity_type: str
    entity_id: str
    region_id: str | None
    severity: str
    auto_close: bool
    detail: dict[str, Any]

    @property
    def dedup_key(self) -> str:
        """The condition's key: one live alarm per key."""
        return dedup_key(self.source, self.kind, self.entity_type, self.entity_id)


@dataclass(frozen=True)
class AlarmFilter:
    """What ``GET /alarms`` asks for (every field optional)."""

    state: str | None = None
    source: str | None = None
    severity: str | None = None
    region_id: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    #: None: every region; else only alarms of these regions (a scoped caller).
    regions: frozenset[str] | None = None


class InvalidTransition(Exception):
    """The alarm is not in a state the change applies to (HTTP 409)."""


class AlarmNotFound(KeyError):
    """No such alarm (HTTP 404)."""


def dedup_key(source: str, kind: str, entity_type: str, entity_id: str) -> str:
    """``source:kind:entity_type:entity_id`` (capped to the column)."""
    return f"{source}:{kind}:{entity_type}:{entity_id}"[:255]


def _utc(t: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC))


def _alarm(r: AlarmRow) -> Alarm:
    return Alarm(
        id=r.id, source=r.source, kind=r.kind, entity_type=r.entity_type,
        entity_id=r.entity_id, region_id=r.region_id, severity=r.severity, state=r.state,
        opened_at=_utc(r.opened_at) or r.opened_at,
        last_seen_at=_utc(r.last_seen_at) or r.last_seen_at, occurrences=r.occurrences,
        detail=json.loads(r.detail or "{}"), auto_close=r.auto_close, dedup_key=r.dedup_key,
        acknowledged_by=r.acknowledged_by, acknowledged_at=_utc(r.acknowledged_at),
        ack_note=r.ack_note, closed_by=r.closed_by, closed_at=_utc(r.closed_at),
        close_reason=r.close_reason, close_note=r.close_note)


class AlarmStore:
    """The ``api_alarms`` table on the API's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Create the table and its indexes when missing (several workers may race)."""
        AlarmRow.metadata.create_all(self.engine, tables=[AlarmRow.__table__])  # type: ignore[list-item]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed at the end, rolled back on an exception."""
        with self._sessions.begin() as s:
            yield s

    # ----------------------------------------------------------------- recording
    def record(self, event: AlarmEvent, now: datetime | None = None) -> Change | None:
        """Open an alarm for ``event`` or update the live one of its condition.

        Returns:
            The change when this call opened the alarm; None when it updated one.

        """
        now = now or datetime.now(UTC)
        key = event.dedup_key
        detail = json.dumps(event.detail, default=str, sort_keys=True)
        for _ in range(3):
            with self.session() as s:
                if self._touch(s, key, event, detail, now):
                    return None
                values = {
                    "dedup_key": key, "open_key": key, "source": event.source,
                    "kind": event.kind, "entity_type": event.entity_type[:32],
                    "entity_id": event.entity_id[:128], "region_id": event.region_id,
                    "severity": event.severity, "state": AlarmState.OPEN.value,
                    "opened_at": now, "last_seen_at": now, "occurrences": 1,
                    "detail": detail, "auto_close": event.auto_close}
                dialect = self.engine.dialect.name
                ins = (postgresql.insert(AlarmRow) if dialect == "postgresql"
                       else sqlite.insert(AlarmRow))
                res = s.connection().execute(
                    ins.values(**values).on_conflict_do_nothing().returning(AlarmRow.id))
                new_id = res.scalar()
                if new_id is not None:
                    row = s.get(AlarmRow, new_id)
                    assert row is not None
                    return Change(_alarm(row), "opened")
            # another writer opened it between the update and the insert: update it
        log.warning("alarm %s: could not record after 3 tries", key)
        return None

    @staticmethod
    def _touch(s: Session, key: str, event: AlarmEvent, detail: str, now: datetime) -> bool:
        """Update the live alarm of ``key`` (one write: concurrent touches all count)."""
        rank = SEVERITIES.index(event.severity) if event.severity in SEVERITIES else 0
        return s.connection().execute(
            update(AlarmRow).where(AlarmRow.open_key == key).values(
                last_seen_at=now, occurrences=AlarmRow.occurrences + 1, detail=detail,
                severity=case((AlarmRow.severity.in_(SEVERITIES[rank:]), AlarmRow.severity),
                              else_=event.severity),
                region_id=func.coalesce(event.region_id, AlarmRow.region_id))).rowcount == 1

    def clear(self, key: str, now: datetime | None = None) -> Change | None:
        """Close the live auto-closing alarm of ``key``: its condition cleared."""
        now = now or datetime.now(UTC)
        with self.session() as s:
            res = s.connection().execute(
                update(AlarmRow).where(AlarmRow.open_key == key, AlarmRow.auto_close.is_(True))
                .values(state=AlarmState.CLOSED.value, open_key=None, closed_by=SYSTEM,
                        closed_at=now, close_reason="cleared")
                .returning(AlarmRow.id))
            closed = res.scalar()
            if closed is None:
                return None
            row = s.get(AlarmRow, closed)
            assert row is not None
            s.refresh(row)
            return Change(_alarm(row), "closed")

    # ----------------------------------------------------------------- lifecycle
    def get(self, alarm_id: int) -> Alarm:
        """An alarm by id.

        Raises:
            AlarmNotFound: No such alarm.

        """
        with self.session() as s:
            row = s.get(AlarmRow, alarm_id)
            if row is None:
                raise AlarmNotFound(alarm_id)
            return _alarm(row)

    def acknowledge(self, alarm_id: int, who: str, note: str | None) -> Change:
        """``open`` → ``acknowledged``.

        Raises:
            AlarmNotFound: No such alarm.
            InvalidTransition: It is acknowledged or closed already.

        """
        return self._transition(alarm_id, (AlarmState.OPEN,), {
            "state": AlarmState.ACKNOWLEDGED.value, "acknowledged_by": clean_text(who, 64),
            "acknowledged_at": datetime.now(UTC),
            "ack_note": clean_text(note, NOTE_MAX) if note else None}, "acknowledged")

    def close(self, alarm_id: int, who: str, note: str | None,
              reason: str = "resolved") -> Change:
        """``open`` or ``acknowledged`` → ``closed``.

        Raises:
            AlarmNotFound: No such alarm.
            InvalidTransition: It is closed already.

        """
        return self._transition(alarm_id, (AlarmState.OPEN, AlarmState.ACKNOWLEDGED), {
            "state": AlarmState.CLOSED.value, "open_key": None,
            "closed_by": clean_text(who, 64), "closed_at": datetime.now(UTC),
            "close_reason": clean_text(reason, 32),
            "close_note": clean_text(note, NOTE_MAX) if note else None}, "closed")

    def _transition(self, alarm_id: int, allowed: tuple[AlarmState, ...],
                    values: dict[str, Any], change: str) -> Change:
        with self.session() as s:
            # the conditional write decides: of two concurrent changes, one wins
            won = s.connection().execute(
                update(AlarmRow).where(AlarmRow.id == alarm_id,
                                       AlarmRow.state.in_([a.value for a in allowed]))
                .values(**values)).rowcount == 1
            row = s.get(AlarmRow, alarm_id)
            if row is None:
                raise AlarmNotFound(alarm_id)
            if not won:
                target = values["state"]
                raise InvalidTransition(
                    f"alarm {alarm_id} is {row.state}: cannot go to {target} (allowed from "
                    f"{' or '.join(a.value for a in allowed)})")
            s.refresh(row)
            return Change(_alarm(row), change)

    # ----------------------------------------------------------------- listing
    def list(self, f: AlarmFilter, limit: int, offset: int) -> tuple[list[Alarm], int]:
        """A page of alarms, newest opened first, and the total."""
        conds: list[Any] = []
        for col, value in ((AlarmRow.state, f.state), (AlarmRow.source, f.source),
                           (AlarmRow.severity, f.severity), (AlarmRow.region_id, f.region_id),
                           (AlarmRow.entity_type, f.entity_type),
                           (AlarmRow.entity_id, f.entity_id)):
            if value is not None:
                conds.append(col == value)
        if f.opened_from is not None:
            conds.append(AlarmRow.opened_at >= f.opened_from)
        if f.opened_to is not None:
            conds.append(AlarmRow.opened_at < f.opened_to)
        if f.regions is not None:
            conds.append(AlarmRow.region_id.in_(sorted(f.regions)))
        with self.session() as s:
            total = int(s.scalar(select(func.count()).select_from(AlarmRow).where(*conds))
                        or 0)
            rows = s.scalars(select(AlarmRow).where(*conds)
                             .order_by(AlarmRow.opened_at.desc(), AlarmRow.id.desc())
                             .limit(limit).offset(offset)).all()
            return [_alarm(r) for r in rows], total

    def open_counts(self) -> dict[tuple[str, str], int]:
        """Alarms not closed, per (source, severity) (the metrics gauge)."""
        with self.session() as s:
            rows = s.execute(select(AlarmRow.source, AlarmRow.severity, func.count())
                             .where(AlarmRow.open_key.is_not(None))
                             .group_by(AlarmRow.source, AlarmRow.severity)).all()
            return {(r[0], r[1]): int(r[2]) for r in rows}
