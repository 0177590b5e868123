"""The alarm store: lifecycle, one live alarm per condition, auto-close, listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.alarm_store import (
    AlarmEvent,
    AlarmFilter,
    AlarmNotFound,
    AlarmStore,
    InvalidTransition,
)
from api.db import UserStore
from tests.api.conftest import concurrently


@pytest.fixture
def store(tmp_path: Path) -> AlarmStore:
    users = UserStore(f"sqlite:///{tmp_path / 'api.db'}")
    users.create_schema()
    s = AlarmStore(users.engine)
    s.create_schema()
    s.create_schema()  # a second worker: nothing to do, no error
    return s


def event(entity: str = "TX-1", region: str | None = "R1", value: float = 120.0,
          kind: str = "transformer_overload", source: str = "threshold",
          severity: str = "major", auto: bool = True) -> AlarmEvent:
    return AlarmEvent(source=source, kind=kind, entity_type="transformer", entity_id=entity,
                      region_id=region, severity=severity, auto_close=auto,
                      detail={"dataset": "transformer_daily", "value": value,
                              "threshold": 100.0})


def test_an_ongoing_condition_updates_one_alarm(store: AlarmStore) -> None:
    opened = store.record(event(value=120.0))
    assert opened is not None and opened.change == "opened"
    assert opened.alarm.state == "open" and opened.alarm.occurrences == 1
    assert store.record(event(value=130.0, severity="critical")) is None
    assert store.record(event(value=125.0, severity="major")) is None
    alarms, total = store.list(AlarmFilter(), 10, 0)
    assert total == 1
    a = alarms[0]
    assert a.id == opened.alarm.id and a.occurrences == 3
    assert a.detail["value"] == 125.0  # the latest event
    assert a.severity == "critical"  # the highest seen, not the latest
    assert a.last_seen_at >= a.opened_at
    # another entity or kind is another condition
    assert store.record(event(entity="TX-2")) is not None
    assert store.record(event(kind="ess_overheat")) is not None
    assert store.list(AlarmFilter(), 10, 0)[1] == 3


def test_concurrent_records_of_one_condition_leave_one_alarm(store: AlarmStore) -> None:
    # several API workers tee the same feed event into the store at once
    results = concurrently(8, lambda i: store.record(event(value=100.0 + i)))
    assert sum(r is not None for r in results) == 1  # exactly one opened it
    alarms, total = store.list(AlarmFilter(), 10, 0)
    assert total == 1 and alarms[0].occurrences == 8


def test_lifecycle_and_invalid_transitions(store: AlarmStore) -> None:
    a = store.record(event())
    assert a is not None
    ack = store.acknowledge(a.alarm.id, "op", "on it")
    assert ack.change == "acknowledged"
    assert (ack.alarm.state, ack.alarm.acknowledged_by, ack.alarm.ack_note) == (
        "acknowledged", "op", "on it")
    assert ack.alarm.acknowledged_at is not None
    with pytest.raises(InvalidTransition, match="is acknowledged"):
        store.acknowledge(a.alarm.id, "op", None)
    # still the live alarm of its condition: seen again, it is updated, not duplicated
    assert store.record(event()) is None
    assert store.get(a.alarm.id).occurrences == 2
    closed = store.close(a.alarm.id, "admin", "replaced fan", "resolved")
    assert (closed.alarm.state, closed.alarm.closed_by, closed.alarm.close_reason,
            closed.alarm.close_note) == ("closed", "admin", "resolved", "replaced fan")
    with pytest.raises(InvalidTransition, match="is closed"):
        store.close(a.alarm.id, "admin", None)
    with pytest.raises(InvalidTransition, match="is closed"):
        store.acknowledge(a.alarm.id, "admin", None)
    with pytest.raises(AlarmNotFound):
        store.acknowledge(999, "admin", None)
    # the condition seen after the close opens a new alarm
    again = store.record(event())
    assert again is not None and again.alarm.id != a.alarm.id
    # an open alarm may be closed without being acknowledged
    assert store.close(again.alarm.id, "op", None).alarm.state == "closed"


def test_cleared_condition_closes_only_auto_closing_alarms(store: AlarmStore) -> None:
    th = store.record(event())
    an = store.record(event(kind="equipment_anomaly", source="anomaly", auto=False))
    assert th is not None and an is not None
    cleared = store.clear(th.alarm.dedup_key)
    assert cleared is not None and cleared.change == "closed"
    assert (cleared.alarm.closed_by, cleared.alarm.close_reason) == ("system", "cleared")
    assert store.clear(th.alarm.dedup_key) is None  # nothing live any more
    assert store.clear(an.alarm.dedup_key) is None  # an anomaly is closed by a person
    assert store.get(an.alarm.id).state == "open"


def test_listing_filters_scope_and_pages(store: AlarmStore) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i, region in enumerate(["R1", "R1", "R2", None]):
        store.record(event(entity=f"TX-{i}", region=region), now=t0 + timedelta(hours=i))
    store.record(event(entity="B-1", kind="ess_overheat", severity="critical", region="R2"),
                 now=t0 + timedelta(hours=5))
    store.acknowledge(1, "op", None)

    def ids(**kw: object) -> list[int]:
        return [a.id for a in store.list(AlarmFilter(**kw), 100, 0)[0]]  # type: ignore[arg-type]

    assert ids() == [5, 4, 3, 2, 1]  # newest opened first
    assert ids(state="acknowledged") == [1]
    assert ids(state="open") == [5, 4, 3, 2]
    assert ids(severity="critical") == [5]
    assert ids(region_id="R2") == [5, 3]
    assert ids(entity_id="TX-2") == [3]
    assert ids(regions=frozenset({"R1"})) == [2, 1]  # unknown region: not in any scope
    assert ids(opened_from=t0 + timedelta(hours=1), opened_to=t0 + timedelta(hours=3)) == [3, 2]
    page, total = store.list(AlarmFilter(), 2, 2)
    assert total == 5 and [a.id for a in page] == [3, 2]
    assert store.open_counts() == {("threshold", "major"): 4, ("threshold", "critical"): 1}
